"""Recipe-level tuning with Optuna, on real data, with real MLflow runs: a parent run per study, a
child run per trial (pruned and failed ones included), the best params refit and logged as the
parent's model, which batch inference and the server then use."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import Server, clean_env, run_mmp

pytestmark = pytest.mark.slow

# A trial with l1_ratio > 0 on newton-cholesky raises at fit time: a real failing trial.
LOGREG = ["recipe=tuning/breast_cancer", "tune.n_trials=8",
          "+tune.params.solver={type: categorical, choices: [saga, newton-cholesky]}"]
LGBM = ["recipe=tuning/diabetes_lgbm", "tune.n_trials=14", "tune.refit=train"]


def _client(workspace):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    mlflow.set_tracking_uri(mlflow_uri(str(workspace / "mlruns")))
    return mlflow.MlflowClient()


def _children(client, parent: str):
    run = client.get_run(parent)
    return client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'", max_results=500)


@pytest.fixture(scope="module")
def studies(workspace):
    """Each study trained once: name -> (parent run id, stderr)."""
    out = {}
    for name, words in (("logreg", LOGREG), ("lgbm", LGBM)):
        result = run_mmp("train", *words, cwd=workspace, env=clean_env())
        assert result.code == 0, result.err
        out[name] = (result.out.strip().splitlines()[-1], result.err)
    return out


def test_a_study_logs_one_child_run_per_trial_under_the_parent(workspace, studies):
    client = _client(workspace)
    parent, _ = studies["logreg"]
    children = _children(client, parent)
    assert len(children) == 8
    assert sorted(int(c.data.tags["mmp.trial_number"]) for c in children) == list(range(8))
    for child in children:
        state = child.data.tags["mmp.trial_state"]
        assert {"COMPLETE": "FINISHED", "FAIL": "FAILED", "PRUNED": "KILLED"}[state] == child.info.status
        assert {"C", "l1_ratio", "solver"} <= set(child.data.params)
        if state == "COMPLETE":
            assert 0.5 < child.data.metrics["validation_roc_auc"] <= 1


def test_a_failing_trial_is_failed_with_its_reason_and_the_study_goes_on(workspace, studies):
    client = _client(workspace)
    parent, err = studies["logreg"]
    children = _children(client, parent)
    failed = [c for c in children if c.data.tags["mmp.trial_state"] == "FAIL"]
    assert failed, "the seeded study draws newton-cholesky with l1_ratio > 0 at least once"
    for child in failed:
        assert child.data.params["solver"] == "newton-cholesky"
        assert "ValueError" in child.data.tags["mmp.trial_reason"]
    assert any(c.data.tags["mmp.trial_state"] == "COMPLETE" for c in children)
    assert "fail ValueError" in err and client.get_run(parent).info.status == "FINISHED"


def test_the_best_params_are_refit_and_logged_as_the_parent_runs_model(workspace, studies):
    client = _client(workspace)
    parent, _ = studies["logreg"]
    run = client.get_run(parent)
    complete = [c for c in _children(client, parent) if c.data.tags["mmp.trial_state"] == "COMPLETE"]
    best = max(complete, key=lambda c: c.data.metrics["validation_roc_auc"])
    assert run.data.tags["mmp.tune_best_trial"] == best.data.tags["mmp.trial_number"]
    assert run.data.metrics["tune_best_validation_roc_auc"] == best.data.metrics["validation_roc_auc"]
    for name in ("C", "l1_ratio", "solver"):
        assert run.data.params[f"tune.best.{name}"] == best.data.params[name]
    # the refit on train with the best params scores exactly what the best trial scored on validation
    assert run.data.metrics["validation_roc_auc"] == pytest.approx(best.data.metrics["validation_roc_auc"])
    import mlflow

    loaded = mlflow.pyfunc.load_model(f"runs:/{parent}/model")
    assert loaded.metadata.metadata["mmp"]["task"] == "classification"
    assert {"tune/trials.csv", "tune/best.json"} <= {a.path for a in client.list_artifacts(parent, "tune")}
    plots = {a.path for a in client.list_artifacts(parent, "plots")}
    assert {"plots/tune_optimization_history.png", "plots/tune_param_importances.png"} <= plots


def test_the_trial_table_lists_every_trial_with_its_state_params_and_error(workspace, studies, tmp_path):
    client = _client(workspace)
    parent, _ = studies["logreg"]
    path = client.download_artifacts(parent, "tune/trials.csv", str(tmp_path))
    rows = list(csv.DictReader(open(path)))
    assert [int(r["number"]) for r in rows] == list(range(8))
    assert {r["state"] for r in rows} >= {"COMPLETE", "FAIL"}
    assert all(r["error"] for r in rows if r["state"] == "FAIL")
    best = json.loads(open(client.download_artifacts(parent, "tune/best.json", str(tmp_path))).read())
    assert best["direction"] == "maximize" and best["metric"] == "validation_roc_auc"


def test_a_boosted_model_reports_every_stage_and_the_median_pruner_stops_bad_trials(workspace, studies):
    client = _client(workspace)
    parent, err = studies["lgbm"]
    children = _children(client, parent)
    states = [c.data.tags["mmp.trial_state"] for c in children]
    assert len(children) == 14 and "PRUNED" in states and "COMPLETE" in states
    for child in children:
        history = client.get_metric_history(child.info.run_id, "validation_rmse")
        if child.data.tags["mmp.trial_state"] == "COMPLETE":
            assert [m.step for m in history] == list(range(1, 11)), "10 stages of n_estimators, each reported"
        elif child.data.tags["mmp.trial_state"] == "PRUNED":
            assert len(history) < 10 and "pruned at step" in child.data.tags["mmp.trial_reason"]
    assert "pruned" in err
    best = min((c for c in children if c.data.tags["mmp.trial_state"] == "COMPLETE"),
               key=lambda c: c.data.metrics["validation_rmse"])
    # the staged trial and the one-shot refit on the same rows are the same model
    assert client.get_run(parent).data.metrics["validation_rmse"] == pytest.approx(
        best.data.metrics["validation_rmse"], rel=1e-9)
    plots = {a.path for a in client.list_artifacts(parent, "plots")}
    assert "plots/tune_intermediate_values.png" in plots


def test_the_parent_run_batch_predicts_and_serves_the_tuned_model(workspace, studies, tmp_path):
    import polars as pl

    parent, _ = studies["lgbm"]
    out = tmp_path / "predictions.parquet"
    env = clean_env()
    result = run_mmp("batch-inference", "--run-id", parent, "-d", "data/diabetes.csv", "-o", str(out),
                     cwd=workspace, env=env)
    assert result.code == 0, result.err
    predictions = pl.read_parquet(out)
    assert predictions.height == 442 and "prediction" in predictions.columns

    import httpx

    server = Server(workspace, parent)
    try:
        server.wait_ready()
        rows = pl.read_csv(workspace / "data/diabetes.csv").head(3).drop("progression").to_dicts()
        answer = httpx.post(f"{server.url}/predict/batch", json={"samples": rows}, timeout=30)
        assert answer.status_code == 200, answer.text
        served = [p["prediction"] for p in answer.json()["predictions"]]
        assert served == pytest.approx(predictions["prediction"].head(3).to_list(), rel=1e-6)
    finally:
        server.stop()


def test_cross_validation_scores_each_trial_over_k_folds(workspace):
    result = run_mmp("train", "recipe=tuning/breast_cancer", "tune.n_trials=3", "tune.cv=3",
                     cwd=workspace, env=clean_env())
    assert result.code == 0, result.err
    client = _client(workspace)
    parent = result.out.strip().splitlines()[-1]
    for child in _children(client, parent):
        history = client.get_metric_history(child.info.run_id, "cv_roc_auc")
        assert [m.step for m in history] == [0, 1, 2]  # the running mean after each fold
    assert "tune_best_cv_roc_auc" in client.get_run(parent).data.metrics


def test_refit_on_train_and_validation_scores_the_model_on_test(workspace):
    result = run_mmp("train", "recipe=tuning/breast_cancer", "tune.n_trials=2", "tune.refit=train+validation",
                     cwd=workspace, env=clean_env())
    assert result.code == 0, result.err
    assert "on 484 rows (train + validation)" in result.err
    client = _client(workspace)
    run = client.get_run(result.out.strip().splitlines()[-1])
    assert "test_roc_auc" in run.data.metrics and run.data.params["tune.refit"] == "train+validation"


def test_a_study_where_every_trial_fails_exits_2_and_fails_the_parent(workspace):
    result = run_mmp("train", "recipe=tuning/breast_cancer", "tune.n_trials=2", "model.params.solver=newton-cholesky",
                     "tune.params.l1_ratio.low=0.5", cwd=workspace, env=clean_env())
    assert result.code == 2, result.err
    assert "tune: none of the 2 trial(s) completed (2 failed, 0 pruned); the first error: ValueError" in result.err
    assert "Traceback" not in result.err


def test_a_seeded_study_repeats_its_trials(workspace):
    values = []
    for _ in range(2):
        result = run_mmp("train", "recipe=tuning/breast_cancer", "tune.n_trials=3", "tune.seed=11",
                         cwd=workspace, env=clean_env())
        assert result.code == 0, result.err
        client = _client(workspace)
        children = _children(client, result.out.strip().splitlines()[-1])
        values.append(sorted((c.data.tags["mmp.trial_number"], c.data.params["C"]) for c in children))
    assert values[0] == values[1]


def test_sigterm_during_a_study_leaves_no_run_running(workspace, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.training.test_train_signals import client

    store = tmp_path / "mlruns"
    proc = subprocess.Popen([sys.executable, "-m", "mmp", "train", "recipe=tuning/breast_cancer", "tune.n_trials=100000",
                             f"mlflow.tracking_uri={store}"], cwd=workspace, env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, runs = time.monotonic() + 120, []
    while time.monotonic() < deadline and len(runs) < 4:  # the parent and a few trials
        assert proc.poll() is None, proc.communicate()
        if (store / ".mlflow.db.lock").exists():
            found = client(store).get_experiment_by_name("breast_cancer_tuned")
            runs = client(store).search_runs([found.experiment_id]) if found else []
        time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    runs = client(store).search_runs([runs[0].info.experiment_id], max_results=1000)
    statuses = {r.info.status for r in runs}
    assert "RUNNING" not in statuses and "KILLED" in statuses
    parent = next(r for r in runs if r.data.tags.get("mmp.tune") == "parent")
    assert parent.info.status == "KILLED"
