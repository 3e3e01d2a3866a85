"""mmp's BentoML service: one model per worker, loaded once, in the background, so that /health
answers at once and /ready turns 200 when the model is in memory. `mmp serve-api` imports the
run's MLflow model into the BentoML model store and starts `bentoml serve mmp.serving.service:MmpService`
with MMP_MODEL_TAG, MMP_SERVING (the env config's `serving:` section as JSON) and MMP_MONITORING (its
`monitoring:` section: drift, mmp.serving.drift) set.
"""

from __future__ import annotations

import json
import logging
import os
import threading

import bentoml

from mmp.serving.drain import Drain
from mmp.serving.routes import create_app
from mmp.serving.state import ServingState, model_schema
from mmp.serving.middleware import RequestMiddleware, RequestMetrics

SETTINGS = json.loads(os.environ.get("MMP_SERVING") or "{}")
MODEL_TAG = os.environ.get("MMP_MODEL_TAG", "")
MONITORING = json.loads(os.environ.get("MMP_MONITORING") or "{}")  # the env's `monitoring:` (drift)


def _state() -> ServingState:
    model = bentoml.models.get(MODEL_TAG)
    model_dir = model.path_of("mlflow_model")
    # What `mmp serve-api` resolved just now (a models:/ alias's version), else what was stored at import.
    info = json.loads(os.environ.get("MMP_MODEL_INFO") or model.info.metadata.get("mmp_info", "{}"))
    info["environment"] = os.environ.get("MMP_ENVIRONMENT_NAME") or None  # where this service runs
    return ServingState(model_dir=model_dir, info=info, settings=SETTINGS, schema=model_schema(model_dir),
                        drain=Drain(), monitoring=MONITORING)


def _in_worker() -> bool:
    """Whether this process is a serving worker (BentoML numbers them before importing the service),
    not the `bentoml serve` supervisor or `mmp build`, which import this module only to read it."""
    from bentoml._internal.context import server_context

    return server_context.worker_index is not None


STATE = _state()
logging.getLogger("mmp").setLevel(SETTINGS.get("log_level", "info").upper())
if not logging.getLogger("mmp").handlers:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("mmp").addHandler(handler)
    logging.getLogger("mmp").propagate = False

# A worker starts unpickling the model now, while BentoML builds the app and uvicorn starts, not after.
_LOADING = threading.Thread(target=STATE.load, name="mmp-model-load", daemon=True)
if _in_worker():
    _LOADING.start()

_cors = SETTINGS.get("cors", {})


@bentoml.service(
    name="mmp",
    workers=int(SETTINGS.get("workers", 1)),
    traffic={"timeout": float(SETTINGS.get("timeout_s", 30))},
    logging={"access": {"enabled": False}},  # mmp writes one structured line per request instead
    http={"cors": {"enabled": bool(_cors.get("enabled")), "access_control_allow_origins": _cors.get("allow_origins") or [],
                   "access_control_allow_methods": ["GET", "POST", "OPTIONS"], "access_control_allow_headers": ["*"]}},
)
@bentoml.asgi_app(create_app(STATE), path="/")
class MmpService:
    """Loads the model in a background thread; BentoML's /readyz and mmp's /ready follow it."""

    def __init__(self) -> None:
        # BentoML builds the service at ASGI startup, on the main thread, after uvicorn set its
        # SIGTERM handler: the drain goes in front of it (mmp.serving.drain says why).
        STATE.drain.install()
        if not _LOADING.is_alive() and not STATE.loaded.is_set():  # served some other way than as a worker
            _LOADING.start()
        from mmp.serving.follow import start_follower

        start_follower(STATE, float(SETTINGS.get("follow_alias_s") or 0))  # models:/NAME@ALIAS: swap to new versions

    def __is_ready__(self) -> bool:
        return STATE.ready


MmpService.add_asgi_middleware(
    RequestMiddleware,
    token_env=(SETTINGS.get("auth") or {}).get("token_env"),
    max_body_bytes=int(SETTINGS.get("max_body_bytes", 10 * 1024 * 1024)),
    metrics=RequestMetrics(),
    drain=STATE.drain,
)
