"""The V2 inference protocol (KServe's Open Inference Protocol, as MLServer and Triton speak it):

    POST /v2/models/{model_name}/infer
    {"id": "...", "inputs": [{"name": "age", "shape": [3, 1], "datatype": "FP64", "data": [41, 37, null]}, ...]}
    -> {"model_name": ..., "model_version": ..., "id": ...,
        "outputs": [{"name": "prediction", "shape": [3, 1], "datatype": "BYTES", "data": [...]}, ...]}

One input tensor per feature column (MLServer's pandas codec): shape [n] or [n, 1], `data` flat or
one value per row ([[41], [37], ...]); a numeric column takes a number datatype (FP64, INT64, ...), a
text column BYTES; null is a missing value, as everywhere in mmp. The outputs are the prediction
columns batch inference writes, led by any entity column the request sent. Errors have the
service's error shape (`error` is a string there too, as the protocol asks).
"""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import Request

from mmp.serving.request_formats import Batch, BatchError, missing, ragged, rows_within
from mmp.serving.request_schema import FieldError, RowSchema, kind_of

NUMBER_TYPES = ("FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")
TEXT_TYPE = "BYTES"


def read_v2(body: Any, schema: RowSchema, max_rows: int, entities: list[str]) -> Batch:
    """The batch in a parsed V2 infer request; raises BatchError naming every field at fault."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BatchError(422, "invalid_input", 'expected {"inputs": [{"name", "shape", "datatype", "data"}, ...]}',
                         [FieldError("inputs", "expected an array of input tensors, one per column")])
    tensors: dict[str, tuple[int, list]] = {}
    problems: list[FieldError] = []
    for i, tensor in enumerate(body["inputs"]):
        name = tensor.get("name") if isinstance(tensor, dict) else None
        if not isinstance(name, str):
            problems.append(FieldError(f"inputs[{i}]", "expected an object with the column's name"
                                       if isinstance(tensor, dict) else f"expected an object, got {kind_of(tensor)}"))
        elif name in tensors:
            problems.append(FieldError(f"inputs[{i}].name", f"'{name}' is sent twice"))
        elif name in schema.features or name in entities:  # other inputs are ignored, as extra fields are
            data, problem = _tensor_values(tensor, name, schema)
            if problem:
                problems.append(FieldError(f"inputs[{i}].{problem[0]}", problem[1]))
            else:
                tensors[name] = (i, data)
    given = [t.get("name") for t in body["inputs"] if isinstance(t, dict)]
    problems += [FieldError("inputs", missing(c, given, schema, "input")) for c in schema.features if c not in given]
    problems += ragged({name: data for name, (_, data) in tensors.items()}, lambda name: f"inputs[{tensors[name][0]}].data")
    if problems:
        raise BatchError(422, "invalid_input", f"{len(problems)} problem(s) in inputs", problems[:100])
    rows_within(len(tensors[schema.features[0]][1]), max_rows, "inputs")
    block, errors = schema.check_columns({c: tensors[c][1] for c in schema.features},
                                         lambda c, j: f"inputs[{tensors[c][0]}].data[{j}]")
    if errors:
        raise BatchError(422, "invalid_input", f"{len(errors)} problem(s) in inputs", errors[:100])
    return Batch(block, "v2", entities={c: tensors[c][1] for c in entities if c in tensors and c not in schema.features})


def _tensor_values(tensor: dict, name: str, schema: RowSchema) -> tuple[list, tuple[str, str] | None]:
    """(the flat values of one input tensor, None) or ([], (the field at fault, what is wrong))."""
    data, shape, datatype = tensor.get("data"), tensor.get("shape"), tensor.get("datatype")
    if not isinstance(data, list):
        return [], ("data", f"expected an array of values, got {kind_of(data)}")
    if data and type(data[0]) is list:  # one value per row, [[41], [37], ...]
        if set(map(type, data)) != {list} or set(map(len, data)) != {1}:
            return [], ("data", "expected the values flat ([41, 37, ...]) or one per row ([[41], [37], ...])")
        data = list(itertools.chain.from_iterable(data))
    if not (isinstance(shape, list) and all(type(d) is int for d in shape) and shape[:1] == [len(data)]
            and shape[1:] in ([], [1])):
        return [], ("shape", f"expected [{len(data)}] or [{len(data)}, 1] for {len(data)} values, got {shape!r}"[:200])
    if name in schema.features:
        allowed = NUMBER_TYPES if name in schema.numeric else (TEXT_TYPE,)
        if datatype not in allowed:
            wanted = "a number datatype (FP64, INT64, ...)" if name in schema.numeric else "BYTES (text)"
            return [], ("datatype", f"column '{name}' takes {wanted}, got {datatype!r}"[:200])
    return data, None


def v2_answer(model_name: str, version: str | None, request_id: str, outputs: dict[str, Any]) -> dict:
    """The V2 response: one output tensor per column of `outputs` (numpy arrays or lists), shape [n, 1]."""
    tensors = []
    for name, values in outputs.items():
        data = values.tolist() if hasattr(values, "tolist") else list(values)
        tensors.append({"name": name, "shape": [len(data), 1], "datatype": datatype_of(values), "data": data})
    answer = {"model_name": model_name, "id": request_id, "outputs": tensors}
    return {**answer, "model_version": version} if version else answer


def datatype_of(values: Any) -> str:
    """The V2 datatype of a column: from a numpy array's dtype, or from the Python values of a list."""
    dtype = getattr(values, "dtype", None)
    if dtype is not None and dtype.kind in "fiu":
        return {"f": "FP", "i": "INT", "u": "UINT"}[dtype.kind] + str(dtype.itemsize * 8)
    if dtype is not None and dtype.kind == "b":
        return "BOOL"
    kinds = set(map(type, values)) - {type(None)}
    if kinds and kinds <= {bool}:
        return "BOOL"
    if kinds and kinds <= {int}:
        return "INT64"
    if kinds and kinds <= {int, float}:
        return "FP64"
    return TEXT_TYPE


