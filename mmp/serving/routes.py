"""The service's HTTP routes (DESIGN §7), as a FastAPI app that the BentoML service mounts.

    GET  /health          liveness: 200 while the process runs
    GET  /ready           readiness: 503 until the model is loaded in this worker, then 200
    POST /predict         one JSON object -> {"prediction", "probability", "model_uri"}
    POST /predict/batch   {"samples": [...]} or {"dataframe_split": {...}} -> {"predictions", "model_uri",
                          "sample_count"}; {"columns": {...}} -> {"columns", ...} (mmp.serving.request_formats)
    POST /v2/models/NAME/infer   the V2 inference protocol's request and response (mmp.serving.v2_routes)
    GET  /model/info      run id, recipe, params, metrics
    GET  /model/schema    input columns and types, output columns
    GET  /model/drift     this worker's drift over its last `monitoring.window_rows` rows: PSI, status and
                          missing rate per feature and prediction column, the thresholds, the worst status;
                          404 `no_drift_profile` (a model without one) or `monitoring_disabled`

Bad input gets a 4xx JSON error naming the field; it never reaches the model.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from mmp.serving import request_body
from mmp.serving.middleware import internal_error
from mmp.serving.request_formats import BatchError, read_batch
from mmp.serving.request_schema import FieldError, RowSchema
from mmp.serving.state import ServingState, shape_rows
from mmp.serving.v2_routes import add_v2_routes

log = logging.getLogger("mmp.serve")


def entity_columns(state: ServingState) -> list[str]:
    """The model's entity columns that are not features: a request may send them, its answer carries them back."""
    return [c for c in state.info.get("entity_columns") or [] if c not in state.schema.features]


def with_entities(state: ServingState, rows: list[dict], results: list[dict]) -> list[dict]:
    """Each result led by the entity columns its request row carried (as batch inference writes them)."""
    entities = entity_columns(state)
    if not entities:
        return results
    return [{**{c: row[c] for c in entities if c in row}, **result} for row, result in zip(rows, results)]


def error(status: int, kind: str, message: str, fields: list[FieldError] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": kind, "message": message}
    if fields:
        body["fields"] = [f.as_dict() for f in fields]
    return JSONResponse(body, status_code=status)


def answer(content: Any) -> Response:
    """A 200 JSON response written by orjson (10x the json module on 1,000 predictions; NaN as null)."""
    import orjson

    return Response(orjson.dumps(content), media_type="application/json")


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
    404: "nothing to report (the model has no drift profile, or monitoring is disabled), or no model of that name",
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
        schema = state.schema
        errors = schema.check(row)
        if errors:
            return error(422, "invalid_input", "the record does not fit the model", errors)
        results, problem = await predict_or_explain(state, schema.row_as_columns(row))
        if problem is not None:
            return problem
        return answer({**with_entities(state, [row], shape_rows(results.data))[0], "model_uri": state.model_uri})

    @app.post("/predict/batch", summary="predict many records: rows, columns or MLflow's dataframe_split",
              description=BATCH_FORMATS, openapi_extra=_body(batch_body_schema(state.schema, max_rows)),
              responses=documented(400, *guarded, 413, 422, 503))
    async def predict_batch(request: Request) -> Any:
        if not state.ready:
            return not_ready()
        body, batch, results = await read_and_predict(
            state, request, max_bytes, lambda body: read_batch(body, state.schema, max_rows, entity_columns(state)))
        if batch is None:
            return results
        if batch.form == "columns":
            return answer({"columns": {**batch.entities, **results.as_lists()}, "model_uri": state.model_uri,
                           "sample_count": len(results)})
        rows = shape_rows(results.data)
        if batch.samples is not None:
            rows = with_entities(state, batch.samples, rows)
        elif batch.entities:  # dataframe_split: the entity columns it sent lead each row
            names = list(batch.entities)
            rows = [{**dict(zip(names, ids)), **row} for ids, row in zip(zip(*batch.entities.values()), rows)]
        return answer({"predictions": rows, "model_uri": state.model_uri, "sample_count": len(rows)})

    add_v2_routes(app, state, max_bytes, max_rows, guarded, not_ready)

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


async def read_and_predict(state: ServingState, request: Any, max_bytes: int, read: Any) -> tuple[Any, Any, Any]:
    """(body, batch, results) of a batch request whose body `read(body)` turns into a Batch, or
    (None, None, the 4xx response) when the body, its rows or the model's call refuse it."""
    body, problem = await read_json(request, max_bytes)
    if problem is not None:
        return None, None, problem
    try:
        batch = read(body)
    except BatchError as exc:
        return None, None, error(exc.status, exc.kind, exc.message, exc.fields)
    results, problem = await predict_or_explain(state, batch.features)
    return (None, None, problem) if problem is not None else (body, batch, results)


async def predict_or_explain(state: ServingState, rows: Any) -> tuple[Any, Any]:
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


BATCH_FORMATS = """Three bodies, one key each:

* `{"samples": [{"col": value, ...}, ...]}`: one object per row; answered with
  `{"predictions": [{"prediction": ..., "probability": ...}, ...], "model_uri": ..., "sample_count": n}`.
* `{"columns": {"col": [value, ...], ...}}`: one array per column, all of one length; answered with
  `{"columns": {"prediction": [...], "probability": [...], ...}, "model_uri": ..., "sample_count": n}`: the
  prediction columns batch inference writes (`probability_<class>` for each class of a multi-class model).
* `{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`: MLflow's split orient, as sent to
  `mlflow models serve`; answered like `samples` (`index` is ignored).

Entity columns sent beside the features come back in the answer; other extra fields are ignored."""


def batch_body_schema(schema: RowSchema, max_rows: int) -> dict:
    """The JSON schema of a /predict/batch body: one of the three formats."""
    rows = {"type": "array", "minItems": 1, "maxItems": max_rows, "items": schema.json_schema()}
    columns = {"type": "object", "required": list(schema.features), "properties": {
        c: {"type": "array", "minItems": 1, "maxItems": max_rows, "items": {"type": schema.json_type(c)}}
        for c in schema.features}}
    split = {"type": "object", "required": ["columns", "data"], "properties": {
        "columns": {"type": "array", "items": {"type": "string"}, "minItems": len(schema.features),
                    "description": "every feature column, in any order: " + ", ".join(schema.features)},
        "data": {"type": "array", "minItems": 1, "maxItems": max_rows, "items": {
            "type": "array", "minItems": len(schema.features), "maxItems": len(schema.features)}},
        "index": {"type": "array"}}}
    return {"oneOf": [{"type": "object", "required": [key], "properties": {key: value}, "title": key}
                      for key, value in (("samples", rows), ("columns", columns), ("dataframe_split", split))]}


def _body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
