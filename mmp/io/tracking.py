"""Where runs go: the MLflow tracking URI from the env config, and the embedded store for plain folders.

MLflow 3 refuses a bare `./mlruns` file store. mmp keeps the promise that `./mlruns` "just
works" by mapping any plain folder to a store that lives entirely inside it: the SQLite
database `FOLDER/mlflow.db` and the artifacts under `FOLDER/artifacts`. Look at it with
    mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --default-artifact-root ./mlruns/artifacts
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from mmp.errors import UserError

DEFAULT_TRACKING_URI = "./mlruns"


def store_folder(uri: str) -> Path | None:
    """The local folder of an embedded store (a plain path or file:// URI), else None."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return Path(uri)
    return None


def configured_uri(uri: str | None) -> str:
    """The tracking URI as configured: the env's value, else $MLFLOW_TRACKING_URI, else ./mlruns."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def is_file_store(folder: Path) -> bool:
    """Whether `folder` already holds MLflow's folder-of-files store (MLflow 2's default `./mlruns`):
    experiments as numbered folders with a meta.yaml, and no mmp SQLite database beside them."""
    if (folder / "mlflow.db").exists():
        return False
    try:
        return any(entry.is_dir() and entry.name.isdigit() and (entry / "meta.yaml").is_file()
                   for entry in folder.iterdir())
    except OSError:
        return False


def mlflow_uri(uri: str | None) -> str:
    """The URI to hand MLflow for a configured tracking URI: a plain folder becomes its SQLite store,
    except a folder that already holds an MLflow file store, which is used as it is (its runs stay
    visible; `mlflow migrate-filestore` moves them to a database when you choose to)."""
    uri = configured_uri(uri)
    folder = store_folder(uri)
    if folder is None:
        return uri
    folder = folder.resolve()
    if is_file_store(folder):
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 reads file stores only when told
        _note_file_store(folder)
        return folder.as_uri()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


_noted: set[Path] = set()


def _note_file_store(folder: Path) -> None:
    if folder in _noted:
        return
    _noted.add(folder)
    import logging

    logging.getLogger("mmp").info(
        "%s holds an MLflow file store: mmp uses it as it is. To move it to the SQLite store mmp makes "
        "for new folders: mlflow migrate-filestore --source %s --target sqlite:///%s", folder, folder,
        folder / "mlflow.db")


def artifact_root(uri: str | None) -> str | None:
    """Where new experiments keep artifacts: inside the folder of an embedded store, else the store's choice."""
    folder = store_folder(configured_uri(uri))
    if folder is None or is_file_store(folder.resolve()):
        return None
    return (folder.resolve() / "artifacts").as_uri()


def connect(uri: str | None) -> str:
    """Point MLflow at the configured store; a server that does not answer is a user error (exit 2)."""
    import mlflow

    resolved = mlflow_uri(uri)
    if resolved.startswith(("http://", "https://")):
        _check_reachable(resolved)
    mlflow.set_tracking_uri(resolved)
    if resolved.startswith("sqlite:///"):
        _open_embedded_store(Path(resolved[len("sqlite:///"):]))
    close_dead_runs()
    return resolved


OWNER_HOST, OWNER_PID, OWNER_STARTED = "mmp.host", "mmp.pid", "mmp.pid_started"


def owner_tags() -> dict[str, str]:
    """Tags that say which process owns a run, so a later mmp command can tell a dead one."""
    from mmp.io.processes import this_process

    host, pid, start = this_process()
    return {OWNER_HOST: host, OWNER_PID: str(pid), OWNER_STARTED: start}


def close_dead_runs() -> list[str]:
    """Mark FAILED the runs still RUNNING whose mmp process on this host is gone (SIGKILL, OOM
    kill, power loss); returns their ids. Runs of live processes and of other hosts are left alone."""
    import socket

    import mlflow
    from mlflow.exceptions import MlflowException

    from mmp.io.processes import alive

    client = mlflow.MlflowClient()
    host = socket.gethostname()
    query = f"attributes.status = 'RUNNING' and tags.`{OWNER_HOST}` = '{host}'"
    closed = []
    try:
        experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        runs = client.search_runs(experiments, filter_string=query, max_results=200) if experiments else []
        for run in runs:
            tags = run.data.tags
            pid = int(tags.get(OWNER_PID, "0") or 0)
            if pid and not alive(pid, tags.get(OWNER_STARTED, "")):
                client.set_tag(run.info.run_id, "mmp.failure",
                               f"process {pid} on {host} ended without closing the run (killed?)")
                client.set_terminated(run.info.run_id, "FAILED")
                closed.append(run.info.run_id)
    except MlflowException:  # a store that cannot search (permissions): nothing to tidy here
        return closed
    if closed:
        import logging

        logging.getLogger("mmp").info("marked %d run(s) FAILED whose process on this host is gone: %s",
                                      len(closed), ", ".join(closed))
    return closed


def _open_embedded_store(database: Path) -> None:
    """Create or upgrade the embedded SQLite store under an inter-process lock.

    MLflow creates its tables (and runs Alembic migrations) the first time a process opens the
    store, with no lock: two `mmp train` started together on a fresh folder (two CronJobs, two
    people on one laptop) raced there and could leave it permanently broken. Opening both stores
    (tracking and model registry) here, one process at a time, makes every later use a plain
    connection; MLflow caches the opened stores for the rest of the process.
    """
    import fcntl

    import mlflow

    database.parent.mkdir(parents=True, exist_ok=True)  # sqlite:///new/folder/mlflow.db: made, as ./mlruns is
    with open(database.parent / ".mlflow.db.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = mlflow.MlflowClient()
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check_reachable(uri: str) -> None:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10).close()
    except urllib.error.HTTPError:
        return  # it answered (maybe 401/404 behind a proxy): reachable
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"mlflow.tracking_uri: cannot reach the MLflow tracking server at {uri} ({reason}); "
                        "start it, fix mlflow.tracking_uri / MLFLOW_TRACKING_URI, or use a local folder like ./mlruns") from exc


def experiment_id(name: str, uri: str | None) -> str:
    """The id of experiment `name`, created (with its artifacts inside an embedded store) if new."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise UserError(f"mlflow.experiment: experiment '{name}' is deleted; restore it or pick another name")
        return experiment.experiment_id
    from mlflow.exceptions import MlflowException

    root = artifact_root(uri)
    try:
        return mlflow.create_experiment(name, artifact_location=f"{root}/{name}" if root else None)
    except MlflowException:  # another process created it between our look and our create
        raced = mlflow.get_experiment_by_name(name)
        if raced is None:
            raise
        return raced.experiment_id
