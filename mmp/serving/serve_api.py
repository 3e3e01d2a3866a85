"""`mmp serve-api`: put the run's MLflow model into the BentoML model store and start the
BentoML service on it (`bentoml serve mmp.serving.service:MmpService`), which then owns the process."""

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

SERVICE = "mmp.serving.service:MmpService"


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
    meta = (info.metadata or {}).get("mmp") or {}
    run_id = info.run_id
    details: dict[str, Any] = {"model_uri": uri, "run_id": run_id, "name": meta.get("name") or "model",
                               "recipe": meta.get("recipe"), "task": meta.get("task"), "classes": meta.get("classes"),
                               "entity_columns": meta.get("entity_columns", []), "mmp_version": __version__}
    if run_id:
        run = mlflow.MlflowClient().get_run(run_id)
        details.update(params=run.data.params, metrics=run.data.metrics,
                       recipe=run.data.tags.get("mmp.recipe", details["recipe"]), env=run.data.tags.get("mmp.env"),
                       training_environment=run.data.tags.get("mmp.environment"))
    details.update(registered_version(uri))
    return details


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


def import_model(details: dict[str, Any]) -> tuple[str, bool]:
    """Import the model into the BentoML store under `bento_tag`; (tag, whether it was new)."""
    import bentoml
    from bentoml.exceptions import NotFound

    tag = bento_tag(details)
    try:
        bentoml.models.get(tag)
        return tag, False
    except NotFound:
        pass
    bentoml.mlflow.import_model(
        tag, details["model_uri"],
        labels={"run_id": details["run_id"] or "", "recipe": str(details.get("recipe") or ""), "source": "mmp"},
        metadata={"mmp_info": json.dumps(details, default=str)},
    )
    return tag, True


def stored_run_model(uri: str) -> tuple[str, dict[str, Any]] | None:
    """(tag, details) of a `runs:/<id>/model` already in the BentoML store. A run's model never
    changes, so a restart can skip MLflow altogether; `models:/name@alias` is always resolved."""
    match = re.fullmatch(r"runs:/([0-9a-zA-Z]+)/model", uri)
    if not match:
        return None
    import bentoml

    for model in bentoml.models.list():
        labels = model.info.labels or {}
        if labels.get("source") == "mmp" and labels.get("run_id") == match.group(1):
            return str(model.tag), json.loads(model.info.metadata.get("mmp_info", "{}"))
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
    tracking.connect(env.mlflow.tracking_uri)
    details = resolve(uri)
    say(1, total, f"model {uri}: run {details['run_id']}, recipe {details.get('recipe')}", started)
    started = time.perf_counter()
    tag, new = import_model(details)
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
    argv = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", settings.host, "--port", str(settings.port),
            "--timeout-graceful-shutdown", str(max(1, int(settings.grace_period_s)))]
    sys.stdout.flush()
    os.execve(sys.executable, argv, environment)
