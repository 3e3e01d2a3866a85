"""`mmp serve-api`: put the run's MLflow model into the BentoML model store and start the
BentoML service on it (`bentoml serve mmp.service:MmpService`), which then owns the process."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import Any

from mmp import __version__
from mmp.errors import UserError
from mmp.spec import EnvSpec

SERVICE = "mmp.service:MmpService"


def _say(step: int, total: int, text: str, started: float | None = None) -> None:
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
                       recipe=run.data.tags.get("mmp.recipe", details["recipe"]), env=run.data.tags.get("mmp.env"))
    return details


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
    from mmp import tracking

    started = time.perf_counter()
    stored = stored_run_model(uri)
    if stored is not None:
        tag, details = stored
        _say(1, total, f"model {uri}: run {details.get('run_id')}, recipe {details.get('recipe')}", started)
        _say(2, total, f"BentoML model store: {tag} (already there)")
        return tag, details
    tracking.connect(env.mlflow.tracking_uri)
    details = resolve(uri)
    _say(1, total, f"model {uri}: run {details['run_id']}, recipe {details.get('recipe')}", started)
    started = time.perf_counter()
    tag, new = import_model(details)
    _say(2, total, f"BentoML model store: {tag} ({'imported' if new else 'already there'})", started)
    return tag, details


def serve(env: EnvSpec, uri: str, host: str | None, port: int | None, workers: int | None) -> None:
    """Prepare the model, then replace this process with the BentoML server (it gets the signals)."""
    settings = env.serving.model_copy(update={k: v for k, v in
                                              (("host", host), ("port", port), ("workers", workers)) if v is not None})
    total = 3
    tag, details = prepare(env, uri, total)
    shown = "localhost" if settings.host in ("0.0.0.0", "::") else settings.host
    base = f"http://{shown}:{settings.port}"
    _say(3, total, f"starting BentoML service {SERVICE} with {settings.workers} worker(s)")
    print(f"    serving   {base}/predict  {base}/predict/batch\n    docs      {base}/docs\n"
          f"    health    {base}/health  ready: {base}/ready  metrics: {base}/metrics", file=sys.stderr, flush=True)
    environment = {**os.environ, "MMP_MODEL_TAG": tag, "MMP_SERVING": settings.model_dump_json(),
                   "BENTOML_DO_NOT_TRACK": "true"}
    if settings.auth.token_env and not os.environ.get(settings.auth.token_env):
        raise UserError(f"serving.auth.token_env: the environment variable {settings.auth.token_env} is not set; "
                        "set it to the bearer token clients must send, or set serving.auth.token_env=null")
    argv = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", settings.host, "--port", str(settings.port),
            "--timeout-graceful-shutdown", str(max(1, int(settings.grace_period_s)))]
    sys.stdout.flush()
    os.execve(sys.executable, argv, environment)


def build(env: EnvSpec, uri: str) -> str:
    """A Bento holding the model, mmp's service code and its requirements (`bentoml build`); returns its tag."""
    import shutil
    import tempfile
    from pathlib import Path

    import bentoml
    from bentoml._internal.bento.build_config import BentoEnvSchema  # what `envs:` in a bentofile becomes

    import mmp

    tag, details = prepare(env, uri, total=3)
    started = time.perf_counter()
    model = bentoml.models.get(tag)
    requirements = (Path(model.path_of("mlflow_model")) / "requirements.txt").read_text().split()
    requirements += [f"bentoml=={bentoml.__version__}", "fastapi", "pyyaml"]
    settings = env.serving.model_dump_json()
    os.environ.update(MMP_MODEL_TAG=tag, MMP_SERVING=settings)  # the service module reads them on import
    with tempfile.TemporaryDirectory() as context:
        shutil.copytree(Path(mmp.__file__).parent, Path(context) / "mmp",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        bento = bentoml.bentos.build(
            SERVICE, name=tag.split(":")[0], build_ctx=context, include=["mmp/**/*.py"],
            labels={"run_id": str(details.get("run_id") or ""), "source": "mmp"},
            description=f"mmp model {details.get('model_uri')} (recipe {details.get('recipe')})",
            python={"packages": requirements}, models=[tag],
            envs=[BentoEnvSchema(name="MMP_MODEL_TAG", value=tag), BentoEnvSchema(name="MMP_SERVING", value=settings),
                  BentoEnvSchema(name="BENTOML_DO_NOT_TRACK", value="true")],
        )
    _say(3, 3, f"Bento {bento.tag} built (serve: MMP_MODEL_TAG={tag} bentoml serve {bento.tag}; "
               f"image: bentoml containerize {bento.tag})", started)
    return str(bento.tag)
