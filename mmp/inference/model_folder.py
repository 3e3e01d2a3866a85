"""Where a `runs:/<run_id>/<name>` model lives on this disk, read from an embedded SQLite store
without importing MLflow.

`mlflow.pyfunc.load_model` spends 2-3 s before it unpickles anything: importing MLflow (~1.5 s),
opening the store through SQLAlchemy, checking the model's pip requirements against this
environment. For the store mmp makes (`./mlruns` -> `sqlite:///mlruns/mlflow.db`, artifacts on
the same disk) the model's folder is two SELECTs away. This module answers only when the answer
is unambiguous, and otherwise returns None so that MLflow resolves the URI as it always did.

It mirrors MLflow 3's `RunsArtifactRepository`: a `runs:/` URI names the logged model of that
name whose source run it is (`logged_models`), else the folder of that name among the run's own
artifacts (`runs.artifact_uri`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

_RUNS_URI = re.compile(r"runs:/(?P<run_id>[0-9a-f]{32})/(?P<name>[^/]+)/?")


def local_model_folder(uri: str, tracking_uri: str) -> str | None:
    """The local folder holding the model at `uri` (runs:/<run_id>/<name>) when the tracking store
    is a SQLite file on this disk and the run's artifacts are too; else None (let MLflow resolve it)."""
    match = _RUNS_URI.fullmatch(uri)
    if match is None or not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri[len("sqlite:///"):].split("?", 1)[0])
    if not database.is_file():
        return None
    import sqlite3

    try:
        with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=5) as db:
            return _folder(db, match["run_id"], match["name"])
    except sqlite3.Error:  # a schema this code does not know, a locked or corrupt file: MLflow decides
        return None


def _folder(db: object, run_id: str, name: str) -> str | None:
    run = db.execute("SELECT experiment_id, artifact_uri, lifecycle_stage FROM runs WHERE run_uuid = ?",
                     (run_id,)).fetchall()
    if len(run) != 1 or run[0][2] != "active":
        return None  # unknown or deleted run: MLflow words the error
    experiment_id, artifact_uri, _ = run[0]
    models = db.execute("SELECT artifact_location FROM logged_models WHERE experiment_id = ? AND name = ? "
                        "AND source_run_id = ? AND (lifecycle_stage IS NULL OR lifecycle_stage = 'active')",
                        (experiment_id, name, run_id)).fetchall()
    in_run = _local_path(artifact_uri)
    in_run = os.path.join(in_run, name) if in_run else None
    if in_run is not None and os.path.exists(in_run):
        # MLflow would merge the run's folder with a logged model of the same name: leave that to it
        return in_run if not models and os.path.isfile(os.path.join(in_run, "MLmodel")) else None
    if len(models) != 1:
        return None
    folder = _local_path(models[0][0])
    return folder if folder and os.path.isfile(os.path.join(folder, "MLmodel")) else None


def _local_path(uri: str | None) -> str | None:
    """A file:// URI or a plain path as a path on this disk; None for anything remote."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return unquote(parsed.path)
    if parsed.scheme == "" and uri.startswith("/"):
        return uri
    return None
