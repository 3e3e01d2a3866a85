"""`mmp train` end to end: real data, every task, MLflow's embedded store and a real server, S3, sweeps."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLE_RECIPES, REPO, clean_env, free_port, run_mmp, wait_for_http

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def client(workspace):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    return mlflow.MlflowClient(tracking_uri=mlflow_uri(str(workspace / "mlruns")))


def test_run_id_is_printed_last_on_its_own_line(trained):
    assert all(RUN_ID.match(run_id) for run_id in trained.values())


PREDICT_IN_FRESH_PROCESS = """
import json, sys
import mlflow
from mlflow.models import Model
mlflow.set_tracking_uri(sys.argv[1])
out = {}
for recipe, run_id in json.loads(sys.argv[2]).items():
    uri = f"runs:/{run_id}/model"
    model = mlflow.pyfunc.load_model(uri)
    example = Model.load(uri).load_input_example(mlflow.artifacts.download_artifacts(uri))
    predicted = model.predict(example)
    out[recipe] = {"columns": list(predicted.columns), "rows": len(predicted), "example_rows": len(example)}
print(json.dumps(out))
"""


def test_every_example_model_loads_and_predicts_its_input_example_in_a_fresh_process(workspace, trained):
    from mmp.io.tracking import mlflow_uri

    proc = subprocess.run([sys.executable, "-c", PREDICT_IN_FRESH_PROCESS, mlflow_uri(str(workspace / "mlruns")),
                           json.dumps(trained)], capture_output=True, text=True, cwd=workspace, timeout=300,
                          env=clean_env())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out) == set(EXAMPLE_RECIPES)
    for recipe, seen in out.items():
        assert seen["rows"] == seen["example_rows"] > 0, recipe
    # DESIGN §6: prediction, then probability (binary) or probability_<class> (multi-class)
    assert out["model"]["columns"] == ["prediction", "probability"]
    assert out["boosting/breast_cancer_xgb"]["columns"] == ["prediction", "probability"]
    assert out["iris"]["columns"] == ["prediction", "probability_setosa", "probability_versicolor", "probability_virginica"]
    assert out["deep/iris_mlp"]["columns"] == out["iris"]["columns"]
    for recipe in ("diabetes", "wine_clusters", "boosting/diabetes_lgbm", "deep/diabetes_mlp"):
        assert out[recipe]["columns"] == ["prediction"]
    assert out["calibrated_nb"]["columns"] == ["prediction", "probability"]
    assert out["diabetes_quantiles"]["columns"] == ["prediction", "prediction_q05", "prediction_q50", "prediction_q95"]


def test_logged_model_needs_no_mmp_install(workspace, trained):
    from mmp.io.tracking import mlflow_uri

    code = ("import sys; sys.modules['mmp'] = None\n"
            "import mlflow, pandas as pd\n"
            f"m = mlflow.pyfunc.load_model('runs:/{trained['deep/iris_mlp']}/model')\n"
            "print(m.predict(pd.read_csv('data/iris.csv').head(4))['prediction'].tolist())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=workspace,
                          env=clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns"))), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "['setosa', 'setosa', 'setosa', 'setosa']"


def test_run_logs_params_metrics_per_split_tags_config_and_plots(workspace, trained):
    mlflow = client(workspace)
    run = mlflow.get_run(trained["model"])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.params.C"] == "1.0" and params["data.split.seed"] == "42"
    assert params["preprocess.0.type"] == "impute" and params["model.class_path"].endswith("LogisticRegression")
    assert int(params["split.train_rows"]) + int(params["split.validation_rows"]) + int(params["split.test_rows"]) == 569
    for split in ("train", "validation", "test"):
        for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
            assert f"{split}_{metric}" in run.data.metrics
    assert run.data.metrics["test_roc_auc"] > 0.95
    tags = run.data.tags
    assert tags["mmp.recipe"] == "model" and tags["mmp.env"] == "local" and tags["mmp.task"] == "classification"
    assert tags["mmp.model_class"] == "sklearn.linear_model.LogisticRegression"
    assert re.match(r"^[0-9a-f]{16}$", tags["mmp.data_fingerprint"]) and tags["mmp.version"]
    artifacts = _artifact_paths(mlflow, run.info.run_id)
    assert {"mmp/config.yaml", "plots/confusion_matrix.png", "plots/roc_curve.png", "plots/feature_importance.png"} <= artifacts
    regression = _artifact_paths(mlflow, trained["diabetes"])
    assert "plots/residuals.png" in regression and "plots/feature_importance.png" in regression
    assert client(workspace).get_run(trained["diabetes"]).data.metrics["test_r2"] > 0.3


def _artifact_paths(mlflow, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in mlflow.list_artifacts(run_id, path):
        found |= _artifact_paths(mlflow, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_same_data_gives_the_same_fingerprint_and_metrics(workspace, trained):
    again = run_mmp("train", "recipe=iris", "-q", cwd=workspace, env=clean_env())
    assert again.code == 0, again.err
    first, second = (client(workspace).get_run(r) for r in (trained["iris"], again.out.split()[-1]))
    assert first.data.tags["mmp.data_fingerprint"] == second.data.tags["mmp.data_fingerprint"]
    assert first.data.metrics == second.data.metrics


def test_logged_model_serves_under_mlflow_models_serve(workspace, trained):
    import httpx

    from mmp.io.tracking import mlflow_uri

    port = free_port()
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")),
                    PATH=f"{REPO / '.venv' / 'bin'}:{__import__('os').environ['PATH']}")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{trained['iris']}/model",
                             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=workspace, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", timeout=120, proc=proc)
        rows = [{"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4, "petal_width_cm": 0.2},
                {"sepal_length_cm": 6.7, "sepal_width_cm": 3.0, "petal_length_cm": 5.2, "petal_width_cm": 2.3}]
        response = httpx.post(f"http://127.0.0.1:{port}/invocations", json={"dataframe_records": rows}, timeout=30)
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert [p["prediction"] for p in predictions] == ["setosa", "virginica"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_train_against_a_real_mlflow_server(workspace, mlflow_server):
    result = run_mmp("train", "recipe=diabetes", "-q", cwd=workspace, env=clean_env(MLFLOW_TRACKING_URI=mlflow_server))
    assert result.code == 0, result.err
    run_id = result.out.split()[-1]
    code = ("import mlflow, pandas as pd, sys\n"
            f"mlflow.set_tracking_uri('{mlflow_server}')\n"
            f"m = mlflow.pyfunc.load_model('runs:/{run_id}/model')\n"
            "print(len(m.predict(pd.read_csv('data/diabetes.csv').head(7))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=workspace, timeout=120,
                          env=clean_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "7"
    import mlflow

    run = mlflow.MlflowClient(tracking_uri=mlflow_server).get_run(run_id)
    assert run.info.status == "FINISHED" and "test_rmse" in run.data.metrics


def test_s3_training_data_through_moto_and_secrets_never_reach_mlflow(workspace, s3_server, tmp_path):
    import s3fs

    secret = "s3cr3t-Value-That-Must-Not-Leak"
    fs = s3fs.S3FileSystem(key="testing", secret=secret, endpoint_url=s3_server)
    fs.put(str(workspace / "data" / "iris.csv"), "mmp-test/train/iris.csv")
    result = run_mmp(
        "train", "recipe=iris", "-d", "s3://mmp-test/train/iris.csv",
        f"+source.storage_options.endpoint_url={s3_server}", "+source.storage_options.key=testing",
        "+source.storage_options.secret=${oc.env:SOME_SECRET}", "mlflow.experiment=iris-from-s3",
        cwd=workspace, env=clean_env(SOME_SECRET=secret, AWS_DEFAULT_REGION="us-east-1"),
    )
    assert result.code == 0, result.err
    assert secret not in result.out and secret not in result.err
    run_id = result.out.split()[-1]
    mlflow = client(workspace)
    run = mlflow.get_run(run_id)
    assert run.data.tags["mmp.data_source"] == "s3://mmp-test/train/iris.csv"
    assert run.data.metrics["test_accuracy"] > 0.8
    everything = json.dumps([run.data.params, run.data.tags, run.data.metrics])
    for path in _artifact_paths(mlflow, run_id):
        local = mlflow.download_artifacts(run_id, path, str(tmp_path))
        with open(local, "rb") as f:
            everything += f.read().decode("latin-1")
    assert "${oc.env:SOME_SECRET}" in everything  # the config artifact names the variable...
    assert secret not in everything               # ...never its value


def test_sweep_yields_one_child_per_job_and_a_parent_tagged_with_the_best(workspace):
    result = run_mmp("train", "-m", "recipe=model", "model.params.C=0.01,1.0,100.0", "mlflow.experiment=sweep-test",
                     "-q", cwd=workspace, env=clean_env())
    assert result.code == 0, result.err
    ids = result.out.split()
    assert len(ids) == 4 and all(RUN_ID.match(i) for i in ids)
    children, parent_id = ids[:3], ids[3]
    mlflow = client(workspace)
    parent = mlflow.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    for child in children:
        assert mlflow.get_run(child).data.tags["mlflow.parentRunId"] == parent_id
    scores = {c: mlflow.get_run(c).data.metrics["validation_roc_auc"] for c in children}
    assert parent.data.tags["mmp.best_run_id"] == max(scores, key=scores.get)
    assert parent.data.metrics["best_validation_roc_auc"] == max(scores.values())
    assert "best" in result.err


@pytest.mark.parametrize("args, message", [
    (["recipe=iris", "-d", "no/such.csv"], "no such file: no/such.csv"),
    (["recipe=iris", "data.target=label"], "data.target: column not in the data: label"),
    (["recipe=iris", "mlflow.tracking_uri=http://127.0.0.1:9"], "cannot reach the MLflow tracking server"),
])
def test_bad_input_exits_2_before_any_run(workspace, args, message):
    result = run_mmp("train", *args, "mlflow.experiment=bad-input", cwd=workspace, env=clean_env())
    assert result.code == 2, result.err
    assert message in result.err and "Traceback" not in result.err


def test_single_class_target_exits_2(workspace, tmp_path):
    import polars as pl

    pl.read_csv(workspace / "data" / "iris.csv").head(40).write_csv(tmp_path / "setosa.csv")
    result = run_mmp("train", "recipe=iris", "-d", str(tmp_path / "setosa.csv"), cwd=workspace, env=clean_env())
    assert result.code == 2 and "fewer than two classes" in result.err


def test_a_run_that_fails_midway_is_marked_failed(workspace):
    # KMeans cannot make more clusters than it has rows: fit fails after the run has started.
    result = run_mmp("train", "recipe=wine_clusters", "model.params.n_clusters=500", "mlflow.experiment=fails-midway",
                     cwd=workspace, env=clean_env())
    assert result.code == 1 and "n_clusters=500" in result.err
    mlflow = client(workspace)
    experiment = mlflow.get_experiment_by_name("fails-midway")
    runs = mlflow.search_runs([experiment.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_train_prints_validation_and_test_metrics(workspace):
    result = run_mmp("train", "recipe=iris", "mlflow.experiment=printed", cwd=workspace, env=clean_env())
    assert result.code == 0, result.err
    line = next(line for line in result.err.splitlines() if "evaluate" in line)
    assert "validation accuracy" in line and "test accuracy" in line


MLFLOW2_FILE_STORE = """
import sys
import mlflow
mlflow.set_tracking_uri("file:" + sys.argv[1])
with mlflow.start_run(experiment_id=mlflow.create_experiment("from-mlflow-2")) as run:
    mlflow.log_metric("score", 1.0)
