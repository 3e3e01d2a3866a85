"""Benchmark: `mmp serve-api` vs `mlflow models serve --env-manager local` on the same model, same
load generator (wrk when installed, else a Python asyncio loader), loopback, one after the other.

    python scripts/bench_serve.py [--recipe model] [--seconds 15] [--connections 16] [--workers 1]

Reports requests/s, p50, p99 and non-2xx for single-row /predict and 1,000-row /predict/batch,
plus start-to-ready time and resident memory (the whole process tree) of each server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import REPO, copy_project  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, proc: subprocess.Popen, timeout: float = 180) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} never answered")


def tree_rss_mb(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def wrk(url: str, body: bytes, seconds: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        body_file = script.name + ".json"
        Path(body_file).write_bytes(body)
        script.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                     f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*all")\nf:close()\n')
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
                         capture_output=True, text=True, check=True).stdout
    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50%"), "p99": ms("99%"),
            "bad": int(non2xx.group(1)) if non2xx else 0, "socket_errors": sum(map(int, errors.groups())) if errors else 0}


def python_load(url: str, body: bytes, seconds: int, connections: int) -> dict:
    import httpx

    latencies: list[float] = []
    bad = 0

    async def run() -> None:
        nonlocal bad
        deadline = time.perf_counter() + seconds
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=connections)) as client:
            async def worker() -> None:
                nonlocal bad
                while time.perf_counter() < deadline:
                    start = time.perf_counter()
                    r = await client.post(url, content=body, headers={"Content-Type": "application/json"})
                    latencies.append(time.perf_counter() - start)
                    bad += r.status_code >= 300
            await asyncio.gather(*(worker() for _ in range(connections)))

    asyncio.run(run())
    q = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / seconds, "p50": q[49] * 1000, "p99": q[98] * 1000, "bad": bad, "socket_errors": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="model")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="mmp workers (mlflow models serve runs its default: 1)")
    args = parser.parse_args()
    load = wrk if shutil.which("wrk") else python_load
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_project(work)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlruns' / 'mlflow.db'}",
               "BENTOML_HOME": str(work / "bentoml"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        run_id = subprocess.run([sys.executable, "-m", "mmp", "train", f"recipe={args.recipe}", "-q"], cwd=work,
                                env=env, capture_output=True, text=True, check=True).stdout.split()[-1]
        meta = json.loads(subprocess.run(
            [sys.executable, "-c", "import json,sys,mlflow; i=mlflow.models.get_model_info(sys.argv[1]); "
             "print(json.dumps(i.metadata['mmp']))", f"runs:/{run_id}/model"],
            cwd=work, env=env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        source = {"model": "breast_cancer.csv", "iris": "iris.csv", "diabetes": "diabetes.csv"}.get(args.recipe, "iris.csv")
        rows = pd.read_csv(work / "data" / source)[meta["features"]].to_dict(orient="records")
        batch = (rows * (1000 // len(rows) + 1))[:1000]
        print(f"recipe {args.recipe}, run {run_id}; loader: {load.__name__}, {args.connections} connections, "
              f"{args.seconds} s per case; mmp workers: {args.workers}")
        servers = {
            "mmp serve-api": ([sys.executable, "-m", "mmp", "serve-api", "--run-id", run_id, "--workers", str(args.workers),
                               "serving.log_level=warning"], "/ready", "/predict", "/predict/batch",
                              json.dumps(rows[0]), json.dumps({"samples": batch})),
            "mlflow models serve": ([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{run_id}/model",
                                     "--env-manager", "local", "--host", "127.0.0.1"], "/ping", "/invocations",
                                    "/invocations", json.dumps({"dataframe_records": [rows[0]]}),
                                    json.dumps({"dataframe_records": batch})),
        }
        results = {}
        for name, (command, ready, single, many, one_body, batch_body) in servers.items():
            port = free_port()
            proc = subprocess.Popen([*command, "--port", str(port)], cwd=work, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                base = f"http://127.0.0.1:{port}"
                started = wait(base + ready, proc)
                load(base + single, one_body.encode(), 2, args.connections)  # warm-up
                results[name] = {
                    "ready_s": started,
                    "restart_s": None,
                    "single": load(base + single, one_body.encode(), args.seconds, args.connections),
                    "batch": load(base + many, batch_body.encode(), args.seconds, max(2, args.connections // 4)),
                    "rss_mb": tree_rss_mb(proc.pid),
                }
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
            if name == "mmp serve-api":  # a restart finds the run's model in the BentoML store
                port = free_port()
                proc = subprocess.Popen([*command, "--port", str(port)], cwd=work, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                try:
                    results[name]["restart_s"] = wait(f"http://127.0.0.1:{port}{ready}", proc)
                finally:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=60)
        for case in ("single", "batch"):
            label = "/predict, 1 row" if case == "single" else "/predict/batch, 1,000 rows"
            print(f"\n{label}")
            for name, r in results.items():
                c = r[case]
                print(f"  {name:<20} {c['rps']:8.1f} req/s   p50 {c['p50']:7.1f} ms   p99 {c['p99']:7.1f} ms   "
                      f"non-2xx {c['bad']}  socket errors {c['socket_errors']}")
            mmp, peer = results["mmp serve-api"][case], results["mlflow models serve"][case]
            print(f"  ratio: {mmp['rps'] / peer['rps']:.2f}x requests/s, p99 {mmp['p99'] / peer['p99']:.2f}x")
        print()
        for name, r in results.items():
            restart = f" (restart {r['restart_s']:.1f} s)" if r["restart_s"] else ""
            print(f"  {name:<20} start-to-ready {r['ready_s']:5.1f} s{restart}   RSS {r['rss_mb']:6.0f} MiB")


if __name__ == "__main__":
    main()
