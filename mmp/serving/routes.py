"""The service's HTTP routes (DESIGN §7), as a FastAPI app that the BentoML service mounts.

    GET  /health          liveness: 200 while the process runs
    GET  /ready           readiness: 503 until the model is loaded in this worker, then 200
    POST /predict         one JSON object -> {"prediction", "probability", "model_uri"}
    POST /predict/batch   {"samples": [...]} -> {"predictions", "model_uri", "sample_count"}
    GET  /model/info      run id, recipe, params, metrics
    GET  /model/schema    input columns and types, output columns
    GET  /model/drift     this worker's drift over its last `monitoring.window_rows` rows: PSI, status and
                          missing rate per feature and prediction column, the thresholds, the worst status;
                          404 `no_drift_profile` (a model without one) or `monitoring_disabled`

Bad input gets a 4xx JSON error naming the field; it never reaches the model.
"""

from __future__ import annotations

import functools
import gc
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse

from mmp.serving import request_body
from mmp.serving.middleware import internal_error
from mmp.serving.request_schema import FieldError, RowSchema

log = logging.getLogger("mmp.serve")


@dataclass
class ServingState:
    """One worker's model: what it is (known at start) and whether it is loaded yet."""

    model_dir: str
    info: dict[str, Any]
    settings: dict[str, Any]
    schema: RowSchema
    model: Any = None
    error: str | None = None
    loaded: threading.Event = field(default_factory=threading.Event)
    batcher: Any = None
    drain: Any = None  # the worker's Drain: once started, /ready says so
    monitoring: dict[str, Any] = field(default_factory=dict)  # the env's `monitoring:` section
    drift: Any = None  # mmp.serving.drift.DriftMonitor, built by drift_monitor(model_dir, monitoring)
    follow: dict[str, Any] | None = None  # following models:/NAME@ALIAS: version, last_check, error (mmp.serving.follow)

    @property
    def ready(self) -> bool:
        return self.loaded.is_set() and self.model is not None

    @property
    def model_uri(self) -> str:
        return self.info.get("model_uri", "")

    def load(self) -> None:
        """Unpickle the model (without MLflow when it is mmp's) and warm it up; sets `ready`."""
        from mmp.serving.batching import Batcher
        from mmp.models.tabular import load_from_mlflow_dir

        try:
            model = load_from_mlflow_dir(self.model_dir)
            if model is None:  # some other pyfunc: serve it through MLflow
                import mlflow

                model = _PyfuncAdapter(mlflow.pyfunc.load_model(self.model_dir))
            batching = self.settings.get("batching", {})
            predict, warm_up = self._predict_rows, [{c: None for c in self.schema.features}]
            if self.info.get("task") == "timeseries":  # one series per request (mmp.serving.forecast_routes)
                from mmp.serving.forecast_routes import forecast_meta, forecast_responses, warm_up_request

                predict = functools.partial(forecast_responses, model, forecast_meta(self.model_dir))
                warm_up = warm_up_request(model, forecast_meta(self.model_dir))
            self.batcher = Batcher(predict, batching.get("max_batch_size", 64),
                                   batching.get("max_wait_ms", 0), batching.get("enabled", True))
            self.model = model
            if warm_up:
                predict(warm_up)  # first call pays lazy imports
            from mmp.serving.drift import drift_monitor

            self.drift = drift_monitor(self.model_dir, self.monitoring)  # after the warm-up: it is not traffic
            # Everything loaded so far (libraries, the model) lives as long as the worker: keep it out
            # of the garbage collector's full passes, which otherwise stall requests for 100+ ms.
            gc.collect()
            gc.freeze()
        except Exception as exc:  # stay alive, stay unready, say why on /ready
            log.exception("model failed to load")
            self.model, self.error = None, f"{type(exc).__name__}: {exc}"
        finally:
            self.loaded.set()

    def swap(self, model_dir: str, info: dict[str, Any], schema: RowSchema) -> None:
        """Serve the model in `model_dir` instead: load and warm it up beside the current one, switch
        between two batches of the model thread (in-flight requests finish on the old model, later
        ones get the new), then free the old. Raises, keeping the current model, if the new one fails."""
        import dataclasses

        from mmp.models.tabular import load_from_mlflow_dir

        model = load_from_mlflow_dir(model_dir)
        if model is None:  # some other pyfunc: serve it through MLflow
            import mlflow

            model = _PyfuncAdapter(mlflow.pyfunc.load_model(model_dir))
        candidate = dataclasses.replace(self, model_dir=model_dir, info=info, schema=schema, model=model, drift=None)
        predict = candidate._predict_rows
        if info.get("task") == "timeseries":
            from mmp.serving.forecast_routes import forecast_meta, forecast_responses, warm_up_request

            predict = functools.partial(forecast_responses, model, forecast_meta(model_dir))
            warm_up = warm_up_request(model, forecast_meta(model_dir))
            if warm_up:
                predict(warm_up)
        else:
            candidate._predict_rows([{c: None for c in schema.features}])  # a model that cannot predict stays out
        from mmp.serving.drift import drift_monitor

        drift = drift_monitor(model_dir, self.monitoring)
        old = self.model

        def switch() -> None:  # on the model thread, between two batches
            self.model_dir, self.info, self.schema, self.model, self.drift = model_dir, info, schema, model, drift
            if info.get("task") == "timeseries":
                self.batcher.predict = predict

        self.batcher.executor.submit(switch).result()
        del old, candidate
        gc.unfreeze()  # the old model was frozen with everything else at load: let a full pass free it
        gc.collect()
        gc.freeze()

    def _predict_rows(self, rows: list[dict]) -> list[dict]:
        import pandas as pd

        frame = pd.DataFrame.from_records(rows, columns=self.schema.features)
        if hasattr(self.model, "predict_columns"):
            columns = self.model.predict_columns(frame)
        else:
            out = self.model.predict_frame(frame)  # a model logged by an mmp without predict_columns
            columns = {c: out[c].to_numpy() for c in out.columns}
        if self.drift is not None:  # counted here, in the model thread, never on the event loop
            self.drift.record(frame, columns)
        return shape_rows(columns)


