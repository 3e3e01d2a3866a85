"""`mmp serve-api`: put the run's MLflow model into the BentoML model store and start the
BentoML service on it (what `bentoml serve mmp.serving.service:MmpService` does: mmp.serving.supervisor),
which then owns the process."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import Any

from mmp import __version__
from mmp.config.spec import EnvSpec, ServingSpec
from mmp.errors import UserError
from mmp.serving.supervisor import SERVICE



def say(step: int, total: int, text: str, started: float | None = None) -> None:
    took = f" ({time.perf_counter() - started:.2f} s)" if started is not None else ""
    print(f"[{step}/{total}] {text}{took}", file=sys.stderr, flush=True)


def resolve(uri: str) -> dict[str, Any]:
    """What the model is: run id, recipe, params, metrics and its mmp metadata (exit 2 if unknown)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        info = mlflow.models.get_model_info(uri)
    except (MlflowException, OSError) as exc:
        raise UserError(f"no such model: {uri} ({str(exc).strip().splitlines()[0]}) "
                        f"at tracking URI {mlflow.get_tracking_uri()}") from exc
    run = mlflow.MlflowClient().get_run(info.run_id).data if info.run_id else None
    details = describe(uri, info.metadata, info.run_id, run.params if run else None,
                       run.metrics if run else None, run.tags if run else None)
    details.update(registered_version(uri))
    return details


def describe(uri: str, metadata: dict | None, run_id: str | None, params: dict | None, metrics: dict | None,
             tags: dict | None) -> dict[str, Any]:
    """The model's details from its MLmodel metadata and (when it has one) its run's params, metrics and tags."""
    meta = (metadata or {}).get("mmp") or {}
    details: dict[str, Any] = {"model_uri": uri, "run_id": run_id, "name": meta.get("name") or "model",
                               "recipe": meta.get("recipe"), "task": meta.get("task"), "classes": meta.get("classes"),
                               "entity_columns": meta.get("entity_columns", []), "mmp_version": __version__}
    if run_id:
        tags = tags or {}
        details.update(params=params or {}, metrics=metrics or {}, recipe=tags.get("mmp.recipe", details["recipe"]),
                       env=tags.get("mmp.env"), training_environment=tags.get("mmp.environment"))
    return details


def resolve_locally(uri: str, tracking_uri: str) -> tuple[dict[str, Any], str] | None:
    """(details, local model folder) of a `runs:/<id>/<name>` model in the embedded SQLite store, read
    without MLflow (mmp.io.run_store); None when MLflow has to answer (any other store or URI)."""
    from mmp.io.run_store import RUNS_URI, read_run_model

    match = RUNS_URI.fullmatch(uri)
    if not match:
        return None
    stored = read_run_model(tracking_uri, *match.groups())
    if stored is None:
        return None
    mlmodel = _read_yaml(stored.model_dir / "MLmodel")
    if "python_function" not in (mlmodel.get("flavors") or {}):
        return None  # not a pyfunc: MLflow's import says so
    details = describe(uri, mlmodel.get("metadata"), mlmodel.get("run_id"), stored.params, stored.metrics,
                       stored.tags)
    return details, str(stored.model_dir)


def _read_yaml(path: Any) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}


def registered_version(uri: str) -> dict[str, Any]:
    """For `models:/NAME@ALIAS` and `models:/NAME/VERSION`: the registered model's name, the version
    the URI points at now, and the alias; {} for any other URI."""
    match = re.fullmatch(r"models:/([^/@]+)(?:@([^/]+)|/(\d+))/?", uri)
    if not match:
        return {}
    import mlflow

    name, alias, version = match.groups()
    if alias:
        version = mlflow.MlflowClient().get_model_version_by_alias(name, alias).version
    return {"registered_model": name, "model_version": str(version), "alias": alias}


