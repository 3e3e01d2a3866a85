"""The seed's own Kubernetes example, run literally: its ConfigMap (an env file with only
`environment` and `mlflow`) mounted at /app/configs the way the kubelet lays it out, and the
Deployment's command `mmp serve-api --run-id ... -c /app/configs/prod.yaml`, in the image's
environment (its Dockerfile ENV lines). compile, train and serve-api must work, and the service
must answer on a non-loopback bind.

Cluster DNS is the one thing a test cannot have: a sitecustomize on PYTHONPATH resolves the
Service name `mlflow:5000` to a real `mlflow server` on a free loopback port.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, clean_env, free_port, wait_for_http, write_configmap

pytestmark = pytest.mark.slow

SEED_PROD_YAML = """environment:
  name: production
mlflow:
  tracking_uri: http://mlflow:5000
"""

CLUSTER_DNS = """
import socket
_real = socket.getaddrinfo
def getaddrinfo(host, port, *args, **kwargs):
    if host == "mlflow" and str(port) == "5000":
        return _real("127.0.0.1", {port}, *args, **kwargs)
    return _real(host, port, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
"""


def image_env(app: Path) -> dict[str, str]:
    """The runtime stage's ENV lines of the repository Dockerfile, with /app moved to `app`."""
    text = (REPO / "Dockerfile").read_text()
    runtime = text[text.index("AS runtime"):]
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV (.+?)(?<!\\)$", runtime.replace("\\\n", " \\\n"), re.M | re.S):
        for name, value in re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", block):
            env[name] = value.replace("/app", str(app))
    env.pop("PATH", None)
    return env


@pytest.fixture(scope="module")
def pod(tmp_path_factory, mlflow_server):
    """An /app-like folder as the image has it, with the seed's ConfigMap mounted at configs/."""
    app = tmp_path_factory.mktemp("pod") / "app"
    for name in ("conf", "recipes", "data"):
        shutil.copytree(REPO / name, app / name)
    write_configmap(app / "configs", "..2026_11_29_10_00_00.000000001", {"prod.yaml": SEED_PROD_YAML})
    dns = app.parent / "cluster_dns"
    dns.mkdir()
    (dns / "sitecustomize.py").write_text(CLUSTER_DNS.replace("{port}", mlflow_server.rsplit(":", 1)[1]))
    env = clean_env(**{**image_env(app), "PYTHONPATH": str(dns), "BENTOML_HOME": str(app.parent / "bentoml")})
    return app, env


def mmp(pod, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    app, env = pod
    command = [str(Path(sys.executable).parent / "mmp"), *args]
    return subprocess.run(command, cwd=app, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_image_listens_on_every_interface_unless_the_env_says_otherwise():
    assert image_env(Path("/app"))["MMP_SERVING_HOST"] == "0.0.0.0"


def test_seed_configmap_compiles_with_the_default_recipe(pod):
    app, _ = pod
    result = mmp(pod, "compile", "-c", str(app / "configs" / "prod.yaml"))
    assert result.returncode == 0, result.stderr
    assert "environment:\n  name: production" in result.stdout
    assert "tracking_uri: http://mlflow:5000" in result.stdout
    assert "recipe model" in result.stdout  # recipes/model.yaml, the seed's RECIPE_PATH default


@pytest.fixture(scope="module")
def seed_run(pod, mlflow_server):
    app, _ = pod
    result = mmp(pod, "train", "-c", str(app / "configs" / "prod.yaml"), "-q")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_seed_configmap_trains_against_the_tracking_server_and_tags_the_environment(seed_run, mlflow_server):
    import mlflow

    run = mlflow.MlflowClient(tracking_uri=mlflow_server).get_run(seed_run)
    assert run.data.tags["mmp.environment"] == "production"
    assert run.data.tags["mmp.recipe"] == "model"


def non_loopback_address() -> str:
    """An address of this machine other than 127.0.0.1: its own IP, else 127.0.0.2 (which a server
    bound to 127.0.0.1 does not answer either)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        if not address.startswith("127."):
            return address
    except OSError:
        pass
    return "127.0.0.2"


def test_the_deployment_command_serves_on_a_non_loopback_bind(pod, seed_run):
    app, env = pod
    command = [str(Path(sys.executable).parent / "mmp"), "serve-api", "--run-id", seed_run,
               "-c", str(app / "configs" / "prod.yaml")]
    port = 8000
    if not _free(port):  # the Deployment's port is taken on this machine: the same command on another
        port = free_port()
        command += ["--port", str(port)]
    log = app.parent / "serve.log"
    proc = subprocess.Popen(command, cwd=app, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        address = non_loopback_address()
        wait_for_http(f"http://{address}:{port}/ready", timeout=180, proc=proc)
        info = json.loads(urllib.request.urlopen(f"http://{address}:{port}/model/info", timeout=10).read())
        assert info["environment"] == "production" and info["training_environment"] == "production"
        assert info["run_id"] == seed_run
        row = {c: 1.0 for c in _features(app)}
        request = urllib.request.Request(f"http://{address}:{port}/predict", data=json.dumps(row).encode(),
                                         headers={"Content-Type": "application/json"})
        assert json.loads(urllib.request.urlopen(request, timeout=30).read())["prediction"] in ("benign", "malignant")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert f"listening on 0.0.0.0:{port} (every interface" in log.read_text()


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def _features(app: Path) -> list[str]:
    header = (app / "data" / "breast_cancer.csv").read_text().splitlines()[0].split(",")
    return [c for c in header if c not in ("id", "diagnosis")]