class _PyfuncAdapter:
    """A non-mmp MLflow pyfunc behind the same predict_frame contract."""

    def __init__(self, pyfunc: Any):
        self.pyfunc = pyfunc

    def predict_columns(self, frame: Any) -> dict[str, Any]:
        import pandas as pd

        out = self.pyfunc.predict(frame)
        out = out if isinstance(out, pd.DataFrame) else pd.DataFrame({"prediction": list(out)})
        return {c: out[c].to_numpy() for c in out.columns}


def shape_rows(out: dict[str, Any]) -> list[dict]:
    """Prediction columns -> one JSON-ready dict per row: prediction, probability (binary: positive
    class; multi-class: the predicted class's) and, for multi-class, every class's probability; any
    other column (a quantile's `prediction_q05`, ...) as it is."""
    columns = {c: values.tolist() for c, values in out.items()}
    predictions = columns.pop("prediction")
    binary = columns.pop("probability", None)
    classes = [c[len("probability_"):] for c in columns if c.startswith("probability_")]
    extra = [c for c in columns if not c.startswith("probability_")]
    rows = []
    for i, prediction in enumerate(predictions):
        row: dict[str, Any] = {"prediction": prediction}
        if binary is not None:
            row["probability"] = binary[i]
        elif classes:
            probabilities = {c: columns[f"probability_{c}"][i] for c in classes}
            row["probability"] = probabilities.get(str(prediction), max(probabilities.values()))
            row["probabilities"] = probabilities
        else:
            row["probability"] = None
        row.update({c: columns[c][i] for c in extra})
        rows.append(row)
    return rows


def with_entities(state: ServingState, rows: list[dict], results: list[dict]) -> list[dict]:
    """Each result led by the entity columns its request row carried (as batch inference writes them)."""
    entities = [c for c in state.info.get("entity_columns") or [] if c not in state.schema.features]
    if not entities:
        return results
    return [{**{c: row[c] for c in entities if c in row}, **result} for row, result in zip(rows, results)]


