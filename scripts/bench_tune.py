"""Benchmark: the overhead of `mmp train` tuning vs the same Optuna study written by hand.

A 30-trial TPE study of a HistGradientBoostingClassifier (learning_rate, max_leaf_nodes,
min_samples_leaf, l2_regularization; roc_auc on validation; no pruning), one MLflow child run per
trial, then the best params refitted on train and logged with the test metric. mmp runs it from a
recipe; the hand-written script reads the csv with pandas and slices the same rows by position.
Both get the same rows (a temporal split: the first 70% train, next 15% validation, last 15% test),
the same TPE seed, OMP_NUM_THREADS and kind of store (a fresh SQLite store per run). Each timing
is a whole fresh process; runs alternate; the best values (and every trial's value) must be equal.

mmp's temporal split wants a date column (an integer `id` is refused as "does not parse as
dates/times"), so the script adds `day` = 2000-01-01 + (id - 1) days to a copy of the data.

    python scripts/bench_tune.py [--runs 5] [--trials 30] [--seed 7] [--threads 1] [--rounds 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import HGB_SEARCH_SPACE, copy_project  # noqa: E402

RECIPE = """
name: bench_tune_hgb
task: classification
data:
  source: data/bench_tune.csv
  entity_columns: [id]
  target: diagnosis
  split: {strategy: temporal, time_column: day, train: 0.7, validation: 0.15, test: 0.15}
model:
  class_path: sklearn.ensemble.HistGradientBoostingClassifier
  params: {random_state: 0, max_iter: __ROUNDS__}
evaluate:
  metrics: [roc_auc]
  primary_metric: roc_auc
tune:
  pruner: none
  params:
""" + HGB_SEARCH_SPACE

# What a competent user writes for the same study by hand.
HAND_WRITTEN = """
import sys
import mlflow, mlflow.sklearn, optuna, pandas as pd
from mlflow.models import infer_signature
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

uri, n_trials, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mlflow.set_tracking_uri(uri)
mlflow.set_experiment("hand-written")
optuna.logging.set_verbosity(optuna.logging.WARNING)
frame = pd.read_csv("data/bench_tune.csv").sort_values("day", kind="stable")
X, y = frame.drop(columns=["id", "day", "diagnosis"]).astype("float64"), (frame["diagnosis"] == "malignant").astype(int)
n = len(frame)
n_test, n_val = round(n * 0.15), round(n * 0.15)
n_train = n - n_val - n_test
X_train, X_val, X_test = X.iloc[:n_train], X.iloc[n_train:n_train + n_val], X.iloc[n_train + n_val:]
y_train, y_val, y_test = y.iloc[:n_train], y.iloc[n_train:n_train + n_val], y.iloc[n_train + n_val:]

def objective(trial):
    params = {"learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
              "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 64),
              "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 60),
              "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 10.0, log=True)}
    with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
        model = HistGradientBoostingClassifier(random_state=0, max_iter=__ROUNDS__, **params).fit(X_train, y_train)
        value = roc_auc_score(y_val, model.predict_proba(X_val)[:, 1])
        mlflow.log_params(params)
        mlflow.log_metric("validation_roc_auc", value)
    return value

with mlflow.start_run():
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    model = HistGradientBoostingClassifier(random_state=0, max_iter=__ROUNDS__, **study.best_params).fit(X_train, y_train)
    mlflow.log_params(study.best_params)
    mlflow.log_metrics({"best_validation_roc_auc": study.best_value,
                        "test_roc_auc": roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])})
    mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X_train, model.predict(X_train)),
                             input_example=X_train.head(5), serialization_format="cloudpickle",
                             pip_requirements=["scikit-learn", "pandas", "mlflow"])
