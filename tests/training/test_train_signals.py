"""A training run never stays RUNNING: SIGTERM marks it KILLED; after SIGKILL the next mmp command
against the same store marks it FAILED."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import clean_env, run_mmp

pytestmark = pytest.mark.slow

# An MLP that trains for minutes unless stopped.
LONG = ["recipe=deep/iris_mlp", "++model.params.max_epochs=1000000", "++model.params.patience=1000000"]


def client(store):
    """A client of `store`, opened as mmp opens it: under the store's lock, so that this test never
    races an mmp process that is creating the tables."""
    import fcntl

    import mlflow

    from mmp.io.tracking import mlflow_uri

    uri = mlflow_uri(str(store))
    with open(store / ".mlflow.db.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        opened = mlflow.MlflowClient(tracking_uri=uri)
        opened.search_experiments(max_results=1)
    return opened


def start_long_train(workspace, store, experiment: str) -> tuple[subprocess.Popen, str]:
    """Start a long `mmp train`; return the process and its run id once the run is RUNNING."""
    proc = subprocess.Popen([sys.executable, "-m", "mmp", "train", *LONG, f"mlflow.tracking_uri={store}",
                             f"mlflow.experiment={experiment}"], cwd=workspace, env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if (store / ".mlflow.db.lock").exists():
            found = client(store).get_experiment_by_name(experiment)
            runs = client(store).search_runs([found.experiment_id]) if found else []
            if runs:
                time.sleep(1.0)  # let it reach the fit stage
                return proc, runs[0].info.run_id
        time.sleep(0.3)
    proc.kill()
    raise TimeoutError("the run did not start")


def test_sigterm_marks_the_run_killed_and_exits_143(workspace, tmp_path):
    store = tmp_path / "mlruns"
    proc, run_id = start_long_train(workspace, store, "sigterm")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped by signal 15" in err and "Traceback" not in err
    run = client(store).get_run(run_id)
    assert run.info.status == "KILLED"


def test_after_sigkill_the_next_command_marks_the_dead_run_failed(workspace, tmp_path):
    store = tmp_path / "mlruns"
    proc, run_id = start_long_train(workspace, store, "sigkill")
    alive_proc, alive_run = start_long_train(workspace, store, "still-running")  # must be left alone
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert client(store).get_run(run_id).info.status == "RUNNING"  # nobody could close it
        result = run_mmp("train", "recipe=iris", f"mlflow.tracking_uri={store}", "-q", cwd=workspace, env=clean_env())
        assert result.code == 0, result.err
        dead = client(store).get_run(run_id)
        assert dead.info.status == "FAILED" and "ended without closing the run" in dead.data.tags["mmp.failure"]
        assert client(store).get_run(alive_run).info.status == "RUNNING"
        assert run_id in result.err
    finally:
        alive_proc.send_signal(signal.SIGTERM)
        alive_proc.communicate(timeout=60)
    assert client(store).get_run(alive_run).info.status == "KILLED"
