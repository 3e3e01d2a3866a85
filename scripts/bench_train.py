"""Benchmark: `mmp train` wall time vs a hand-written script doing the same fit + mlflow.sklearn.log_model.

Both run as fresh processes (imports included, as a user pays them) on the same data, against
the same kind of store (SQLite + local artifacts in a temporary folder); median of N >= 5 runs each,
alternating (who goes first rotates) so that machine noise hits all alike. `--baseline /path/to/main`
also times another checkout's `mmp train` in the same rounds (before/after a change).

    python scripts/bench_train.py [--runs 5] [--recipe model] [--baseline PATH] [--no-inferred]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import REPO, copy_project, import_seconds  # noqa: E402

# What a user writes by hand for recipes/model.yaml: the same split, preprocessing, model and logging.
HAND_WRITTEN = """
import sys
import mlflow, mlflow.sklearn, numpy as np, pandas as pd
from mlflow.models import infer_signature
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("hand-written")
frame = pd.read_csv("data/breast_cancer.csv")
X, y = frame.drop(columns=["id", "diagnosis"]).astype("float64"), frame["diagnosis"]
X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.15, stratify=y, random_state=42)
X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=85, stratify=y_rest, random_state=42)
with mlflow.start_run():
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    model.fit(X_train, y_train)
    mlflow.log_params({"C": 1.0, "max_iter": 1000})
    for name, Xs, ys in (("train", X_train, y_train), ("validation", X_val, y_val), ("test", X_test, y_test)):
        pred, proba = model.predict(Xs), model.predict_proba(Xs)
        mlflow.log_metrics({
            f"{name}_accuracy": accuracy_score(ys, pred),
            f"{name}_precision": precision_score(ys, pred, pos_label="malignant"),
            f"{name}_recall": recall_score(ys, pred, pos_label="malignant"),
            f"{name}_f1": f1_score(ys, pred, pos_label="malignant"),
            f"{name}_roc_auc": roc_auc_score(ys == "malignant", proba[:, 1]),
            f"{name}_log_loss": log_loss(ys, proba),
        })
    extra = {"pip_requirements": ["scikit-learn", "pandas", "mlflow"]} if sys.argv[2] == "pinned" else {}
    mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X_train, model.predict(X_train)),
                             input_example=X_train.head(5), serialization_format="cloudpickle", **extra)
"""


def timed(command: list[str], cwd: Path, pythonpath: str | None = None) -> float:
    import os

    env = dict(os.environ)
    if pythonpath is not None:  # which mmp tree `-m mmp` imports
        env["PYTHONPATH"] = pythonpath
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per command (at least 5)")
    parser.add_argument("--recipe", default="model")
    parser.add_argument("--baseline", metavar="PATH",
                        help="another checkout of mmp (e.g. main) to time alongside, alternating with this one")
    parser.add_argument("--no-inferred", action="store_true",
                        help="skip the hand-written script with inferred requirements (the slow, unfair peer)")
    args = parser.parse_args()
    runs = max(args.runs, 5)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_project(work)
        store = work / "mlruns"
        uri = f"sqlite:///{store / 'mlflow.db'}"
        mmp = [sys.executable, "-m", "mmp", "train", f"recipe={args.recipe}", "-q", f"mlflow.tracking_uri={store}"]
        # (label, command, PYTHONPATH or None for the inherited one)
        commands: list[tuple[str, list[str], str | None]] = [("mmp train", mmp, str(REPO))]
        if args.baseline:
            commands.append((f"mmp train ({Path(args.baseline).name})", mmp, str(Path(args.baseline).resolve())))
        if not args.no_inferred:
            commands.append(("hand-written (inferred requirements)", [sys.executable, "-c", HAND_WRITTEN, uri, "naive"], None))
        commands.append(("hand-written (explicit requirements)", [sys.executable, "-c", HAND_WRITTEN, uri, "pinned"], None))
        for _, command, path in commands:  # warm-up: create the store and fill the OS file cache
            timed(command, work, path)
        times: dict[str, list[float]] = {label: [] for label, _, _ in commands}
        for i in range(runs):  # alternate, and rotate who goes first, so that load drifts hit all alike
            order = commands[i % len(commands):] + commands[:i % len(commands)]
            for label, command, path in order:
                times[label].append(timed(command, work, path))

    reference = import_seconds()
    base = statistics.median(times["mmp train"])
    print(f"recipe {args.recipe}, median of {runs} alternating fresh processes each ({sys.platform}, "
          f"python {sys.version.split()[0]}); machine reference: import mlflow {reference:.2f} s")
    for label, values in times.items():
        median = statistics.median(values)
        ratio = "" if label == "mmp train" else f"   mmp/this = {base / median:.2f}"
        print(f"  {label:<40} {median:6.2f} s  (min {min(values):.2f}, max {max(values):.2f}){ratio}")


if __name__ == "__main__":
    main()
