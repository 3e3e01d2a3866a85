"""Rerun the operator's fault probe against this checkout and print a table of what held.

    .venv/bin/python scripts/fault_probe.py [--trains 4] [--requests 3]

Every probe uses real processes on a throwaway copy of the project: trains racing on one store,
SIGTERM and SIGKILL in the middle of training and of batch inference, planted secrets grepped
for in all output and the whole MLflow store, ragged CSV rows, and malformed HTTP bodies against
a real `mmp serve-api` (each followed by a good request on the same keep-alive connection).
Exit status 0 when everything held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from benchlib import copy_project

PYTHON = sys.executable
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("MMP_", "MLFLOW_")) and k not in
       ("CONFIG_PATH", "RECIPE_PATH", "MODEL_RUN_ID")} | {"BENTOML_DO_NOT_TRACK": "true"}


def mmp(project: Path, *args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "mmp", *args], cwd=project, env={**ENV, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def start(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "mmp", *args], cwd=project, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def client(store: Path):
    import fcntl

    import mlflow

    with open(store / ".mlflow.db.lock", "a+") as lock:  # open the store as mmp does
        fcntl.flock(lock, fcntl.LOCK_EX)
        opened = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
        opened.search_experiments(max_results=1)
    return opened


def run_status(store: Path, run_id: str) -> str:
    return client(store).get_run(run_id).info.status


def wait_for(condition: Callable[[], bool], timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def probe_race(project: Path, trains: int) -> tuple[bool, str]:
    store = project / "mlruns-race"
    landed = 0
    for _ in ("fresh", "existing"):
        procs = [start(project, "train", "recipe=iris", "-q", f"mlflow.tracking_uri={store}") for _ in range(trains)]
        outs = [p.communicate(timeout=600) for p in procs]
        for proc, (out, _) in zip(procs, outs):
            if proc.returncode == 0 and run_status(store, out.strip().splitlines()[-1]) == "FINISHED":
                landed += 1
    return landed == 2 * trains, f"{landed}/{2 * trains} runs landed ({trains} racing on a fresh, then an existing store)"


def running_run(store: Path, experiment: str) -> str | None:
    if not (store / ".mlflow.db.lock").exists() and not (store / "mlflow.db").exists():
        return None
    found = client(store).get_experiment_by_name(experiment)
    runs = client(store).search_runs([found.experiment_id]) if found else []
    return runs[0].info.run_id if runs else None


LONG_TRAIN = ["train", "recipe=deep/iris_mlp", "++model.params.max_epochs=1000000", "++model.params.patience=1000000"]


def probe_train_signal(project: Path, sig: signal.Signals) -> tuple[bool, str]:
    store, experiment = project / f"mlruns-{sig.name}", f"probe-{sig.name}"
    proc = start(project, *LONG_TRAIN, f"mlflow.tracking_uri={store}", f"mlflow.experiment={experiment}")
    if not wait_for(lambda: running_run(store, experiment) is not None):
        proc.kill()
        return False, "the run never started"
    run_id = running_run(store, experiment)
    time.sleep(1)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    if sig == signal.SIGKILL:
        mmp(project, "train", "recipe=iris", "-q", f"mlflow.tracking_uri={store}")  # the next command tidies up
        status = run_status(store, run_id)
        return status == "FAILED", f"run {status} after SIGKILL and one more command"
    status = run_status(store, run_id)
    return status == "KILLED" and proc.returncode == 143, f"run {status}, exit {proc.returncode}"


def probe_batch_signal(project: Path, run_id: str, big: Path, sig: signal.Signals) -> tuple[bool, str]:
    out_dir = project / f"out-{sig.name}"
    out_dir.mkdir()
    target = out_dir / "preds.parquet"
    args = ["batch-inference", "--run-id", run_id, "-d", str(big), "-o", str(target), "--chunk-rows", "20000",
            "-q", "mlflow.tracking_uri=mlruns"]
    proc = start(project, *args)
    if not wait_for(lambda: any(p.name.endswith(".tmp") for p in out_dir.iterdir())):
        proc.kill()
        return False, "no temporary output appeared"
    time.sleep(0.5)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    left = [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]
    if sig == signal.SIGKILL:
        again = mmp(project, *args[:4], str(project / "data" / "iris.csv"), *args[5:])
        swept = not any(p.name.endswith(".tmp") for p in out_dir.iterdir())
        return bool(left) and swept and again.returncode == 0, \
            f"{len(left)} temp file left by the killed writer; swept by the next: {swept}"
    return not left and not target.exists(), f"exit {proc.returncode}, {len(left)} temp files, output {target.exists()}"


PLANTED = {"key": "AKIAPROBE0001", "secret": "probeSecret0002", "account_key": "probeAccount0003",
           "connection_string": "AccountName=a;AccountKey=probeConn0004",
           "headers": {"Authorization": "Bearer probeBearer0005"}, "auth": ["u", "probeAuth0006"]}


def probe_secrets(project: Path) -> tuple[bool, str]:
    import yaml

    env_file = project / "conf" / "env" / "leaky.yaml"
    local = yaml.safe_load((project / "conf" / "env" / "local.yaml").read_text())
    local["source"]["storage_options"] = {**PLANTED, "password": "${oc.env:PROBE_DB_PASSWORD}"}
    local["mlflow"]["tracking_uri"] = "mlruns-secrets"
    env_file.write_text("# @package _global_\n" + yaml.safe_dump(local))
    extra = {"PROBE_DB_PASSWORD": "probeEnv0007"}
    secrets = ("AKIAPROBE0001", "probeSecret0002", "probeAccount0003", "probeConn0004", "probeBearer0005",
               "probeAuth0006", "probeEnv0007", "probeUrlPw0008")
    commands = [["compile", "recipe=iris", "env=leaky"], ["compile", "recipe=iris", "env=leaky", "--cfg", "job", "--resolve"],
                ["compile", "recipe=iris", "env=leaky", "--info", "config"], ["validate", "recipe=iris", "env=leaky"],
                ["train", "recipe=iris", "env=leaky"],
                ["compile", "recipe=iris", "-d", "http://user:probeUrlPw0008@127.0.0.1:9/iris.csv"],
                ["--verbose", "train", "recipe=iris", "env=leaky", "-d", "http://user:probeUrlPw0008@127.0.0.1:9/x.csv"]]
    leaks = 0
    for command in commands:
        result = mmp(project, *command, env=extra)
        leaks += sum(s in result.stdout + result.stderr for s in secrets)
    stored = b"".join(p.read_bytes() for p in (project / "mlruns-secrets").rglob("*") if p.is_file())
    leaks += sum(s.encode() in stored for s in secrets)
    checks = len(secrets) * (len(commands) + 1)
    return leaks == 0, f"{leaks} leaks in {checks} checks ({len(secrets)} secrets x {len(commands)} commands + the store)"


def probe_ragged(project: Path) -> tuple[bool, str]:
    lines = (project / "data" / "iris.csv").read_text().splitlines()
    lines[41] = ",".join(lines[41].split(",")[:2])
    (project / "ragged.csv").write_text("\n".join(lines) + "\n")
    result = mmp(project, "train", "recipe=iris", "-d", "ragged.csv", "mlflow.tracking_uri=mlruns-ragged")
    return result.returncode == 2 and "line 42" in result.stderr, f"exit {result.returncode}"


MALFORMED = [
    ("/predict", b"{"), ("/predict", b"[]"), ("/predict", b"null"), ("/predict", b'"text"'), ("/predict", b""),
    ("/predict", b'{"sepal_length_cm": "x"}'), ("/predict", b'{"sepal_length_cm": ' + b"9" * 400 + b"}"),
    ("/predict", b"[" * 100_000 + b"]" * 100_000), ("/predict", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ("/predict", b'{"sepal_length_cm": NaN}'), ("/predict", b'{"sepal_length_cm": 1e999}'),
    ("/predict", b"\xff\xfe\x00"), ("/predict/batch", b'{"samples": []}'), ("/predict/batch", b'{"samples": {}}'),
    ("/predict/batch", b'{"samples": [1, 2]}'), ("/predict/batch", b'{"other": 1}'),
    ("/predict/batch", b'{"samples": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"),
]


def probe_http(project: Path, run_id: str, rounds: int) -> tuple[bool, str]:
    import http.client

    port = free_port()
    server = subprocess.Popen([PYTHON, "-m", "mmp", "serve-api", "--run-id", run_id, "--port", str(port),
                               "mlflow.tracking_uri=mlruns"], cwd=project, env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    good = json.dumps({"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4,
                       "petal_width_cm": 0.2}).encode()
    try:
        if not wait_for(lambda: http_ready(port), timeout=180):
            return False, "the server did not become ready"
        server_errors = dropped = 0
        for _ in range(rounds):
            for path, body in MALFORMED:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                    response = conn.getresponse()
                    response.read()
                    server_errors += response.status >= 500
                    conn.request("POST", "/predict", body=good, headers={"Content-Type": "application/json"})
                    after = conn.getresponse()
                    after.read()
                    dropped += after.status != 200
                except (OSError, http.client.HTTPException):
                    dropped += 1
                finally:
                    conn.close()
        total = rounds * len(MALFORMED)
        return server_errors == 0 and dropped == 0, \
            f"{total} malformed requests: {server_errors} 5xx, {dropped} broken keep-alive connections"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def http_ready(port: int) -> bool:
    import http.client

    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe_drain(project: Path, run_id: str, in_flight: int = 20, rows: int = 10_000) -> tuple[bool, str]:
    """SIGTERM while `in_flight` batch requests of `rows` rows each are being answered."""
    import http.client
    import threading

    port = free_port()
    server = subprocess.Popen([PYTHON, "-m", "mmp", "serve-api", "--run-id", run_id, "--port", str(port),
                               "mlflow.tracking_uri=mlruns", f"serving.max_batch_rows={rows}",
                               "serving.max_body_bytes=100000000"], cwd=project, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sample = {"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4, "petal_width_cm": 0.2}
    body = json.dumps({"samples": [sample] * rows}).encode()
    answers: list[int] = []

    def call() -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("POST", "/predict/batch", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answers.append(response.status if len(json.loads(response.read())["predictions"]) == rows else -1)
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            answers.append(0)

    try:
        if not wait_for(lambda: http_ready(port), timeout=180):
            return False, "the server did not become ready"
        threads = [threading.Thread(target=call) for _ in range(in_flight)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=180)
        code = server.wait(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    answered = sum(a == 200 for a in answers)
    return answered == in_flight and code == 0, \
        f"{answered}/{in_flight} in-flight {rows:,}-row batches answered after SIGTERM, exit {code}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trains", type=int, default=4, help="trains racing on one store")
    parser.add_argument("--requests", type=int, default=3, help="rounds of the malformed-request corpus")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        project = copy_project(Path(tmp) / "project")
        trained = mmp(project, "train", "recipe=iris", "-q", "mlflow.tracking_uri=mlruns")
        run_id = trained.stdout.strip().splitlines()[-1]
        import polars as pl

        big = project / "big.csv"
        iris = pl.read_csv(project / "data" / "iris.csv")
        pl.concat([iris] * 10_000).write_csv(big)
        probes = [
            ("trains racing on one store", lambda: probe_race(project, args.trains)),
            ("SIGTERM during train", lambda: probe_train_signal(project, signal.SIGTERM)),
            ("SIGKILL during train", lambda: probe_train_signal(project, signal.SIGKILL)),
            ("SIGTERM during batch inference", lambda: probe_batch_signal(project, run_id, big, signal.SIGTERM)),
            ("SIGKILL during batch inference", lambda: probe_batch_signal(project, run_id, big, signal.SIGKILL)),
            ("planted secrets", lambda: probe_secrets(project)),
            ("ragged CSV row", lambda: probe_ragged(project)),
            ("malformed HTTP bodies", lambda: probe_http(project, run_id, args.requests)),
            ("SIGTERM with batches in flight", lambda: probe_drain(project, run_id)),
        ]
        for name, probe in probes:
            started = time.perf_counter()
            try:
                held, detail = probe()
            except Exception as exc:  # a probe that crashes did not hold
                held, detail = False, f"{type(exc).__name__}: {exc}"
            rows.append((name, "held" if held else "NOT HELD", detail, time.perf_counter() - started))
            print(f"{rows[-1][1]:>8}  {name}: {detail}", file=sys.stderr, flush=True)
    print("| probe | result | detail | seconds |\n|---|---|---|---|")
    for name, result, detail, seconds in rows:
        print(f"| {name} | {result} | {detail} | {seconds:.0f} |")
    return 0 if all(r[1] == "held" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
