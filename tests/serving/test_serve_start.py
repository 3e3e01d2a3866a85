"""`mmp serve-api`'s way to the server: a run's model in the embedded store is found and put into the
BentoML store without importing MLflow, a restart finds it there without importing MLflow or BentoML,
and what it writes is what the MLflow way writes."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import clean_env, free_port

# Runs `mmp serve-api ARGS` up to the point where it would become the BentoML server, then prints what
# that server would have been started with and which heavy libraries this process imported on the way.
UNTIL_EXEC = """
import json, os, sys
def execve(path, argv, env):
    heavy = sorted(m for m in ("mlflow", "bentoml", "sklearn", "pandas") if m in sys.modules)
    print(json.dumps({"argv": argv, "tag": env["MMP_MODEL_TAG"], "info": json.loads(env["MMP_MODEL_INFO"]),
                      "imported": heavy}), flush=True)
    os._exit(0)
os.execve = execve
from mmp.cli import run
sys.exit(run(sys.argv[1:]))
"""


def serve_until_exec(workspace, run_id: str, bentoml_home) -> dict:
    from mmp.io.tracking import mlflow_uri

    env = clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")), BENTOML_HOME=str(bentoml_home))
    proc = subprocess.run([sys.executable, "-c", UNTIL_EXEC, "serve-api", "--run-id", run_id, "--port", str(free_port())],
                          cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_first_start_skips_mlflow_and_a_restart_skips_mlflow_and_bentoml(workspace, trained, tmp_path):
    first = serve_until_exec(workspace, trained["iris"], tmp_path / "bentoml")
    assert first["imported"] == ["bentoml"]  # to write into its store; the run is read without MLflow
    again = serve_until_exec(workspace, trained["iris"], tmp_path / "bentoml")
    assert again["imported"] == []
    assert again["tag"] == first["tag"] == f"mmp-iris:{trained['iris']}"
    assert again["info"] == first["info"] and first["info"]["run_id"] == trained["iris"]
    assert first["info"]["metrics"] and first["info"]["params"] and first["info"]["recipe"] == "iris"
    assert first["argv"][1:3] == ["-m", "mmp.serving.supervisor"]


# Puts one run's model into two BentoML stores, through MLflow (bentoml.mlflow.import_model) and
# through mmp's direct read of the store, and prints both results.
BOTH_WAYS = """
import json, os, sys
from pathlib import Path
os.environ["BENTOML_HOME"] = sys.argv[2]
from mmp.io import tracking
from mmp.serving import serve_api
uri = f"runs:/{sys.argv[1]}/model"
details, model_dir = serve_api.resolve_locally(uri, tracking.mlflow_uri(None))
tracking.connect(None)
through_mlflow = serve_api.resolve(uri)
direct, _ = serve_api.import_model(details, model_dir)
import bentoml
home = Path(sys.argv[2]) / "models"
def entry(tag):
    path = Path(bentoml.models.get(tag).path)
    info = (path / "model.yaml").read_text().splitlines()
    files = {str(p.relative_to(path / "mlflow_model")): p.read_bytes().hex()
             for p in sorted((path / "mlflow_model").rglob("*")) if p.is_file()}
    return [line for line in info if "creation_time" not in line], files
direct_entry = entry(direct)
bentoml.models.delete(direct)
serve_api.import_model(through_mlflow)
print(json.dumps({"details_equal": details == through_mlflow, "direct": direct_entry, "mlflow": entry(direct)}))
"""


def test_the_model_copied_without_mlflow_is_what_bentoml_mlflow_import_writes(workspace, trained, tmp_path):
    from mmp.io.tracking import mlflow_uri

    env = clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")))
    proc = subprocess.run([sys.executable, "-c", BOTH_WAYS, trained["model"], str(tmp_path / "bentoml")],
                          cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["details_equal"]
    assert result["direct"] == result["mlflow"]  # model.yaml (labels, metadata, module, context) and every file


def test_a_store_mmp_does_not_read_itself_is_left_to_mlflow(tmp_path):
    from mmp.io.run_store import read_run_model

    assert read_run_model("http://127.0.0.1:5000", "0" * 32, "model") is None
    assert read_run_model(f"sqlite:///{tmp_path / 'none.db'}", "0" * 32, "model") is None
    (tmp_path / "broken.db").write_text("not a database")
    assert read_run_model(f"sqlite:///{tmp_path / 'broken.db'}", "0" * 32, "model") is None
