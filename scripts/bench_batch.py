"""Benchmark: `mmp batch-inference` vs a naive script (pandas reads the whole csv, pyfunc predict,
to_parquet) on the same model and data, 1M and 5M rows. Reports rows/s and peak RSS of each.

    python scripts/bench_batch.py [--rows 1000000 5000000] [--recipe iris] [--repeats 5] [--baseline /work/main]

Each command runs as a fresh process under a small parent that reports the child's peak RSS. With
`--repeats N` the contestants run in turn N times (mmp, naive, [baseline], mmp, naive, ...), so a
load that comes and goes hits them alike, and the medians are reported (wall seconds, CPU seconds of
all threads: the work done, which a busy machine does not inflate as much as the wall time). `--baseline DIR` adds
`mmp batch-inference` run from another checkout (PYTHONPATH=DIR), e.g. main before a change. The
seconds a fresh `import mlflow` takes are printed first, as a reference for the machine's speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import copy_project, import_seconds  # noqa: E402

NAIVE = """
import sys
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
frame = pd.read_csv(sys.argv[3])
predicted = model.predict(frame)
out = pd.concat([frame[["id"]], predicted], axis=1)
out.to_parquet(sys.argv[4])
"""

MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)
seconds = time.perf_counter() - start
if proc.returncode:
    sys.exit(proc.stderr)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}))
"""


def measure(command: list[str], cwd: Path, pythonpath: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
    out = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(command)], cwd=cwd, capture_output=True, text=True,
                         env=env)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout)


def make_data(path: Path, rows: int, source: Path) -> None:
    """`rows` rows shaped like the recipe's data: its rows repeated with a little noise."""
    import numpy as np
    import polars as pl

    base = pl.read_csv(source)
    reps = -(-rows // base.height)
    frame = pl.concat([base] * reps).head(rows).with_columns(id=pl.int_range(1, rows + 1))
    rng = np.random.default_rng(0)
    numeric = [c for c, t in frame.schema.items() if t.is_float()]
    frame = frame.with_columns([(pl.col(c) + pl.Series(rng.normal(0, 0.05, rows))).alias(c) for c in numeric])
    frame.write_csv(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--recipe", default="iris")
    parser.add_argument("--repeats", type=int, default=5, help="alternating process runs per contestant (median)")
    parser.add_argument("--baseline", metavar="DIR", help="also time `mmp batch-inference` from this checkout")
    args = parser.parse_args()

    print(f"machine speed: `import mlflow` {import_seconds():.2f} s (median of 3 fresh processes)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_project(work)
        store = work / "mlruns"
        train = subprocess.run([sys.executable, "-m", "mmp", "train", f"recipe={args.recipe}", "-q"],
                               cwd=work, capture_output=True, text=True, check=True)
        run_id = train.stdout.split()[-1]
        source = work / "data" / {"iris": "iris.csv", "model": "breast_cancer.csv"}.get(args.recipe, "iris.csv")
        print(f"model runs:/{run_id}/model (recipe {args.recipe}); {sys.platform}, python {sys.version.split()[0]}; "
              f"medians of {args.repeats} alternating runs")
        for rows in args.rows:
            data = work / f"rows_{rows}.csv"
            make_data(data, rows, source)
            size = data.stat().st_size / 2**20
            mmp = [sys.executable, "-m", "mmp", "batch-inference", "--run-id", run_id, "-d", str(data),
                   "-o", str(work / "mmp_out.parquet"), "-q"]
            naive = [sys.executable, "-c", NAIVE, f"sqlite:///{store / 'mlflow.db'}", f"runs:/{run_id}/model",
                     str(data), str(work / "naive_out.parquet")]
            # The naive script neither counts drift nor logs a drift run; mmp with monitoring off does what it does.
            contestants = {"mmp batch-inference": (mmp, None), "mmp, monitoring off": (mmp + ["monitoring.enabled=false"], None),
                           "naive pandas script": (naive, None)}
            if args.baseline:
                contestants["mmp baseline"] = (mmp, str(Path(args.baseline).resolve()))
            runs: dict[str, list[dict]] = {label: [] for label in contestants}
            for _ in range(args.repeats):
                for label, (command, pythonpath) in contestants.items():
                    runs[label].append(measure(command, work, pythonpath))
            print(f"{rows:,} rows ({size:,.0f} MiB csv)")
            results = {}
            for label, measured in runs.items():
                seconds = statistics.median(r["seconds"] for r in measured)
                rss = statistics.median(r["peak_rss_mb"] for r in measured)
                cpu = statistics.median(r["cpu_seconds"] for r in measured)
                results[label] = seconds
                every = ", ".join(f"{r['seconds']:.2f}" for r in measured)
                print(f"  {label:<22} {rows / seconds:>10,.0f} rows/s  {seconds:7.2f} s  CPU {cpu:6.2f} s  "
                      f"peak RSS {rss:7,.0f} MiB  ({every})")
            naive_s = results["naive pandas script"]
            print(f"  mmp / naive rows/s: {naive_s / results['mmp batch-inference']:.2f}x "
                  f"(monitoring off: {naive_s / results['mmp, monitoring off']:.2f}x)")
            if args.baseline:
                print(f"  baseline / naive rows/s: {naive_s / results['mmp baseline']:.2f}x")
            data.unlink()


if __name__ == "__main__":
    main()