"""


def make_project(work: Path, rounds: int = 100) -> None:
    """The repository's project plus the benchmark's data (with a `day` column) and recipe."""
    import pandas as pd

    copy_project(work)
    frame = pd.read_csv(work / "data" / "breast_cancer.csv")
    day = pd.Timestamp("2000-01-01") + pd.to_timedelta(frame["id"] - 1, unit="D")
    frame.insert(1, "day", day.dt.strftime("%Y-%m-%d"))
    frame.to_csv(work / "data" / "bench_tune.csv", index=False)
    (work / "recipes" / "bench_tune.yaml").write_text(RECIPE.replace("__ROUNDS__", str(rounds)))
    (work / "hand_tune.py").write_text(HAND_WRITTEN.replace("__ROUNDS__", str(rounds)))


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one fresh process."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime


def study_result(uri: str, experiment: str, best_metric: str) -> tuple[float, list[float]]:
    """The parent run's best value and every child run's validation_roc_auc, in trial order."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = sorted((int(r.info.run_name.rsplit("-", 1)[1]), r.data.metrics["validation_roc_auc"])
                      for r in runs if "mlflow.parentRunId" in r.data.tags)
    assert len(parents) == 1, f"{len(parents)} parent runs in {uri}"
    return parents[0].data.metrics[best_metric], [value for _, value in children]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", default="1", help="OMP_NUM_THREADS for both (default 1)")
    parser.add_argument("--rounds", type=int, default=100, help="the model's max_iter: how long a trial takes")
    args = parser.parse_args()

    env = {**os.environ, "OMP_NUM_THREADS": args.threads}
    env.pop("MLFLOW_TRACKING_URI", None)
    mmp_exe = Path(sys.executable).with_name("mmp")
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_project(work, args.rounds)

        def mmp(store: Path) -> list[str]:
            return [str(mmp_exe), "train", "recipe=bench_tune", "-q", f"mlflow.tracking_uri={store}",
                    f"tune.n_trials={args.trials}", f"tune.seed={args.seed}"]

        def hand(store: Path) -> list[str]:
            return [sys.executable, "hand_tune.py", f"sqlite:///{store / 'mlflow.db'}", str(args.trials), str(args.seed)]

        for run in range(args.runs + 1):  # run 0 warms the OS file cache and is not counted
            stores = work / f"mmp-{run}", work / f"hand-{run}"
            stores[1].mkdir()
            mmp_s, hand_s = timed(mmp(stores[0]), work, env), timed(hand(stores[1]), work, env)
            if run:
                rows.append((mmp_s, hand_s, study_result(f"sqlite:///{stores[0] / 'mlflow.db'}", "bench_tune_hgb",
                                                         "tune_best_validation_roc_auc"),
                             study_result(f"sqlite:///{stores[1] / 'mlflow.db'}", "hand-written", "best_validation_roc_auc")))
    load_after = os.getloadavg()

    print(f"{args.trials}-trial TPE study (seed {args.seed}) of HistGradientBoostingClassifier(max_iter={args.rounds}), breast_cancer "
          f"(temporal split 399/85/85), OMP_NUM_THREADS={args.threads}, {args.runs} alternating fresh processes each")
    print(f"load average before {load_before[0]:.2f} / {load_before[1]:.2f}, after {load_after[0]:.2f} / "
          f"{load_after[1]:.2f} (1 / 5 min) on {os.cpu_count()} cores; python {sys.version.split()[0]}")
    print(f"{'run':>4} | {'wall: mmp train':>15} {'hand-written':>12} {'mmp/hand':>8} | {'cpu: mmp':>8} {'hand':>6} "
          f"{'mmp/hand':>8} | {'best mmp':>8} {'best hand':>9}  trials equal")
    for i, ((mmp_s, mmp_c), (hand_s, hand_c), (mmp_best, mmp_values), (hand_best, hand_values)) in enumerate(rows, 1):
        print(f"{i:>4} | {mmp_s:>14.2f}s {hand_s:>11.2f}s {mmp_s / hand_s:>8.2f} | {mmp_c:>7.2f}s {hand_c:>5.2f}s "
              f"{mmp_c / hand_c:>8.2f} | {mmp_best:>8.6f} {hand_best:>9.6f}  {mmp_values == hand_values and len(mmp_values) == args.trials}")
    med = [statistics.median(r[k][j] for r in rows) for k in (0, 1) for j in (0, 1)]
    print(f" med | {med[0]:>14.2f}s {med[2]:>11.2f}s {med[0] / med[2]:>8.2f} | {med[1]:>7.2f}s {med[3]:>5.2f}s "
          f"{med[1] / med[3]:>8.2f} | wall ratio goal <= 1.15")
    equal = all(r[2][0] == r[3][0] and r[2][1] == r[3][1] for r in rows)
    print(f"best value equal in every run (and all {args.trials} trial values): {equal}")


if __name__ == "__main__":
    main()