def bento_tag(details: dict[str, Any]) -> str:
    """`mmp-<recipe name>:<run id>`: BentoML's name rules (lowercase, digits, - _ .)."""
    name = re.sub(r"[^a-z0-9_.-]+", "-", f"mmp-{details['name']}".lower()).strip("-.")[:63]
    version = details["run_id"] or re.sub(r"[^a-z0-9_.-]+", "-", details["model_uri"].lower())[-40:]
    return f"{name}:{version}"


MLFLOW_MODEL_FOLDER = "mlflow_model"  # where bentoml.mlflow keeps the MLflow model inside a BentoML model


def import_model(details: dict[str, Any], model_dir: str | None = None) -> tuple[str, bool]:
    """Import the model into the BentoML store under `bento_tag`; (tag, whether it was new). A local
    `model_dir` is copied in as `bentoml.mlflow.import_model` would download it, without MLflow."""
    import bentoml
    from bentoml.exceptions import NotFound

    tag = bento_tag(details)
    try:
        bentoml.models.get(tag)
        return tag, False
    except NotFound:
        pass
    labels = {"run_id": details["run_id"] or "", "recipe": str(details.get("recipe") or ""), "source": "mmp"}
    metadata = {"mmp_info": json.dumps(details, default=str)}
    if model_dir is None:
        bentoml.mlflow.import_model(tag, details["model_uri"], labels=labels, metadata=metadata)
        return tag, True
    import shutil
    from importlib.metadata import version

    # What bentoml.mlflow.import_model writes: the same module, signature and context, the model in mlflow_model/.
    context = bentoml.models.ModelContext(framework_name="mlflow", framework_versions={"mlflow": version("mlflow")})
    with bentoml.models.create(tag, module="bentoml.mlflow", api_version="v1", signatures={"predict": {"batchable": False}},
                               labels=labels, metadata=metadata, context=context) as model:
        target = model.path_of(MLFLOW_MODEL_FOLDER)
        shutil.copytree(model_dir, target)
        # MLflow's download of a logged model (models:/<model id>) adds this file; so does this copy.
        with open(os.path.join(target, "registered_model_meta"), "w", encoding="utf-8") as f:
            f.write("model_name: null\nmodel_version: null\n")
    return tag, True


def stored_run_model(uri: str) -> tuple[str, dict[str, Any]] | None:
    """(tag, details) of a `runs:/<id>/model` already in the BentoML store. A run's model never
    changes, so a restart skips MLflow altogether; `models:/name@alias` is always resolved. Read
    from the store's files (`$BENTOML_HOME/models/<name>/<run id>/model.yaml`): importing BentoML
    here would cost more than the rest of the lookup."""
    match = re.fullmatch(r"runs:/([0-9a-zA-Z]+)/model", uri)
    if not match:
        return None
    from pathlib import Path

    home = Path(os.path.expandvars(os.path.expanduser(os.environ.get("BENTOML_HOME", "~/bentoml"))))  # as BentoML
    for path in sorted((home / "models").glob(f"*/{match.group(1).lower()}/model.yaml")):
        try:
            info = _read_yaml(path)
        except (OSError, ValueError):  # a half-written or foreign entry: not ours to serve
            continue
        labels = info.get("labels") or {}
        if labels.get("source") == "mmp" and labels.get("run_id") == match.group(1):
            details = json.loads((info.get("metadata") or {}).get("mmp_info") or "{}")
            return f"{info['name']}:{info['version']}", details
    return None


def prepare(env: EnvSpec, uri: str, total: int = 3) -> tuple[str, dict[str, Any]]:
    """Stages 1 and 2: know the model and have it in the BentoML store; returns (tag, details)."""
    from mmp.io import tracking

    started = time.perf_counter()
    stored = stored_run_model(uri)
    if stored is not None:
        tag, details = stored
        say(1, total, f"model {uri}: run {details.get('run_id')}, recipe {details.get('recipe')}", started)
        say(2, total, f"BentoML model store: {tag} (already there)")
        return tag, details
    local = resolve_locally(uri, tracking.mlflow_uri(env.mlflow.tracking_uri))
    if local is None:
        tracking.connect(env.mlflow.tracking_uri)
        details, model_dir = resolve(uri), None
    else:
        details, model_dir = local
    say(1, total, f"model {uri}: run {details['run_id']}, recipe {details.get('recipe')}", started)
    started = time.perf_counter()
    tag, new = import_model(details, model_dir)
    say(2, total, f"BentoML model store: {tag} ({'imported' if new else 'already there'})", started)
    return tag, details


