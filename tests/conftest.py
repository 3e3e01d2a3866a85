"""Shared fixtures: a throwaway copy of the repository's own mmp project, and ways to run `mmp`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.postgres import postgres_db, postgres_server  # noqa: F401  (a real PostgreSQL per session)

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A copy of conf/, recipes/ and data/ in a temporary folder, made the working directory."""
    for name in ("conf", "recipes", "data"):
        shutil.copytree(REPO / name, tmp_path / name, symlinks=True)
    monkeypatch.chdir(tmp_path)
    for var in ("MMP_CONF_DIR", "MMP_RECIPES_DIR", "RECIPE_PATH", "CONFIG_PATH", "MLFLOW_TRACKING_URI", "MODEL_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def mmp(capsys):
    """Run `mmp ARGS` in this process (fast); returns exit code, stdout and stderr."""
    from mmp.cli import run

    def call(*args: str) -> Result:
        code = run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


def run_mmp(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
    """Run `mmp ARGS` as a separate process, as a user would (`env`: its whole environment)."""
    full_env = dict(os.environ) if env is None else env
    proc = subprocess.run([sys.executable, "-m", "mmp", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def mmp_in_process(*args: str, cwd: Path, **env: str) -> Result:
    """`mmp ARGS` in this process (imports paid once), in `cwd`, without the test environment's mmp and
    MLflow variables (plus `env`); the session-scoped twin of the `mmp` fixture."""
    import contextlib
    import io

    from mmp.cli import run

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        for var in ("MMP_CONF_DIR", "MMP_RECIPES_DIR", "RECIPE_PATH", "CONFIG_PATH", "MLFLOW_TRACKING_URI", "MODEL_RUN_ID"):
            patch.delenv(var, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(list(args))
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def configmap_conf(tmp_path) -> Path:
    """conf/ laid out as Kubernetes mounts a ConfigMap: every file a symlink into ..data -> ..<timestamp>/."""
    mount = tmp_path / "configmap" / "conf"
    write_configmap(mount, "..2026_11_26_10_00_00.000000001", {
        "config.yaml": (REPO / "conf" / "config.yaml").read_text(),
        "env/prod.yaml": (REPO / "conf" / "env" / "prod.yaml").read_text(),
        "env/local.yaml": (REPO / "conf" / "env" / "local.yaml").read_text(),
    })
    return mount


def write_configmap(mount: Path, version: str, files: dict[str, str]) -> None:
    """Write (or atomically swap in) one ConfigMap version the way the kubelet does."""
    version_dir = mount / version
    for rel, text in files.items():
        (version_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (version_dir / rel).write_text(text)
    tmp_link = mount / "..data_tmp"
    tmp_link.symlink_to(version)
    os.replace(tmp_link, mount / "..data")
    for top in {rel.split("/", 1)[0] for rel in files}:
        link = mount / top
        if not link.is_symlink():
            link.symlink_to(f"..data/{top}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers 200 (or the process dies, or time runs out)."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """One project folder (conf/, recipes/, data/) shared by the tests that train models."""
    root = tmp_path_factory.mktemp("workspace")
    for name in ("conf", "recipes", "data"):
        shutil.copytree(REPO / name, root / name)
    return root


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without mmp/MLflow settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MMP_CONF_DIR", "MMP_RECIPES_DIR", "RECIPE_PATH", "CONFIG_PATH", "MLFLOW_TRACKING_URI", "MODEL_RUN_ID")}
    return {**env, **extra}


EXAMPLE_RECIPES = ["model", "iris", "diabetes", "wine_clusters", "boosting/breast_cancer_xgb",
                   "boosting/diabetes_lgbm", "deep/iris_mlp", "deep/diabetes_mlp", "calibrated_nb", "diabetes_quantiles"]


@pytest.fixture(scope="session")
def trained(workspace) -> dict[str, str]:
    """Every example recipe trained once with `mmp train` on the embedded ./mlruns store: recipe -> run id."""
    runs = {}
    for recipe in EXAMPLE_RECIPES:
        result = run_mmp("train", f"recipe={recipe}", "-q", cwd=workspace, env=clean_env())
        assert result.code == 0, f"{recipe}: {result.err}"
        runs[recipe] = result.out.strip().splitlines()[-1]
    return runs


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` process on a free loopback port: yields its http:// URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
         "--workers", "1",
         # as in a cluster: clients also reach it by its Service name (tests/test_seed_k8s.py)
         "--allowed-hosts", f"localhost,localhost:{port},127.0.0.1,127.0.0.1:{port},mlflow,mlflow:5000"],
        stdout=subprocess.DEVNULL, stderr=open(root / "server.log", "w"), cwd=root,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on a free loopback port, with a bucket `mmp-test`: yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket="mmp-test")
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_server():
    """A gcp-storage-emulator server on a free loopback port, with a bucket `mmp-test`: yields its URL."""
    from gcp_storage_emulator.server import create_server

    # gcsfs's experimental filesystem asks a gRPC control plane (over TLS) for the bucket type,
    # which an emulator does not serve: each call would wait out a 60 s timeout.
    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="mmp-test")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


PEAK_RSS = """
import json, resource, subprocess, sys
proc = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True, cwd=sys.argv[2], env=json.loads(sys.argv[3]))
print(json.dumps({"code": proc.returncode, "err": proc.stderr[-2000:],
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def run_mmp_measured(*args: str, cwd: Path, env: dict[str, str]) -> dict:
    """Run `mmp ARGS` under a fresh parent that reports the child's peak RSS (KiB)."""
    import json

    command = [sys.executable, "-m", "mmp", *args]
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS, json.dumps(command), str(cwd), json.dumps(env)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


class Server:
    """A real `mmp serve-api` process on a free loopback port."""

    def __init__(self, workspace: Path, run_id: str, *overrides: str, env: dict[str, str] | None = None,
                 log: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        from mmp.io.tracking import mlflow_uri

        self.env = clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")),
                             BENTOML_HOME=str(workspace / "bentoml"), **(env or {}))
        self.log = log or workspace / f"serve-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mmp", "serve-api", "--run-id", run_id, "--port", str(self.port), *overrides],
            cwd=workspace, env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
        )

    def wait_ready(self, timeout: float = 120) -> None:
        wait_for_http(f"{self.url}/ready", timeout=timeout, proc=self.proc)

    def stop(self) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server(workspace, trained):
    """`mmp serve-api` on the iris model, started once for the session, with small request limits."""
    srv = Server(workspace, trained["iris"], "serving.max_batch_rows=50", "serving.max_body_bytes=20000")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
