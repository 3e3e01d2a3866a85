"""`mmp serve-api --model-uri models:/NAME@champion` with `serving.follow_alias_s`: a real server
process following the alias in a real `mlflow server`, swapping versions under load."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import mlflow
import pytest

from tests.conftest import clean_env, free_port, mmp_in_process, wait_for_http

NAME = "serve-alias-iris"
ROW = {"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4, "petal_width_cm": 0.2}


@pytest.fixture(scope="module")
def runs(workspace, mlflow_server) -> dict[str, str]:
    """Two iris runs in the server; the first is promoted to champion before the service starts."""
    found = {}
    for label, overrides in {"first": ["model.params.n_estimators=3"], "second": []}.items():
        result = mmp_in_process("train", "recipe=iris", "-q", "mlflow.experiment=serve-alias", *overrides,
                                cwd=workspace, MLFLOW_TRACKING_URI=mlflow_server)
        assert result.code == 0, result.err
        found[label] = result.out.strip().splitlines()[-1]
    assert promote(workspace, mlflow_server, found["first"]).code == 0
    return found


def promote(workspace, server: str, run_id: str):
    return mmp_in_process("promote", "--run-id", run_id, "--alias", "champion", "--name", NAME, "--force",
                          cwd=workspace, MLFLOW_TRACKING_URI=server)


@pytest.fixture(scope="module")
def service(workspace, mlflow_server, runs, tmp_path_factory):
    """`mmp serve-api` on models:/NAME@champion, re-resolving the alias every second."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve-alias") / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmp", "serve-api", "--model-uri", f"models:/{NAME}@champion", "--port", str(port),
         "++serving.follow_alias_s=1"],
        cwd=workspace, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
        env=clean_env(MLFLOW_TRACKING_URI=mlflow_server, BENTOML_HOME=str(log.parent / "bentoml")),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/ready", timeout=120, proc=proc)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def wait_for(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_promoting_a_new_version_swaps_it_in_under_load_with_no_failed_request(workspace, mlflow_server, runs, service):
    url, _ = service
    info = httpx.get(f"{url}/model/info").json()
    assert (info["model_version"], info["alias"], info["run_id"]) == ("1", "champion", runs["first"])
    assert info["model_uri"] == f"models:/{NAME}@champion"

    failures, answered, stop = [], [0], threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                try:
                    response = client.post("/predict", json=ROW)
                    if response.status_code != 200 or response.json()["prediction"] != "setosa":
                        failures.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                answered[0] += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        assert promote(workspace, mlflow_server, runs["second"]).code == 0
        wait_for(lambda: httpx.get(f"{url}/model/info").json()["model_version"] == "2")
        time.sleep(0.5)  # requests after the swap too
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == [] and answered[0] > 20
    info = httpx.get(f"{url}/model/info").json()
    assert info["run_id"] == runs["second"] and info["model_uri"] == f"models:/{NAME}@champion"
    ready = httpx.get(f"{url}/ready").json()
    assert ready["follow"]["version"] == "2" and ready["follow"]["error"] is None


def test_a_broken_new_version_is_not_swapped_in_and_ready_says_why(workspace, mlflow_server, runs, service, tmp_path):
    url, log = service
    served = httpx.get(f"{url}/model/info").json()["model_version"]
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    # A run whose model's pickle is garbage: downloaded from a good run, corrupted, logged again.
    model_dir = mlflow.artifacts.download_artifacts(f"runs:/{runs['second']}/model", dst_path=str(tmp_path),
                                                    tracking_uri=mlflow_server)
    (Path(model_dir) / "artifacts" / "model.pkl").write_bytes(b"not a pickle")
    broken = client.create_run(client.get_experiment_by_name("serve-alias").experiment_id)
    client.log_artifacts(broken.info.run_id, model_dir, "model")
    client.set_terminated(broken.info.run_id)
    promoted = promote(workspace, mlflow_server, broken.info.run_id)
    assert promoted.code == 0, promoted.err
    broken_version = client.get_model_version_by_alias(NAME, "champion").version

    wait_for(lambda: (httpx.get(f"{url}/ready").json()["follow"]["error"] or "").startswith(f"version {broken_version}:"))
    ready = httpx.get(f"{url}/ready")
    assert ready.status_code == 200 and ready.json()["follow"]["version"] == served
    assert "UnpicklingError" in ready.json()["follow"]["error"]
    assert httpx.get(f"{url}/model/info").json()["model_version"] == served
    assert httpx.post(f"{url}/predict", json=ROW).status_code == 200
    assert f"still serving version {served}: version {broken_version}: UnpicklingError" in log.read_text()

    # rolled back to the served version: nothing to load, and /ready no longer reports the failure
    assert promote(workspace, mlflow_server, httpx.get(f"{url}/model/info").json()["run_id"]).code == 0
    wait_for(lambda: httpx.get(f"{url}/ready").json()["follow"]["error"] is None)
    assert httpx.get(f"{url}/ready").json()["follow"]["version"] == served


def test_the_documented_champion_deployment_serves_the_alias_and_follows_it_every_60_s(monkeypatch):
    import yaml

    from mmp.cli import _request, build_parser
    from mmp.config.env import compose_env
    from mmp.models.logged import model_uri
    from tests.conftest import REPO

    deployment = yaml.safe_load((REPO / "docs" / "examples" / "k8s" / "deployment-champion.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    # as the kubelet expands $(VAR) in args, with the image's /app/conf being this repository's conf/
    args = [a.replace("$(MODEL_NAME)", env["MODEL_NAME"]).replace("/app/conf", str(REPO / "conf"))
            for a in container["args"]]
    monkeypatch.chdir(REPO)
    parsed, words = build_parser().parse_known_args(args)
    assert parsed.command == "serve-api"
    assert model_uri(parsed.run_id, parsed.model_uri) == f"models:/{env['MODEL_NAME']}@champion"
    assert compose_env(_request(parsed, words, with_recipe=False), prog="mmp serve-api").serving.follow_alias_s == 60
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
