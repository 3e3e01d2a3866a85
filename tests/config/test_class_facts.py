"""Checking a recipe without importing scikit-learn: cached class facts give the same answers as the
classes themselves, a stale or corrupt cache is never believed, and a warm `mmp compile` imports no
scikit-learn, pandas, numpy or MLflow."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest

from mmp.config import facts_cache
from mmp.config.class_facts import ClassFacts
from mmp.config.estimators import ImportProblem, _constraint_problems, check_params, class_facts, facts_of
from tests.conftest import clean_env

HEAVY = ("sklearn", "scipy", "pandas", "numpy", "mlflow", "xgboost", "lightgbm", "torch")
IMPORTED_AFTER = ("import sys\nfrom mmp.cli import run\ntry:\n    rc = run(sys.argv[1:])\nexcept SystemExit as e:\n"
                  f"    rc = e.code\nprint('imported:', [m for m in {HEAVY!r} if m in sys.modules]); sys.exit(rc)")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty cache folder for this test (and a process that has read no cache file yet)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MMP_CACHE_DIR", str(folder))
    monkeypatch.setattr(facts_cache, "_read", {})
    monkeypatch.setattr(facts_cache, "_searched", {})
    return folder


def _mmp_in_subprocess(cwd, cache, *args):
    env = clean_env(MMP_CACHE_DIR=str(cache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run([sys.executable, "-c", IMPORTED_AFTER, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    out, _, imported = proc.stdout.rpartition("imported: ")
    return proc.returncode, out, proc.stderr, eval(imported)


def test_a_second_compile_reads_the_cache_and_imports_no_sklearn_pandas_numpy_or_mlflow(project, tmp_path):
    cache = tmp_path / "cache"
    code, first, err, imported = _mmp_in_subprocess(project, cache, "compile", "recipe=model")
    assert code == 0, err
    assert "sklearn" in imported  # the first run reads the classes themselves
    code, second, err, imported = _mmp_in_subprocess(project, cache, "compile", "recipe=model")
    assert code == 0, err
    assert imported == []
    assert second == first


def test_a_second_validate_finds_the_same_unknown_parameter_without_sklearn(project, tmp_path):
    recipe = (project / "recipes" / "model.yaml").read_text().replace("max_iter: 1000", "max_iters: 1000")
    (project / "recipes" / "typo.yaml").write_text(recipe)
    cache = tmp_path / "cache"
    assert _mmp_in_subprocess(project, cache, "compile", "recipe=model")[0] == 0  # warms the cache
    code, _, err, imported = _mmp_in_subprocess(project, cache, "validate", "recipe=typo")
    assert code == 2
    assert imported == []
    assert "model.params.max_iters" in err and "did you mean 'max_iter'" in err and "typo.yaml" in err


# Values a YAML recipe can give, around the edges of scikit-learn's usual constraints.
PROBES = [None, True, False, 0, 1, -1, 2, 2**32, 0.0, 0.5, 1.0, -0.5, 1.5, math.inf, -math.inf, math.nan,
          "auto", "x", "", "l2", "mean", [1, 2], [], {"a": 1}]


def test_cached_constraints_accept_exactly_what_scikit_learn_accepts():
    from sklearn.utils import all_estimators

    checked = vouched = 0
    with warnings.catch_warnings():  # deprecated estimators warn when built (their kind is read from an instance)
        warnings.simplefilter("ignore")
        facts = [(cls, facts_of(cls)) for _, cls in all_estimators()]
    for cls, live in facts:
        cached = ClassFacts.from_json(json.loads(json.dumps(live.to_json())))
        for key, rules in (cached.constraints or {}).items():
            values = PROBES + [v for rule in (rules if isinstance(rules, list) else []) for v in rule.get("values", [])]
            for value in values:
                real = not _constraint_problems(cls, {key: value}, "model.params", lambda path: None)
                fast = cached.accepts(key, value)
                assert fast == real or (rules is None and not fast), (cls.__name__, key, value, fast, real)
                checked += 1
                vouched += fast
    assert checked > 20_000 and vouched > 5_000


@pytest.mark.parametrize("params", [
    {"C": 1.0, "max_iter": 1000},
    {"C": -1.0, "max_iters": 10},
    {"C": True, "penalty": "l3", "solver": "lbfgs", "tol": "small"},
    {"class_weight": "balanced", "random_state": 2**33, "n_jobs": None},
])
def test_cached_facts_report_the_same_problems_as_the_class(params):
    from sklearn.linear_model import LogisticRegression

    live = facts_of(LogisticRegression, "sklearn.linear_model.LogisticRegression")
    cached = ClassFacts.from_json(live.to_json())
    assert cached.cls is None
    assert check_params(cached, params, "model.params") == check_params(LogisticRegression, params, "model.params")


def _write_package(root, params: str) -> None:
    """`mmp_fake_models.linear.Model(params)`, which needs a package of its own, `mmp_fake_dep`."""
    for name in ("mmp_fake_models", "mmp_fake_dep"):
        (root / name).mkdir(exist_ok=True)
        (root / name / "__init__.py").write_text("")
    (root / "mmp_fake_models" / "linear.py").write_text(textwrap.dedent(f"""
        import mmp_fake_dep

        class Model:
            def __init__(self, {params}):
                pass

            def fit(self, X, y):
                return self

            def predict(self, X):
                return X
    """))


@pytest.fixture
def fake_models(tmp_path, monkeypatch):
    """A model package of our own on sys.path, forgotten by the import system between reads."""
    root = tmp_path / "site"
    root.mkdir()
    _write_package(root, "alpha=1.0")
    monkeypatch.syspath_prepend(str(root))

    def forget():
        for name in [m for m in sys.modules if m.split(".")[0] in ("mmp_fake_models", "mmp_fake_dep")]:
            del sys.modules[name]
        facts_cache._read.clear()
        facts_cache._searched.clear()

    yield root, forget
    forget()


def test_the_cache_answers_until_the_class_file_changes(cache_dir, fake_models):
    root, forget = fake_models
    first = class_facts("mmp_fake_models.linear.Model")
    assert first.cls is not None and first.params == {"alpha"}
    forget()
    cached = class_facts("mmp_fake_models.linear.Model")
    assert cached.cls is None and cached.params == {"alpha"}  # read without importing
    assert "mmp_fake_models" not in sys.modules

    _write_package(root, "alpha=1.0, beta=2")  # an upgrade: the file changes size and time
    forget()
    upgraded = class_facts("mmp_fake_models.linear.Model")
    assert upgraded.cls is not None and upgraded.params == {"alpha", "beta"}


def test_a_package_found_elsewhere_on_the_path_is_read_again(cache_dir, fake_models, tmp_path, monkeypatch):
    _, forget = fake_models
    class_facts("mmp_fake_models.linear.Model")
    other = tmp_path / "other_site"
    other.mkdir()
    _write_package(other, "gamma=3")
    monkeypatch.syspath_prepend(str(other))
    forget()
    facts = class_facts("mmp_fake_models.linear.Model")
    assert facts.cls is not None and facts.params == {"gamma"}


def test_a_dependency_removed_since_is_reported_as_before(cache_dir, fake_models):
    root, forget = fake_models
    class_facts("mmp_fake_models.linear.Model")
    shutil.rmtree(root / "mmp_fake_dep")
    forget()
    with pytest.raises(ImportProblem, match="mmp_fake_dep"):
        class_facts("mmp_fake_models.linear.Model")


@pytest.mark.parametrize("damage", ["not json", "a list", "edited facts", "edited stamp", "missing key"])
def test_a_corrupt_cache_is_a_miss_and_is_rewritten(cache_dir, fake_models, damage):
    _, forget = fake_models
    class_facts("mmp_fake_models.linear.Model")
    path = facts_cache.cache_file()
    data = json.loads(path.read_text())
    entry = data["mmp_fake_models.linear.Model"]
    if damage == "not json":
        path.write_text(path.read_text()[:50])
    elif damage == "a list":
        path.write_text("[1, 2]")
    else:
        if damage == "edited facts":
            entry["facts"]["params"] = ["alpha", "delta"]
        elif damage == "edited stamp":
            entry["files"][0][1] += 1
        else:
            del entry["facts"]["open_ended"]
        path.write_text(json.dumps(data))
    forget()
    facts = class_facts("mmp_fake_models.linear.Model")
    assert facts.cls is not None and facts.params == {"alpha"}
    forget()
    assert class_facts("mmp_fake_models.linear.Model").cls is None  # written again, and trusted again


def test_a_cache_folder_that_cannot_be_written_only_costs_time(tmp_path, monkeypatch, fake_models):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MMP_CACHE_DIR", str(blocker / "cache"))
    _, forget = fake_models
    forget()
    assert class_facts("mmp_fake_models.linear.Model").params == {"alpha"}
    assert not os.path.exists(blocker / "cache")
