"""The MLflow store: several `mmp train` processes racing on one embedded store lose nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import clean_env

pytestmark = pytest.mark.slow


def race(workspace, store, recipes: list[str]) -> list[tuple[int, str, str]]:
    """Start one `mmp train` per recipe at the same moment on `store`; (exit code, stdout, stderr) each."""
    procs = [subprocess.Popen([sys.executable, "-m", "mmp", "train", f"recipe={recipe}", "-q",
                               f"mlflow.tracking_uri={store}"], cwd=workspace, env=clean_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for recipe in recipes]
    outputs = [p.communicate(timeout=600) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


def finished_runs(store) -> dict[str, str]:
    import mlflow

    from mmp.io.tracking import mlflow_uri

    client = mlflow.MlflowClient(tracking_uri=mlflow_uri(str(store)))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return {r.info.run_id: r.info.status for r in runs}


def test_trains_racing_on_a_fresh_store_and_then_on_the_existing_one_all_land(workspace, tmp_path):
    store = tmp_path / "mlruns"
    recipes = ["model", "model", "iris", "diabetes"]  # two of them create the same experiment
    for attempt in ("fresh", "existing"):
        results = race(workspace, store, recipes)
        assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
        run_ids = [out.strip().splitlines()[-1] for _, out, _ in results]
        runs = finished_runs(store)
        assert all(runs[run_id] == "FINISHED" for run_id in run_ids), attempt
    assert len(finished_runs(store)) == 2 * len(recipes)
    # the store stays usable for anything else MLflow does
    import mlflow

    from mmp.io.tracking import mlflow_uri

    assert {e.name for e in mlflow.MlflowClient(tracking_uri=mlflow_uri(str(store))).search_experiments()} >= \
        {"breast_cancer", "iris", "diabetes"}


def test_a_sqlite_tracking_uri_in_a_folder_that_does_not_exist_yet_is_created(workspace, tmp_path):
    database = tmp_path / "new" / "folder" / "mlflow.db"
    result = subprocess.run([sys.executable, "-m", "mmp", "train", "recipe=iris", "-q"], cwd=workspace,
                            env=clean_env(MLFLOW_TRACKING_URI=f"sqlite:///{database}"), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    import mlflow

    run = mlflow.MlflowClient(tracking_uri=f"sqlite:///{database}").get_run(result.stdout.split()[-1])
    assert run.info.status == "FINISHED"
