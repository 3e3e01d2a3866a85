"""Benchmark: `mmp compile` and `mmp validate` wall time vs `import mlflow` and `import sklearn.linear_model`.

Every number is a fresh process (interpreter start and imports included, as a user pays them) in
a throwaway copy of this repository's project, median of N runs, the commands interleaved so that
machine noise hits all alike. `import mlflow` is the machine-speed reference the goal is stated
in: `mmp compile` within 0.5x of it. "warm" runs read the class facts cached by an earlier run
(the steady state); "cold" runs start from an empty cache folder each (the first run after an
install or upgrade, which imports the model classes and writes the cache).

    python scripts/bench_compile.py [--runs 5] [--recipe model] [--baseline /path/to/other/checkout]

`--baseline` times another checkout's `mmp` (e.g. main's) beside this one, in the same rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import REPO, copy_project, import_seconds  # noqa: E402


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def environment(checkout: Path, cache: Path) -> dict[str, str]:
    """A user's environment for `checkout`'s mmp: bytecode written (as an install does), no mmp settings."""
    skip = ("PYTHONDONTWRITEBYTECODE", "MMP_CONF_DIR", "MMP_RECIPES_DIR", "RECIPE_PATH", "CONFIG_PATH", "MMP_CACHE_DIR")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    return {**env, "PYTHONPATH": str(checkout), "MMP_CACHE_DIR": str(cache)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--recipe", default="model")
    parser.add_argument("--baseline", type=Path, help="another checkout whose mmp is timed alongside")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = copy_project(Path(tmp) / "project")
        warm = environment(REPO, Path(tmp) / "cache")
        mmp = [sys.executable, "-m", "mmp"]
        commands = {
            "mmp compile (warm)": (mmp + ["compile", f"recipe={args.recipe}"], warm),
            "mmp validate (warm, reads the data)": (mmp + ["validate", f"recipe={args.recipe}"], warm),
            "mmp compile (cold cache)": (mmp + ["compile", f"recipe={args.recipe}"], None),
        }
        if args.baseline:
            base = environment(args.baseline.resolve(), Path(tmp) / "baseline-cache")
            commands["baseline mmp compile"] = (mmp + ["compile", f"recipe={args.recipe}"], base)
            commands["baseline mmp validate"] = (mmp + ["validate", f"recipe={args.recipe}"], base)
        for command, env in commands.values():  # warm-up: bytecode, the class facts cache, the OS file cache
            timed(command, work, env or warm)
        times: dict[str, list[float]] = {label: [] for label in commands}
        times["import mlflow"], times["import sklearn.linear_model"] = [], []
        for round_ in range(args.runs):
            for label, (command, env) in commands.items():
                if env is None:  # cold: an empty cache folder of its own
                    env = environment(REPO, Path(tmp) / f"cold-cache-{round_}")
                times[label].append(timed(command, work, env))
            times["import mlflow"].append(import_seconds("mlflow", repeats=1))
            times["import sklearn.linear_model"].append(import_seconds("sklearn.linear_model", repeats=1))

    reference = statistics.median(times["import mlflow"])
    print(f"recipe {args.recipe}, median of {args.runs} fresh processes each (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}); machine speed: import mlflow {reference:.2f} s")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"  {label:<38} {median:6.2f} s  (min {min(values):.2f}, max {max(values):.2f})  "
              f"{median / reference:.2f}x import mlflow")
    compile_ratio = statistics.median(times["mmp compile (warm)"]) / reference
    print(f"goal: warm mmp compile <= 0.5x import mlflow: {'met' if compile_ratio <= 0.5 else 'NOT met'} "
          f"({compile_ratio:.2f}x)")


if __name__ == "__main__":
    main()