def error(status: int, kind: str, message: str, fields: list[FieldError] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": kind, "message": message}
    if fields:
        body["fields"] = [f.as_dict() for f in fields]
    return JSONResponse(body, status_code=status)


async def read_json(request: Any, max_bytes: int) -> tuple[Any, Any]:
    """(parsed body, None) or (None, error response): size, then JSON syntax, nesting and number length."""
    body = await request.body()
    if len(body) > max_bytes:
        return None, error(413, "body_too_large", f"the body has {len(body)} bytes; the limit is {max_bytes}")
    if not body.strip():
        return None, error(400, "empty_body", "send a JSON object")
    try:
        return request_body.parse(body), None
    except request_body.BodyError as exc:
        return None, error(400, exc.kind, exc.message)


class FieldErrorBody(BaseModel):
    """One problem with one field of the request (`samples[3].age`)."""

    field: str
    message: str


class ErrorBody(BaseModel):
    """The body of mmp's 4xx and 5xx responses: a code, a sentence, and the fields at fault where there are any."""

    error: str
    message: str
    fields: list[FieldErrorBody] = []


ERROR_STATUSES = {
    400: "the body is not JSON, is empty, nests too deep or holds too long a number",
    401: "no or a wrong bearer token",
    404: "nothing to report: the model has no drift profile, or monitoring is disabled",
    413: "the body or the batch is larger than the limit",
    422: "the JSON does not fit the model: a field missing, of the wrong type or out of range",
    503: "the model is not loaded (yet), or the worker is shutting down",
}


def documented(*statuses: int) -> dict[int, dict]:
    """OpenAPI `responses` for the error statuses a route can send, each with the ErrorBody schema."""
    return {status: {"model": ErrorBody, "description": ERROR_STATUSES[status]} for status in statuses}


def create_app(state: ServingState):
    """The FastAPI app for one worker's `state`."""
    settings = state.settings
    max_bytes = int(settings.get("max_body_bytes", 10 * 1024 * 1024))
    max_rows = int(settings.get("max_batch_rows", 10_000))
    row_schema = state.schema.json_schema()
    app = FastAPI(title=f"mmp: {state.info.get('name', 'model')}", version=str(state.info.get("mmp_version", "")),
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    app.add_exception_handler(Exception, json_500)
    guarded = (401,) if (settings.get("auth") or {}).get("token_env") else ()

    def not_ready() -> Any:
        if state.error:
            return error(503, "model_failed", f"the model failed to load: {state.error}")
        return error(503, "model_loading", "the model is still loading; retry when GET /ready answers 200")

    @app.get("/health", summary="liveness")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", summary="readiness", responses=documented(503))
    async def ready() -> Any:
        if state.drain is not None and state.drain.started:
            return error(503, "shutting_down", "this worker is finishing its last requests; send new ones elsewhere")
        if not state.ready:
            return not_ready()
        body = {"status": "ready", "model_uri": state.model_uri, "model_name": state.info.get("name")}
        if state.follow is not None:  # following an alias: the version served, the last check, why not swapped
            body["follow"] = state.follow
        return body

    @app.get("/model/info", summary="run id, recipe, params and metrics of the served model",
             responses=documented(*guarded))
    async def model_info() -> dict:
        return state.info

    @app.get("/model/drift", summary="drift of this worker's recent requests against the training data",
             description="PSI, status and missing rate per feature and prediction column over the worker's last "
             "monitoring.window_rows rows, the thresholds, and the worst status (mmp.serving.drift)",
             responses=documented(*guarded, 404, 503))
    async def model_drift() -> Any:
        if not state.ready:
            return not_ready()
        if state.drift is None:
            if (state.monitoring or {}).get("enabled", True) is False:
                return error(404, "monitoring_disabled",
                             "drift is not measured: monitoring.enabled is false in the env")
            return error(404, "no_drift_profile", "this model was logged without a drift profile "
                         f"(a forecast, a causal model, or trained before mmp logged one): {state.model_uri}")
        return state.drift.report()

    if state.info.get("task") == "timeseries":  # one series per request, its history optional
        from mmp.serving.forecast_routes import add_forecast_routes

        add_forecast_routes(app, state, max_bytes, max_rows, guarded, not_ready)
        return app

    # Schemas are written out, not referenced: BentoML's /docs.json rebuilds the document from the
    # routes and would drop a schema that only this app's /openapi.json adds to its components.
    @app.post("/predict", summary="predict one record", openapi_extra=_body(row_schema),
              responses=documented(400, *guarded, 413, 422, 503))
    async def predict(request: Request) -> Any:
        if not state.ready:
            return not_ready()
        row, problem = await read_json(request, max_bytes)
        if problem is not None:
            return problem
        errors = state.schema.check(row)
        if errors:
            return error(422, "invalid_input", "the record does not fit the model", errors)
        results, problem = await predict_or_explain(state, [row])
        if problem is not None:
            return problem
        return JSONResponse({**with_entities(state, [row], results)[0], "model_uri": state.model_uri})

    batch_schema = {"type": "object", "required": ["samples"], "properties": {
        "samples": {"type": "array", "minItems": 1, "maxItems": max_rows, "items": row_schema}}}

    @app.post("/predict/batch", summary="predict many records", openapi_extra=_body(batch_schema),
              responses=documented(400, *guarded, 413, 422, 503))
    async def predict_batch(request: Request) -> Any:
        if not state.ready:
            return not_ready()
        body, problem = await read_json(request, max_bytes)
        if problem is not None:
            return problem
        if not isinstance(body, dict) or "samples" not in body:
            return error(422, "invalid_input", "expected {\"samples\": [...]}", [FieldError("samples", "missing field")])
        samples = body["samples"]
        if not isinstance(samples, list):
            return error(422, "invalid_input", "samples must be an array", [FieldError("samples", "expected an array")])
        if not samples:
            return error(422, "invalid_input", "samples is empty", [FieldError("samples", "send at least one record")])
        if len(samples) > max_rows:
            return error(413, "batch_too_large", f"{len(samples)} samples; the limit is {max_rows}",
                         [FieldError("samples", f"at most {max_rows} records")])
        errors = [e for i, row in enumerate(samples) for e in state.schema.check(row, f"samples[{i}]")]
        if errors:
            return error(422, "invalid_input", f"{len(errors)} problem(s) in samples", errors[:100])
        results, problem = await predict_or_explain(state, samples)
        if problem is not None:
            return problem
        return JSONResponse({"predictions": with_entities(state, samples, results), "model_uri": state.model_uri,
                             "sample_count": len(results)})

    @app.get("/model/schema", summary="input columns and types; output columns", responses=documented(*guarded))
    async def model_schema() -> dict:
        numeric = state.schema.numeric
        return {
            "inputs": [{"name": c, "type": "number" if c in numeric else "string", "required": True, "nullable": True}
                       for c in state.schema.features],
            "entity_columns": state.info.get("entity_columns", []),
            "outputs": ["prediction", "probability"] + (["probabilities"] if len(state.info.get("classes") or []) > 2 else [])
            + list(_extra_outputs(state.model_dir)),
            "task": state.info.get("task"),
            "classes": state.info.get("classes"),
        }

    original_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = original_openapi()
            # The row under its own name too, for clients that generate types from the document.
            schema.setdefault("components", {}).setdefault("schemas", {})["Row"] = row_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


@functools.lru_cache(maxsize=4)
def _extra_outputs(model_dir: str) -> tuple[str, ...]:
    """Output columns the logged signature names beyond prediction and probabilities (quantiles)."""
    import json
    from pathlib import Path

    import yaml

    try:
        mlmodel = yaml.safe_load((Path(model_dir) / "MLmodel").read_text(encoding="utf-8"))
        names = [c.get("name") for c in json.loads((mlmodel.get("signature") or {}).get("outputs") or "[]")]
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return ()
    return tuple(n for n in names if isinstance(n, str) and n != "prediction" and not n.startswith("probability"))


async def predict_or_explain(state: ServingState, rows: list[dict]) -> tuple[Any, Any]:
    """(results, None), or (None, a 422) when these valid-looking rows still cannot be predicted
    (the model rejects a value); the batcher keeps other requests out of such a failure."""
    from mmp.models.tabular import InputError

    try:
        return await state.batcher.submit(rows), None
    except (InputError, ValueError, ArithmeticError) as exc:
        log.warning("unpredictable input: %s", exc)
        return None, error(422, "unpredictable_input", f"the model cannot predict this input: {exc}")


async def json_500(request: Request, exc: Exception) -> JSONResponse:
    """A bug's 500 as JSON like every other error (the middleware logs the traceback and keeps the connection)."""
    return JSONResponse(internal_error(request.scope.get("state", {}).get("request_id", "")), status_code=500)


def _body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
