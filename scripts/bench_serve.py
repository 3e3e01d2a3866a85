"""Benchmark: `mmp serve-api` vs `mlflow models serve --env-manager local` and MLServer 1.7 (its
MLflow runtime, V2 protocol, adaptive batching) on the same model, same load generator (wrk when
installed, else a Python asyncio loader), loopback, all servers up at once and the cases alternated
round by round, so that every ratio compares runs of the same minute.

    python scripts/bench_serve.py [--recipe model] [--seconds 10] [--rounds 3] [--connections 16]
                                  [--workers 1] [--mlserver-venv /tmp/mlserver-venv]

MLServer runs from its own virtual environment (its pins conflict with mmp's): `--mlserver-venv PATH`
uses the one there or makes it (scripts/mlserver_peer.py); without the option that peer is skipped.

Prints the machine-speed reference (`import mlflow` seconds) first; then requests/s, p50, p99 and
non-2xx per case and the ratios: one row (mmp /predict and V2; MLServer V2; mlflow dataframe_split)
and 1,000 rows (mmp as a row list, as columns, as dataframe_split and as V2; MLServer V2; mlflow
dataframe_split); start-to-ready (mmp also on a restart) and resident memory of each server; then,
in this process, the model's MLflow pyfunc with JSON in and out (the in-process reference) and where
an mmp request's time goes, step by step, for each body format (scripts/serve_profile.py).
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mlserver_peer  # noqa: E402
from benchlib import REPO, copy_project, import_seconds, wait_ready  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a server's whole process tree has used so far."""
    import psutil

    root = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


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
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "bad": int(non2xx.group(1)) if non2xx else 0, "socket_errors": sum(map(int, errors.groups())) if errors else 0}


def python_load(url: str, body: bytes, seconds: int, connections: int) -> dict:
    import httpx

    latencies: list[float] = []
    bad = 0

    async def run() -> None:
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
    return {"rps": len(latencies) / seconds, "p50": q[49] * 1000, "p99": q[98] * 1000, "bad": bad, "socket_errors": 0,
            "requests": len(latencies)}


def cases(frame, features: list[str], name: str) -> list[tuple[str, str, str, bytes]]:
    """(rows, server, label, path, body) of every case: one row and 1,000 rows, in each server's formats."""
    def v2(part) -> bytes:  # mmp reads the protocol's plain form: one input per column, no parameters
        return json.dumps({"inputs": [{"name": c, "shape": [len(part)], "datatype": "FP64", "data": part[c].tolist()}
                                      for c in features]}).encode()

    def split(part) -> bytes:
        return json.dumps({"dataframe_split": {"columns": features, "data": part.values.tolist()}}).encode()

    infer = f"/v2/models/{name}/infer"
    out = []
    for rows, part in ((1, frame[features].head(1)), (len(frame), frame[features])):
        if rows == 1:
            out.append((rows, "mmp", "/predict", "/predict", json.dumps(part.iloc[0].to_dict()).encode()))
        else:
            out += [(rows, "mmp", "rows", "/predict/batch", json.dumps({"samples": part.to_dict(orient="records")}).encode()),
                    (rows, "mmp", "columns", "/predict/batch", json.dumps({"columns": part.to_dict(orient="list")}).encode()),
                    (rows, "mmp", "dataframe_split", "/predict/batch", split(part))]
        out += [(rows, "mmp", "V2", infer, v2(part)),
                (rows, "MLServer", "V2", infer, mlserver_peer.v2_body(part)),
                (rows, "mlflow", "dataframe_split", "/invocations", split(part))]
    return out


