"""Benchmark: `mmp batch-inference` from a PostgreSQL table to a table vs a hand-written script
(`pd.read_sql` of the whole table, `mlflow.pyfunc` predict, `to_sql(method="multi")`), same model
(`recipe=model`, logistic regression on the 30 breast-cancer features) and rows.

    PYTHONPATH=. python scripts/bench_sql.py [--rows 1000000 5000000] [--repeats 3]

Starts a throwaway PostgreSQL as the tests do (tests/postgres.py). Each command runs as a fresh
process under a small parent that reports its peak RSS; medians of `--repeats` alternating runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import measure  # noqa: E402
from benchlib import REPO, copy_project, import_seconds  # noqa: E402

sys.path.insert(0, str(REPO))

NAIVE = """
import sys
import mlflow, pandas as pd, sqlalchemy as sa
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
engine = sa.create_engine(sys.argv[3])
frame = pd.read_sql("SELECT * FROM features", engine)
out = pd.concat([frame[["id"]], model.predict(frame)], axis=1)
out["run_id"], out["predicted_at"] = sys.argv[4], pd.Timestamp.now(tz="UTC")
method = None if sys.argv[5] == "executemany" else sys.argv[5]
out.to_sql("naive_out", engine, if_exists="replace", index=False, method=method, chunksize=10_000)
"""


def load_features(server, database: str, source: Path, rows: int) -> None:
    """`features`: the breast-cancer rows repeated to `rows` rows, ids 1..rows, a little noise on each number."""
    import polars as pl

    base = pl.read_csv(source).drop("diagnosis", strict=False)
    numeric = [c for c, t in base.schema.items() if t.is_float()]
    with server.connect(database, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS base, features")
        conn.execute(f"CREATE TABLE base (rn int, {', '.join(f'{c} float8' for c in numeric)})")
        with conn.cursor().copy("COPY base FROM STDIN (FORMAT csv)") as copy:
            copy.write(base.select(pl.int_range(0, base.height).alias("rn"), *numeric).write_csv(include_header=False))
        noisy = ", ".join(f"b.{c} + (random() - 0.5) * 0.1 AS {c}" for c in numeric)
        conn.execute(f"CREATE TABLE features AS SELECT g::bigint AS id, {noisy} FROM generate_series(1, {rows}) g "
                     f"JOIN base b ON b.rn = g % {base.height}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--script-insert", choices=["executemany", "multi"], default="executemany",
                        help="to_sql's method: executemany (SQLAlchemy 2 batches it into multi-row INSERTs) or multi")
    parser.add_argument("--mmp-only", action="store_true", help="skip the script (it takes ~4 min per 1M rows)")
    args = parser.parse_args()

    from mmp.io.tracking import mlflow_uri
    from tests.postgres import require_bindir, running_postgres

    reference = import_seconds()
    with tempfile.TemporaryDirectory() as tmp, running_postgres(require_bindir(), {"shared_buffers": "256MB"}) as server:
        work = copy_project(Path(tmp))
        train = subprocess.run([sys.executable, "-m", "mmp", "train", "recipe=model", "-q"],
                               cwd=work, capture_output=True, text=True, check=True)
        run_id = train.stdout.split()[-1]
        url = server.new_database("bench")
        (work / "features.sql").write_text("SELECT * FROM features\n")
        print(f"model runs:/{run_id}/model (recipe model); `import mlflow` {reference:.2f} s (machine-speed reference)")
        for rows in args.rows:
            load_features(server, "bench", work / "data" / "breast_cancer.csv", rows)
            mmp = [sys.executable, "-m", "mmp", "batch-inference", "--run-id", run_id, "-d", "features.sql",
                   "-o", f"{url}/public.mmp_out", "-q", f"++source.connection={url}"]
            naive = [sys.executable, "-c", NAIVE, mlflow_uri(str(work / "mlruns")), f"runs:/{run_id}/model", url, run_id, args.script_insert]
            results: dict[str, list[dict]] = {"mmp batch-inference": [], "read_sql + to_sql script": []}
            for _ in range(args.repeats):
                results["mmp batch-inference"].append(measure(mmp, work))
                if not args.mmp_only:
                    results["read_sql + to_sql script"].append(measure(naive, work))
            results = {label: runs for label, runs in results.items() if runs}
            with server.connect("bench") as conn:
                counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("mmp_out", "naive_out")[:len(results)]]
            assert counts == [rows] * len(results), counts
            print(f"{rows:,} rows x 31 columns, medians of {args.repeats}")
            medians = {}
            for label, runs in results.items():
                seconds = statistics.median(r["seconds"] for r in runs)
                rss = statistics.median(r["peak_rss_mb"] for r in runs)
                medians[label] = seconds
                print(f"  {label:<26} {rows / seconds:>10,.0f} rows/s  {seconds:7.2f} s  peak RSS {rss:7,.0f} MiB"
                      f"   (runs: {', '.join(format(r['seconds'], '.1f') for r in runs)} s)")
            if len(medians) == 2:
                print(f"  mmp / script rows/s: {medians['read_sql + to_sql script'] / medians['mmp batch-inference']:.2f}x")


if __name__ == "__main__":
    main()
