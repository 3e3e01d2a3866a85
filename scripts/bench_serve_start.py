"""Benchmark: start-to-ready of `mmp serve-api` (cold: the model not yet in the BentoML store;
restart: already there) vs `mlflow models serve --env-manager local`, on the same model.

    python scripts/bench_serve_start.py [--recipe model] [--runs 5] [--baseline /path/to/other/checkout]

Start-to-ready is the time from starting the process until its readiness route answers 200 (mmp
/ready: the model loaded and warm; mlflow /ping). Every round runs each case once, in an order that
alternates between rounds, so a busy machine slows all of them alike; medians over the rounds are
printed with their ratio to mlflow's, and `import mlflow` seconds as the machine-speed reference.
`--baseline` adds the same two cases for another mmp checkout (its `mmp` package first on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import REPO, copy_project, import_seconds, wait_ready  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_to_ready(command: list[str], ready: str, cwd: Path, env: dict[str, str], timeout: float = 180) -> float:
    """Seconds from starting `command` (with --port appended) until GET `ready` answers 200; then stop it."""
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([*command, "--port", str(port)], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}{ready}", proc, timeout, poll_s=0.01)
        return time.perf_counter() - started  # from before the process started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="model")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another mmp checkout to measure side by side (e.g. main's)")
    args = parser.parse_args()
    reference = import_seconds("mlflow")
    with tempfile.TemporaryDirectory() as tmp:
        work = copy_project(Path(tmp))
        base_env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlruns' / 'mlflow.db'}",
                    "BENTOML_DO_NOT_TRACK": "true", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        checkouts = {"mmp": REPO, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
        env_of = {name: {**base_env, "PYTHONPATH": os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])}
                  for name, path in checkouts.items()}
        run_id = subprocess.run([sys.executable, "-m", "mmp", "train", f"recipe={args.recipe}", "-q"], cwd=work,
                                env=env_of["mmp"], capture_output=True, text=True, check=True).stdout.split()[-1]
        serve = [sys.executable, "-m", "mmp", "serve-api", "--run-id", run_id, "serving.log_level=warning"]
        mlflow = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{run_id}/model",
                  "--env-manager", "local", "--host", "127.0.0.1"]
        print(f"recipe {args.recipe}, run {run_id}; {args.runs} rounds; import mlflow {reference:.2f} s", flush=True)
        times: dict[str, list[float]] = {}
        for round_ in range(args.runs):
            cases = [("mlflow models serve", lambda: start_to_ready(mlflow, "/ping", work, base_env))]
            for name in checkouts:
                def cold_then_restart(name: str = name) -> None:
                    env = {**env_of[name], "BENTOML_HOME": str(work / f"bentoml-{name}-{round_}")}
                    times.setdefault(f"{name} cold", []).append(start_to_ready(serve, "/ready", work, env))
                    times.setdefault(f"{name} restart", []).append(start_to_ready(serve, "/ready", work, env))
                cases.append((name, cold_then_restart))
            for name, case in (cases if round_ % 2 == 0 else cases[::-1]):
                if name == "mlflow models serve":
                    times.setdefault(name, []).append(case())
                else:
                    case()
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
        peer = statistics.median(times["mlflow models serve"])
        print()
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name:<22} median {median:5.2f} s   {median / peer:4.2f}x mlflow   "
                  f"(runs: {', '.join(f'{v:.2f}' for v in values)})")
        print(f"  import mlflow {reference:.2f} s before, {import_seconds('mlflow'):.2f} s after")


if __name__ == "__main__":
    main()