def start(command: list[str], url: str, cwd: Path, env: dict) -> tuple[subprocess.Popen, float]:
    """A server started in a session of its own, and the seconds until `url` answered 200."""
    log = cwd / f"server-{len(list(cwd.glob('server-*.log')))}.log"
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                            start_new_session=True)
    try:
        return proc, wait_ready(url, proc)
    except SystemExit:
        raise SystemExit(f"{' '.join(command[:6])} ... did not start: {log.read_text()[-3000:]}") from None


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="model")
    parser.add_argument("--seconds", type=int, default=10, help="per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16, help="one-row cases; 1,000-row cases use a quarter")
    parser.add_argument("--workers", type=int, default=1, help="mmp workers (each peer runs one process)")
    parser.add_argument("--mlserver-venv", type=Path, help="MLServer's own virtual environment (made when absent)")
    parser.add_argument("--mmp-set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for mmp serve-api, e.g. serving.batching.max_batch_size=8192")
    args = parser.parse_args()
    load = wrk if shutil.which("wrk") else python_load
    print(f"machine-speed reference: `import mlflow` {import_seconds('mlflow'):.2f} s (median of 3 fresh processes)")
    import pandas as pd
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_project(work)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlruns' / 'mlflow.db'}",
               "BENTOML_HOME": str(work / "bentoml"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        run_id = subprocess.run([sys.executable, "-m", "mmp", "train", f"recipe={args.recipe}", "-q"], cwd=work,
                                env=env, capture_output=True, text=True, check=True).stdout.split()[-1]
        subprocess.run([sys.executable, "-c", "import sys, mlflow; mlflow.artifacts.download_artifacts(sys.argv[1], "
                        "dst_path=sys.argv[2])", f"runs:/{run_id}/model", str(work)], cwd=work, env=env, check=True,
                       capture_output=True)
        model_dir = work / "model"
        meta = yaml.safe_load((model_dir / "MLmodel").read_text())["metadata"]["mmp"]
        features, name = meta["features"], meta["name"]
        source = {"model": "breast_cancer.csv", "iris": "iris.csv", "diabetes": "diabetes.csv"}.get(args.recipe, "iris.csv")
        data = pd.read_csv(work / "data" / source)
        frame = pd.concat([data] * (1000 // len(data) + 1), ignore_index=True).head(1000)
        print(f"recipe {args.recipe} ({len(features)} features), run {run_id}; loader: {load.__name__}, "
              f"{args.connections} connections (1,000 rows: {max(2, args.connections // 4)}), {args.seconds} s per "
              f"case, {args.rounds} rounds, alternated; mmp workers: {args.workers} {' '.join(args.mmp_set)}")

        port = {server: free_port() for server in ("mmp", "mlflow", "MLServer")}
        servers = {
            "mmp": ([sys.executable, "-m", "mmp", "serve-api", "--run-id", run_id, "--workers", str(args.workers),
                     "--port", str(port["mmp"]), "serving.log_level=warning", *args.mmp_set], "/ready", env),
            "mlflow": ([sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir), "--env-manager",
                        "local", "--host", "127.0.0.1", "--port", str(port["mlflow"])], "/ping", env),
        }
        if args.mlserver_venv is None:
            print("MLServer: skipped (pass --mlserver-venv PATH; the environment is made there on first use)")
        elif (mlserver := mlserver_peer.ensure_venv(args.mlserver_venv, model_dir)) is not None:
            folder = mlserver_peer.write_settings(work / "mlserver", model_dir, name,
                                                  (port["MLServer"], free_port(), free_port()))
            servers["MLServer"] = ([str(mlserver), "start", str(folder)], f"/v2/models/{name}/ready",
                                   {**env, "PYTHONPATH": f"{folder}:{REPO}"})
        todo = [c for c in cases(frame, features, name) if c[1] in servers]
        procs, ready, results = {}, {}, {}
        try:
            for server, (command, path, server_env) in servers.items():
                procs[server], ready[server] = start(command, f"http://127.0.0.1:{port[server]}{path}", work, server_env)
            for rows, server, label, path, body in todo:  # warm-up
                if rows == 1:
                    load(f"http://127.0.0.1:{port[server]}{path}", body, 2, args.connections)
            for _ in range(args.rounds):
                for rows, server, label, path, body in todo:
                    connections = args.connections if rows == 1 else max(2, args.connections // 4)
                    used = tree_cpu_s(procs[server].pid)
                    result = load(f"http://127.0.0.1:{port[server]}{path}", body, args.seconds, connections)
                    # the server's CPU per request: what the machine's load changes least
                    result["cpu_ms"] = (tree_cpu_s(procs[server].pid) - used) * 1000 / max(1, result["requests"])
                    results.setdefault((rows, server, label), []).append(result)
            rss = {server: tree_rss_mb(proc.pid) for server, proc in procs.items()}
        finally:
            for proc in procs.values():
                stop(proc)
        proc, restart = start(servers["mmp"][0], f"http://127.0.0.1:{port['mmp']}/ready", work, env)
        stop(proc)  # a restart finds the run's model in the BentoML store
        report(results, ready, restart, rss)
        try:
            import mmp.serving.request_formats  # noqa: F401
            from serve_profile import in_process
        except ImportError as exc:  # an mmp from before the body formats
            print(f"\nin-process profile skipped: {exc}")
            return
        in_process(model_dir, frame, features, {label: body for rows, server, label, _, body in todo
                                                if rows > 1 and server == "mmp"}, results)


def report(results: dict[tuple, list[dict]], ready: dict[str, float], restart: float, rss: dict[str, float]) -> None:
    def median(case: tuple, key: str) -> float:
        return statistics.median(r[key] for r in results[case])

    for rows in sorted({case[0] for case in results}):
        group = [case for case in results if case[0] == rows]
        print(f"\n{rows:,} row{'s' if rows > 1 else ''}: medians of {len(results[group[0]])} rounds "
              "(each round's req/s in brackets)")
        for case in group:
            rounds = ", ".join(f"{r['rps']:.1f}" for r in results[case])
            print(f"  {case[1] + ' ' + case[2]:<24} {median(case, 'rps'):7.1f} req/s  p50 {median(case, 'p50'):6.1f} ms"
                  f"  p99 {median(case, 'p99'):6.1f} ms  server CPU {median(case, 'cpu_ms'):6.2f} ms/req  non-2xx "
                  f"{sum(r['bad'] for r in results[case])}  socket errors {sum(r['socket_errors'] for r in results[case])}"
                  f"  [{rounds}]")
        peers = [case for case in group if case[1] != "mmp"]
        for mine in [case for case in group if case[1] == "mmp"]:
            print(f"  mmp {mine[2]}: req/s " + ", ".join(
                f"{median(mine, 'rps') / median(peer, 'rps'):.2f}x {peer[1]}" for peer in peers) + "; CPU per request "
                + ", ".join(f"{median(mine, 'cpu_ms') / median(peer, 'cpu_ms'):.2f}x {peer[1]}" for peer in peers))
    print()
    for server, seconds in ready.items():
        again = f" (restart {restart:.1f} s)" if server == "mmp" else ""
        print(f"  {server:<10} start-to-ready {seconds:5.1f} s{again}   RSS {rss.get(server, 0):6.0f} MiB")


if __name__ == "__main__":
    main()
