"""A stopped batch inference leaves nothing behind: SIGTERM removes its temporary file; after a
SIGKILL the next writer to the same destination sweeps the dead writer's file away."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest

from tests.conftest import clean_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_iris(workspace, tmp_path_factory):
    """iris, 1.5 million rows: long enough to stop a batch inference in the middle."""
    path = tmp_path_factory.mktemp("big") / "iris_big.csv"
    iris = pl.read_csv(workspace / "data" / "iris.csv")
    big = pl.concat([iris] * 10_000).with_columns(id=pl.Series(np.arange(1_500_000)))
    big.write_csv(path)
    return path


def start_batch(workspace, run_id: str, source, out) -> subprocess.Popen:
    from mmp.io.tracking import mlflow_uri

    env = clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")))
    return subprocess.Popen([sys.executable, "-m", "mmp", "batch-inference", "--run-id", run_id, "-d", str(source),
                             "-o", str(out), "--chunk-rows", "20000", "-q"], cwd=workspace, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def temp_files(folder) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def wait_for_temp(proc, folder, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if temp_files(folder):
            time.sleep(0.5)  # some chunks written
            return
        time.sleep(0.05)
    raise TimeoutError("no temporary output appeared")


def test_sigterm_midway_removes_the_temporary_file(workspace, trained, big_iris, tmp_path):
    out = tmp_path / "preds.parquet"
    proc = start_batch(workspace, trained["iris"], big_iris, out)
    wait_for_temp(proc, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert temp_files(tmp_path) == [] and not out.exists()


def test_a_sigkilled_writers_temporary_file_is_swept_by_the_next_writer(workspace, trained, big_iris, tmp_path):
    out = tmp_path / "preds.parquet"
    proc = start_batch(workspace, trained["iris"], big_iris, out)
    wait_for_temp(proc, tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = temp_files(tmp_path)
    assert len(left) == 1 and left[0].startswith(".preds.parquet.")
    foreign = tmp_path / ".preds.parquet.0123456789ab.1-1@another-host.tmp"  # a live writer elsewhere
    foreign.write_bytes(b"")
    small = tmp_path / "small.csv"
    pl.read_csv(workspace / "data" / "iris.csv").write_csv(small)
    again = start_batch(workspace, trained["iris"], small, out)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert temp_files(tmp_path) == [foreign.name] and pl.read_parquet(out).height == 150
