"""One Optuna study shared by several `mmp train` processes through a real PostgreSQL server:
every process pulls trials until the study has n_trials, and exactly one refits the best."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import clean_env

pytestmark = pytest.mark.slow


def _start(workspace, *words: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mmp", "train", *words], cwd=workspace, env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_fill_one_postgresql_study_and_exactly_one_refits(workspace, postgres_db):
    import mlflow
    import optuna

    from mmp.io.tracking import mlflow_uri

    words = ["recipe=tuning/breast_cancer", "tune.n_trials=10", f"tune.storage={postgres_db}", "tune.study=shared"]
    procs = [_start(workspace, *words) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
    parents = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(parents) == 1, "both processes name the one parent run"
    parent = parents.pop()

    study = optuna.load_study(study_name="shared", storage=postgres_db)
    assert len(study.trials) == 10 and all(t.state.is_finished() for t in study.trials)
    assert sorted(t.number for t in study.trials) == list(range(10))
    assert sum("another process refits the best" in err for _, err in outs) == 1
    assert sum("✓ log" in err for _, err in outs) == 1
    ran = [sum(line.strip().startswith("trial ") for line in err.splitlines()) for _, err in outs]
    assert sum(ran) == 10 and min(ran) >= 1, f"each process ran trials: {ran}"

    mlflow.set_tracking_uri(mlflow_uri(str(workspace / "mlruns")))
    client = mlflow.MlflowClient()
    run = client.get_run(parent)
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert len(children) == 10 and run.info.status == "FINISHED"
    assert run.data.tags["mmp.tune_trials"] == "10"
    assert mlflow.pyfunc.load_model(f"runs:/{parent}/model") is not None
    assert postgres_db.split("@")[0].split(":")[-1] not in str(run.data.params) + str(run.data.tags)


def test_a_process_with_another_search_space_cannot_join_the_study(workspace, postgres_db):
    first = _start(workspace, "recipe=tuning/breast_cancer", "tune.n_trials=2", f"tune.storage={postgres_db}",
                   "tune.study=guarded")
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    second = _start(workspace, "recipe=tuning/breast_cancer", "tune.n_trials=2", f"tune.storage={postgres_db}",
                    "tune.study=guarded", "tune.params.C.high=5")
    out, err = second.communicate(timeout=600)
    assert second.returncode == 2
    assert "tune.study: study 'guarded'" in err and "searches a different space (differs in: params)" in err
    assert postgres_db.split("@")[0].split(":")[-1] not in err


def test_two_processes_on_one_sqlite_file_never_run_a_trial_twice(workspace, tmp_path):
    """SQLite ignores the row lock Optuna's claim relies on (optuna#4002); mmp serialises claims with a
    file lock, so fast trials claimed by two processes at once are still each run exactly once."""
    import optuna

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    words = ["recipe=tuning/breast_cancer", "tune.n_trials=60", "tune.pruner=none", f"tune.storage={url}",
             "tune.study=fast", "model.params.max_iter=50"]
    procs = [_start(workspace, *words) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    numbers = [int(line.split()[1].rstrip(":")) for _, err in outs for line in err.splitlines()
               if line.strip().startswith("trial ")]
    assert sorted(numbers) == list(range(60)), "every trial ran once, in one of the processes"
    study = optuna.load_study(study_name="fast", storage=url)
    assert len(study.trials) == 60 and all(t.state.is_finished() for t in study.trials)
