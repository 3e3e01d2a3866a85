"""The package is grouped by stage, data flowing one way, and models logged by older layouts still load."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "mmp"
# Stage order (mmp/__init__.py): a module may import its own stage and earlier ones only.
ORDER = ["errors", "masking", "io", "config", "models", "training", "inference", "serving", "project", "cli"]
RANK = {"errors": 0, "masking": 0, "io": 1, "config": 2, "models": 3, "training": 4, "inference": 5,
        "serving": 6, "project": 7, "cli": 8, "__main__": 8, "": 0}


def stage_of(module: str) -> str:
    """`mmp.training.stages` -> `training`; `mmp` itself (its `__version__`) -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every `mmp...` module a file imports, at module level or inside functions, with line numbers."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mmp"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "mmp":
            if node.module == "mmp":  # `from mmp import x`: x may be a subpackage
                found += [(node.lineno, f"mmp.{a.name}" if (PACKAGE / a.name).is_dir() else "mmp") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "template" not in p.parts)


def test_every_module_sits_in_a_stage_subpackage_or_is_shared():
    top_level = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top_level == ["__init__", "__main__", "cli", "errors", "masking"]
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()) == \
        ["config", "inference", "io", "models", "project", "serving", "training"]


def test_no_module_imports_from_a_later_stage():
    backwards = []
    for path in modules():
        own = stage_of(".".join(path.relative_to(REPO).with_suffix("").parts))
        for line, imported in imports_of(path):
            if RANK[stage_of(imported)] > RANK[own]:
                backwards.append(f"{path.relative_to(REPO)}:{line} ({own}) imports {imported}")
    assert not backwards, "\n".join(backwards)


def test_the_import_check_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from mmp.serving.routes import create_app\n    import mmp.io.readers\n")
    assert imports_of(sample) == [(2, "mmp.serving.routes"), (3, "mmp.io.readers")]


def test_cli_is_a_thin_shell_that_imports_no_stage_at_start():
    cli = PACKAGE / "cli.py"
    tree = ast.parse(cli.read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all(not (isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("mmp.")) for n in top)
    assert len(cli.read_text().splitlines()) < 300


def test_mmp_help_imports_no_heavy_library():
    code = ("import sys, mmp.cli\n"
            "mmp.cli.build_parser().format_help()\n"
            "print(sorted(m for m in ('mlflow', 'bentoml', 'torch', 'sklearn', 'polars', 'hydra', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


FIXTURES = REPO / "tests" / "fixtures" / "flat_layout_models"
LOAD_AND_PREDICT = """
import json, sys
import pandas as pd
import mlflow.pyfunc
folder = sys.argv[1]
example = json.load(open(folder + "/input_example.json"))
frame = pd.DataFrame(example["data"], columns=example["columns"])
predicted = mlflow.pyfunc.load_model(folder).predict(frame)
print(predicted.to_json(orient="records"))
"""


@pytest.mark.parametrize("name", ["breast_cancer_logreg", "iris_mlp"])
def test_a_model_logged_by_the_flat_layout_still_loads_and_predicts_the_same(name):
    """These models were logged by mmp before the regrouping (mmp.pyfunc, mmp.torch_models)."""
    folder = FIXTURES / name
    proc = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(folder)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    assert [row["prediction"] for row in got] == [row["prediction"] for row in expected]
    for row, want in zip(got, expected):
        for key, value in want.items():
            if key != "prediction":
                assert row[key] == pytest.approx(value, abs=1e-9), (key, row, want)


@pytest.mark.parametrize("name", ["breast_cancer_logreg", "iris_mlp"])
def test_the_service_loader_reads_a_flat_layout_model_without_mlflow(name):
    import pandas as pd

    from mmp.models.tabular import load_from_mlflow_dir

    model = load_from_mlflow_dir(FIXTURES / name)
    example = json.loads((FIXTURES / name / "input_example.json").read_text())
    predicted = model.predict_frame(pd.DataFrame(example["data"], columns=example["columns"]))
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    assert predicted["prediction"].tolist() == [row["prediction"] for row in expected]


def test_recipes_naming_the_old_mlp_class_path_still_compile(project, mmp):
    recipe = (project / "recipes" / "deep" / "iris_mlp.yaml").read_text().replace("mmp.models.mlp.", "mmp.torch_models.")
    (project / "recipes" / "old_mlp.yaml").write_text(recipe)
    result = mmp("compile", "recipe=old_mlp")
    assert result.code == 0, result.err