def example(model_dir: str, schema: RowSchema) -> dict:
    """A V2 request for the model in `model_dir`: the first row of the input example MLflow logged
    with it (pandas split orient), else a row of nulls (missing values)."""
    import json
    from pathlib import Path

    try:
        logged = json.loads((Path(model_dir) / "input_example.json").read_text(encoding="utf-8"))
        row = dict(zip(logged["columns"], logged["data"][0]))
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        row = {}
    return {"inputs": [{"name": c, "shape": [1], "datatype": "FP64" if c in schema.numeric else TEXT_TYPE,
                        "data": [row.get(c)]} for c in schema.features]}


def body_schema(schema: RowSchema, entities: list[str], max_rows: int) -> dict:
    """The JSON schema of a V2 infer request for this model, for the OpenAPI document."""
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string", "enum": [*schema.features, *entities]},
        "shape": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer", "minimum": 1}},
        "datatype": {"type": "string", "enum": [*NUMBER_TYPES, TEXT_TYPE]},
        "data": {"type": "array", "minItems": 1, "maxItems": max_rows},
        "parameters": {"type": "object"}}}
    return {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "parameters": {"type": "object"},
        "inputs": {"type": "array", "minItems": 1, "items": tensor}, "outputs": {"type": "array"}}}


def add_v2_routes(app: Any, state: Any, max_bytes: int, max_rows: int, guarded: tuple, not_ready: Any) -> None:
    """POST /v2/models/{model_name}/infer on `app`, for the model `state` serves."""
    from mmp.serving.routes import _body, answer, documented, entity_columns, error, read_and_predict

    names = sorted({n for n in (state.info.get("name"), state.info.get("registered_model")) if n})
    name_parameter = {"name": "model_name", "in": "path", "required": True,
                      "schema": {"type": "string", "enum": names}, "description": "the served model's name"}
    extra = {**_body(body_schema(state.schema, entity_columns(state), max_rows)), "parameters": [name_parameter]}
    extra["requestBody"]["content"]["application/json"]["example"] = example(state.model_dir, state.schema)

    @app.post("/v2/models/{model_name}/infer", summary="predict a batch in the V2 (Open Inference) protocol",
              description=__doc__.split("\n\n", 1)[1], openapi_extra=extra,
              responses=documented(400, *guarded, 404, 413, 422, 503))
    async def v2_infer(request: Request) -> Any:
        model_name = request.path_params["model_name"]
        if model_name not in (state.info.get("name"), state.info.get("registered_model")):
            return error(404, "model_not_found", f"this service serves model '{state.info.get('name')}', "
                                                 f"not '{model_name}'"[:300])
        if not state.ready:
            return not_ready()
        body, batch, results = await read_and_predict(
            state, request, max_bytes, lambda body: read_v2(body, state.schema, max_rows, entity_columns(state)))
        if batch is None:
            return results
        given_id = body.get("id")
        request_id = given_id if isinstance(given_id, str) else request.scope.get("state", {}).get("request_id", "")
        version = state.info.get("model_version") or state.info.get("run_id")
        return answer(v2_answer(model_name, version, request_id, {**batch.entities, **results.data}))