def serve_command(request: Any, uri: str, host: str | None, port: int | None, workers: int | None) -> None:
    """`mmp serve-api`: compose the env, then serve the model at `uri` (this process becomes the server)."""
    from mmp.config.env import compose_env

    serve(compose_env(request, prog="mmp serve-api"), uri, host, port, workers)


def check_before_start(settings: ServingSpec) -> None:
    """What the env alone can tell is wrong, found before any slow step: a missing auth token, an
    address this machine cannot bind, a port already taken."""
    import errno
    import socket

    if settings.auth.token_env and not os.environ.get(settings.auth.token_env):
        raise UserError(f"serving.auth.token_env: the environment variable {settings.auth.token_env} is not set; "
                        "set it to the bearer token clients must send, or set serving.auth.token_env=null")
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"serving.host: cannot resolve '{settings.host}' ({exc.strerror}); "
                        "use an address of this machine, 0.0.0.0 for every interface or 127.0.0.1") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"serving.port: {settings.host}:{settings.port} is already in use; "
                                "stop what listens there or pick another port (--port N)") from exc
            raise UserError(f"serving.host: cannot listen on {settings.host}:{settings.port} ({exc.strerror})") from exc


def listening_lines(settings: ServingSpec) -> str:
    """Where the service listens, as clients reach it: every interface is spelled out."""
    host, port = settings.host, settings.port
    if host in ("0.0.0.0", "::", ""):
        where = f"listening on {host or '0.0.0.0'}:{port} (every interface; from this machine http://127.0.0.1:{port})"
        base = f"http://127.0.0.1:{port}"
    else:
        shown = f"[{host}]" if ":" in host else host
        base = f"http://{shown}:{port}"
        where = f"listening on {shown}:{port}" + (" (this machine only)" if host in ("127.0.0.1", "localhost", "::1") else "")
    return (f"    {where}\n    serving   {base}/predict  {base}/predict/batch\n    docs      {base}/docs\n"
            f"    health    {base}/health  ready: {base}/ready  metrics: {base}/metrics")


def serve(env: EnvSpec, uri: str, host: str | None, port: int | None, workers: int | None) -> None:
    """Prepare the model, then replace this process with the BentoML server (it gets the signals)."""
    settings = env.serving.model_copy(update={k: v for k, v in
                                              (("host", host), ("port", port), ("workers", workers)) if v is not None})
    check_before_start(settings)
    total = 3
    tag, details = prepare(env, uri, total)
    say(3, total, f"starting BentoML service {SERVICE} with {settings.workers} worker(s)")
    print(listening_lines(settings), file=sys.stderr, flush=True)
    environment = {**os.environ, "MMP_MODEL_TAG": tag, "MMP_SERVING": settings.model_dump_json(),
                   "MMP_MONITORING": env.monitoring.model_dump_json(),
                   "MMP_ENVIRONMENT_NAME": env.environment.name or "", "BENTOML_DO_NOT_TRACK": "true"}
    environment["MMP_MODEL_INFO"] = json.dumps(details, default=str)  # the version an alias resolved to now
    if settings.follow_alias_s and details.get("alias"):  # the workers re-resolve the alias on this store
        import mlflow

        environment["MLFLOW_TRACKING_URI"] = mlflow.get_tracking_uri()
    # What `bentoml serve SERVICE --host H --port P --timeout-graceful-shutdown G` runs, without its command line.
    argv = [sys.executable, "-m", "mmp.serving.supervisor", settings.host, str(settings.port),
            str(max(1, int(settings.grace_period_s)))]
    sys.stdout.flush()
    os.execve(sys.executable, argv, environment)
