"""The plot worker (a forked process drawing a run's plots while the run logs its model) and MLflow's
requirement check skipped for mmp's own pins."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

from mmp.training import plot_worker, plots

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the worker forks on Linux only")


def _classification() -> tuple[tuple, dict]:
    rng = np.random.default_rng(0)
    y = np.where(rng.random(60) > 0.5, "malignant", "benign")
    probability = np.clip(np.where(y == "malignant", 0.7, 0.3) + rng.normal(0, 0.2, 60), 0, 1)
    predicted = pd.DataFrame({"prediction": np.where(probability > 0.5, "malignant", "benign"),
                              "probability": probability})
    importance = ([f"x{i}" for i in range(5)], rng.random(5))
    return ("classification", y, predicted, ["benign", "malignant"]), {"uncalibrated": None, "importance": importance}


def _gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # reaped: not our child any more
    return False


def test_the_worker_draws_the_same_pngs_as_this_process(tmp_path):
    args, kwargs = _classification()
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()
    assert plot_worker.render(None, str(here), *args, **kwargs) == ["confusion_matrix", "roc_curve", "feature_importance"]

    worker = plot_worker.PlotWorker.start()
    pid, folder = worker.pid, worker.folder
    try:
        worker.submit(*args, **kwargs)
        assert plot_worker.render(worker, str(there), *args, **kwargs) == ["confusion_matrix", "roc_curve",
                                                                         "feature_importance"]
    finally:
        worker.close()
    for name in ("confusion_matrix", "roc_curve", "feature_importance"):
        assert (there / f"{name}.png").read_bytes() == (here / f"{name}.png").read_bytes(), name
    assert _gone(pid) and not os.path.exists(folder)


def test_a_drawing_error_in_the_worker_is_raised_here_with_its_traceback(tmp_path):
    args, kwargs = _classification()
    broken = args[2].drop(columns="prediction")  # the confusion matrix needs it
    worker = plot_worker.PlotWorker.start()
    pid = worker.pid
    try:
        worker.submit(args[0], args[1], broken, args[3], **kwargs)
        with pytest.raises(KeyError, match="prediction") as raised:
            plot_worker.render(worker, str(tmp_path), *args, **kwargs)
    finally:
        worker.close()
    assert any("plot worker" in note and "_confusion" in note for note in raised.value.__notes__)
    assert _gone(pid)


def test_a_worker_closed_without_a_job_leaves_at_once(tmp_path):
    # a run that fails before its Log stage closes the worker it started
    worker = plot_worker.PlotWorker.start()
    pid, folder = worker.pid, worker.folder
    worker.close()
    worker.close()  # twice is harmless
    assert _gone(pid) and not os.path.exists(folder)


def test_feature_importance_names_each_feature():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(X, [0, 0, 1, 1])
    names, values = plots.feature_importance(model)
    assert names == ["a", "b"] and values.shape == (2,) and values[0] > values[1]


def test_mlflow_s_requirement_check_is_skipped_only_while_saving_mmp_s_pins():
    import mlflow.pyfunc
    from mlflow.utils import environment

    from mmp.models.requirements import pins_trusted

    checks = (environment.warn_dependency_requirement_mismatches, mlflow.pyfunc.warn_dependency_requirement_mismatches)
    with pins_trusted():
        assert environment.warn_dependency_requirement_mismatches is not checks[0]
        assert mlflow.pyfunc.warn_dependency_requirement_mismatches is not checks[1]
        environment.warn_dependency_requirement_mismatches(["no-such-package==1.0"])  # would have scanned and warned
    assert (environment.warn_dependency_requirement_mismatches, mlflow.pyfunc.warn_dependency_requirement_mismatches) == checks


def test_a_worker_whose_parent_is_killed_removes_its_folder_and_leaves(tmp_path):
    import signal
    import subprocess
    import time

    code = ("import os, signal\nfrom mmp.training.plot_worker import PlotWorker\nw = PlotWorker.start()\n"
            "print(w.folder, w.pid, flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    folder, pid = proc.stdout.split()

    def running() -> bool:  # a zombie (an init that does not reap) has left too
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 60
    while (os.path.exists(folder) or running()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(folder) and not running()
