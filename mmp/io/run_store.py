"""A run and the model it logged, read straight from the embedded SQLite tracking store, without
importing MLflow (which alone takes ~1.5 s): what `mmp serve-api` needs to start fast.

Only the plain case is read here: a `sqlite:///` store (what a folder such as `./mlruns` becomes,
mmp.io.tracking) whose artifacts are local files. Anything else (a tracking server, MLflow's
folder-of-files store, artifacts on an object store, a run or model not found, a schema this code
does not know) gives None, and the caller asks MLflow, which also words the errors.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse


@dataclass
class StoredRun:
    """A run's logged model folder (local) and the run's params, latest metrics and tags."""

    run_id: str
    model_dir: Path
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


RUNS_URI = re.compile(r"runs:/(?P<run_id>[0-9a-zA-Z]+)/(?P<name>[^/]+)/?")  # runs:/<run id>/<model name>


def local_model_folder(uri: str, tracking_uri: str) -> str | None:
    """The folder on this disk holding the model at `uri` (runs:/<run_id>/<name>) when `read_run_model`
    can read it; else None (MLflow resolves the URI as it always did)."""
    match = RUNS_URI.fullmatch(uri)
    stored = read_run_model(tracking_uri, match["run_id"], match["name"]) if match else None
    return str(stored.model_dir) if stored else None


def read_run_model(tracking_uri: str, run_id: str, name: str) -> StoredRun | None:
    """The model `runs:/<run_id>/<name>` resolves to, as MLflow resolves it (the run's own artifact
    folder `<name>`, else the logged model of that name whose source run it is), or None (see above)."""
    import sqlite3

    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(unquote(tracking_uri[len("sqlite:///"):].split("?", 1)[0]))
    if not database.is_file():
        return None
    try:
        with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True) as db:
            return _read(db, run_id, name)
    except sqlite3.Error:  # locked, or a schema of another MLflow version: MLflow knows
        return None


def _read(db: Any, run_id: str, name: str) -> StoredRun | None:
    row = db.execute("SELECT experiment_id, artifact_uri FROM runs WHERE run_uuid = ? AND lifecycle_stage = 'active'",
                     (run_id,)).fetchone()
    if row is None:
        return None
    experiment, artifact_uri = row
    in_run = _local(artifact_uri)
    if in_run is None or (in_run / name).exists():  # remote artifacts, or a model among the run's own files
        return None
    # MLflow 3 logs a model as a LoggedModel: runs:/ID/NAME is the newest active one of that name from the run.
    found = db.execute("SELECT artifact_location FROM logged_models WHERE experiment_id = ? AND name = ? "
                       "AND source_run_id = ? AND lifecycle_stage = 'active' "
                       "ORDER BY creation_timestamp_ms DESC, model_id ASC LIMIT 1", (experiment, name, run_id)).fetchone()
    model_dir = _local(found[0]) if found else None
    if model_dir is None or not (model_dir / "MLmodel").is_file():
        return None
    params = dict(db.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run_id,)))
    metrics = {key: math.nan if is_nan else value for key, value, is_nan in
               db.execute("SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", (run_id,))}
    tags = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)))
    return StoredRun(run_id, model_dir, params, metrics, tags)


def _local(uri: str | None) -> Path | None:
    """The local folder of an artifact URI (a path or file://), else None."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and uri.startswith("/"):
        return Path(uri)
    return None