print(run.info.run_id)
"""


def test_an_existing_mlflow_file_store_is_used_not_hidden(workspace, tmp_path, monkeypatch):
    store = tmp_path / "mlruns"
    made = subprocess.run([sys.executable, "-c", MLFLOW2_FILE_STORE, str(store)], capture_output=True, text=True,
                          env=clean_env(MLFLOW_ALLOW_FILE_STORE="true"), timeout=120)
    assert made.returncode == 0, made.stderr
    old_run = made.stdout.strip().splitlines()[-1]
    result = run_mmp("train", "recipe=iris", f"mlflow.tracking_uri={store}", "-q", cwd=workspace, env=clean_env())
    assert result.code == 0, result.err
    assert "holds an MLflow file store" in result.err and "mlflow migrate-filestore" in result.err
    new_run = result.out.strip().splitlines()[-1]
    assert not (store / "mlflow.db").exists()
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow_client = mlflow.MlflowClient(tracking_uri=store.as_uri())
    assert mlflow_client.get_run(old_run).data.metrics["score"] == 1.0
    assert mlflow_client.get_run(new_run).data.tags["mmp.recipe"] == "iris"
    out = tmp_path / "preds.csv"
    batch = run_mmp("batch-inference", "--run-id", new_run, "-d", "data/iris.csv", "-o", str(out),
                    f"mlflow.tracking_uri={store}", "-q", cwd=workspace, env=clean_env())
    assert batch.code == 0, batch.err
    assert len(out.read_text().splitlines()) == 151
