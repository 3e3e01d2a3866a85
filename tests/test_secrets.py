"""Secrets planted in every config slot never reach stdout, stderr or the MLflow store in clear."""

from __future__ import annotations

import functools
import http.server
import re
import threading

import pytest

from tests.conftest import clean_env, run_mmp

pytestmark = pytest.mark.slow

STORAGE_SECRETS = {
    "key": "AKIAPLANTED0001",
    "secret": "plantedSecret0002",
    "account_key": "plantedAccount0003",
    "connection_string": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=plantedConn0004",
    "headers": {"Authorization": "Bearer plantedBearer0005", "Content-Type": "text/csv"},
    "auth": ["plantuser", "plantedAuth0006"],
    "client_kwargs": {"region_name": "eu-west-1", "aws_session_token": "plantedSession0007"},
}
ENV_SECRET = "plantedEnv0008"
URL_PASSWORD, URL_SIGNATURE = "plantedUrlPw0009", "plantedSig0010"
PLANTED = ["AKIAPLANTED0001", "plantedSecret0002", "plantedAccount0003", "plantedConn0004", "plantedBearer0005",
           "plantedAuth0006", "plantedSession0007", ENV_SECRET, URL_PASSWORD, URL_SIGNATURE]


def leaky_env(project) -> None:
    """conf/env/leaky.yaml: the local env with every kind of credential in its storage options."""
    import yaml

    lines = (project / "conf" / "env" / "local.yaml").read_text()
    options = {**STORAGE_SECRETS, "password": "${oc.env:MMP_TEST_DB_PW}"}
    block = yaml.safe_dump({"storage_options": options}, default_flow_style=False, sort_keys=False)
    text = re.sub(r"^source:\n  storage_options: \{\}.*$", "source:\n" + "\n".join("  " + l for l in block.splitlines()),
                  lines, flags=re.M)
    assert "plantedSecret0002" in text
    (project / "conf" / "env" / "leaky.yaml").write_text(text)


@pytest.fixture
def http_data(project):
    """The project folder over real HTTP on a free loopback port (it ignores the credentials sent)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(project))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://planteduser:{URL_PASSWORD}@127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def everything_written(project) -> bytes:
    """Every byte of every file under the project's MLflow stores (the SQLite db and artifacts)."""
    return b"".join(p.read_bytes() for store in project.glob("mlruns*") for p in store.rglob("*") if p.is_file())


def test_planted_secrets_never_appear_in_output_or_in_mlflow(project, http_data, tmp_path):
    leaky_env(project)
    env = clean_env(MMP_TEST_DB_PW=ENV_SECRET)
    url = f"{http_data}/data/iris.csv?sig={URL_SIGNATURE}"
    results = {}
    for name, args in {
        "compile": ["compile", "recipe=iris", "env=leaky"],
        "compile-url": ["compile", "recipe=iris", "-d", url],
        "validate": ["validate", "recipe=iris", "env=leaky"],
        "validate-url": ["validate", "recipe=iris", "-d", url],
        "train": ["train", "recipe=iris", "env=leaky"],
        "train-url": ["train", "recipe=iris", "-d", url, "mlflow.tracking_uri=./mlruns-url"],
        "train-missing": ["train", "recipe=iris", "env=leaky", "-d", f"{http_data}/no/such.csv"],
        "verbose-failure": ["--verbose", "train", "recipe=iris", "-d", url, "data.target=nosuch"],
        "cfg-job": ["compile", "recipe=iris", "env=leaky", "--cfg", "job"],
        "cfg-job-resolved": ["compile", "recipe=iris", "env=leaky", "-d", url, "--cfg", "job", "--resolve"],
        "cfg-hydra": ["compile", "recipe=iris", "env=leaky", "-d", url, "--cfg", "hydra"],
        "info-config": ["compile", "recipe=iris", "env=leaky", "--info", "config"],
    }.items():
        results[name] = run_mmp(*args, cwd=project, env=env)
    assert results["train"].code == 0 and results["train-url"].code == 0, results["train"].err + results["train-url"].err
    assert results["train-missing"].code == 2 and results["verbose-failure"].code == 2
    run_id = results["train"].out.strip().splitlines()[-1]
    results["batch"] = run_mmp("batch-inference", "--run-id", run_id, "-d", "data/iris.csv", "-o", str(tmp_path / "p.csv"),
                               "env=leaky", cwd=project, env=env)
    assert results["batch"].code == 0, results["batch"].err
    for name, result in results.items():
        for secret in PLANTED:
            assert secret not in result.out and secret not in result.err, (name, secret)
    stored = everything_written(project)
    assert stored, "the stores hold files"
    for secret in PLANTED:
        assert secret.encode() not in stored, secret
    # masked, not dropped: the logged config says where a secret was
    config = next(p for p in project.glob("mlruns/**/mmp/config.yaml")).read_text()
    assert "key: '***'" in config and "account_key: '***'" in config and "${oc.env:MMP_TEST_DB_PW}" in config
    assert "region_name: eu-west-1" in config  # not secret, kept
    assert "planteduser:***@" in results["compile-url"].out
    assert "key: '***'" in results["cfg-job"].out or "key: ***" in results["cfg-job"].out
