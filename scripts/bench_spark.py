"""Benchmark: `mmp batch-inference` on the local engine vs `--engine spark` on Spark `local[2]`, same model
(recipe `model`: breast cancer, 30 features, logistic regression) and same parquet; median of --repeat runs.

    python scripts/bench_spark.py [--rows 200000 1000000 5000000] [--repeat 3] [--master 'local[2]']

Each run is a fresh `mmp` process, as a user starts it (Spark's JVM start-up included); wall time and
rows/s per engine, plus machine-speed references (numpy sorting 5M doubles, benchlib's `import mlflow` time).
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
from benchlib import copy_project, import_seconds  # noqa: E402


def machine_reference() -> float:
    """Seconds for a fixed single-threaded workload, sorting 5M random doubles (lower: a faster machine)."""
    import numpy as np

    values = np.random.default_rng(0).random(5_000_000)
    started = time.perf_counter()
    np.sort(values, kind="quicksort")
    return time.perf_counter() - started


def make_parquet(path: Path, rows: int, source: Path) -> None:
    """`rows` rows shaped like breast_cancer.csv: its rows repeated with a little noise."""
    import numpy as np
    import polars as pl

    base = pl.read_csv(source).drop("diagnosis")
    frame = pl.concat([base] * -(-rows // base.height)).head(rows).with_columns(id=pl.int_range(1, rows + 1))
    rng = np.random.default_rng(0)
    numeric = [c for c, t in frame.schema.items() if t.is_float()]
    frame = frame.with_columns([(pl.col(c) * (1 + pl.Series(rng.normal(0, 0.02, rows)))).alias(c) for c in numeric])
    frame.write_parquet(path)


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000, 5_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = copy_project(Path(tmp))
        env = {**os.environ, "MLFLOW_TRACKING_URI": str(work / "mlruns"), "PYSPARK_PYTHON": sys.executable}
        train = subprocess.run([sys.executable, "-m", "mmp", "train", "recipe=model", "-q"], cwd=work, env=env,
                               capture_output=True, text=True, check=True)
        run_id = train.stdout.split()[-1]
        print(f"model runs:/{run_id}/model (recipe model); {os.cpu_count()} cores; python {sys.version.split()[0]}; "
              f"machine reference: numpy sort of 5M doubles {machine_reference():.2f} s, import mlflow {import_seconds():.2f} s")
        print(f"{'rows':>10} {'engine':<16} {'median s':>9} {'rows/s':>11}  runs")
        for rows in args.rows:
            data = work / f"rows_{rows}.parquet"
            make_parquet(data, rows, work / "data" / "breast_cancer.csv")
            base = [sys.executable, "-m", "mmp", "batch-inference", "--run-id", run_id, "-d", str(data), "-q"]
            engines = {
                "local": base + ["-o", str(work / "local_out.parquet")],
                f"spark {args.master}": base + ["-o", str(work / "spark_out.parquet"), "--engine", "spark",
                                                f"batch.spark.master='{args.master}'"],
            }
            seconds: dict[str, list[float]] = {name: [] for name in engines}
            for _ in range(args.repeat):  # interleaved, so machine noise hits both alike
                for name, command in engines.items():
                    seconds[name].append(timed(command, work))
            for name, runs in seconds.items():
                median = statistics.median(runs)
                print(f"{rows:>10,} {name:<16} {median:>9.2f} {rows / median:>11,.0f}  "
                      + " ".join(f"{s:.1f}" for s in runs), flush=True)
            data.unlink()


if __name__ == "__main__":
    main()
