"""A chunk's model input built straight from Arrow columns: the frame `mmp.models.tabular.model_input`
makes from pandas, without the pandas frame it starts from.

Batch inference used to turn each chunk into pandas (`Table.to_pandas`: one array per column),
then `model_input` copied the feature columns into one float64 block and wrapped it in a new
frame. Here each numeric feature column is written once, straight from its Arrow buffers, into
the column of a float64 block laid out as pandas lays out a frame's block, and the frame wraps
that block without a copy. The pipeline then receives a frame equal in values, dtypes, index and
memory layout to the one `model_input` makes, so its predictions are the same to the last bit
(tests/inference/test_arrow_input.py compares them with `mlflow.pyfunc.load_model(...).predict`).

Only Arrow types whose conversion is exact and matches pandas' are taken: numbers, booleans and
nulls for numeric features, strings for text features. Anything else (decimals, dates, a
dictionary column) returns None and the chunk goes through pandas as before.

A logged model carries its own copy of mmp's code (pickled by value), so `arrow_predictor` takes
this path only when the model's `predict_frame` and `model_input` are this mmp's, instruction for
instruction; a model logged by an mmp whose input rules differ keeps its own `predict_frame`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def arrow_predictor(model: Any) -> Callable[[Any], tuple[Any, np.ndarray | None] | None] | None:
    """For mmp's TabularModel whose input rules are this module's: a function from an Arrow chunk to
    (its prediction frame, as `model.predict_frame` gives it; its numeric features' float64 block),
    or None for a chunk of column types it does not take. None for any other model."""
    from mmp.models import tabular

    cls = type(model)
    predict_frame = getattr(cls, "predict_frame", None)
    logged = getattr(predict_frame, "__globals__", {})
    if (cls.__name__ != "TabularModel" or not _same_code(predict_frame, tabular.TabularModel.predict_frame)
            or not _same_code(logged.get("model_input"), tabular.model_input) or "prediction_frame" not in logged):
        return None
    prediction_frame = logged["prediction_frame"]  # the model's own, as its predict_frame calls it

    def predict(table: Any) -> tuple[Any, np.ndarray | None] | None:
        built = model_frame(table, model.features, model.numeric)
        if built is None:
            return None
        frame, block = built
        return prediction_frame(model.pipeline, frame, model.task, model.classes), block

    return predict


def _same_code(a: Any, b: Any) -> bool:
    """Whether two functions run the same instructions on the same constants and names (line
    numbers aside: a model logged before an unrelated edit above them still qualifies)."""
    a, b = getattr(a, "__code__", a), getattr(b, "__code__", b)
    if not (hasattr(a, "co_code") and hasattr(b, "co_code")):
        return False
    if (a.co_code, a.co_names, a.co_varnames, len(a.co_consts)) != (b.co_code, b.co_names, b.co_varnames, len(b.co_consts)):
        return False
    return all(_same_code(x, y) if hasattr(x, "co_code") else (type(x) is type(y) and x == y)
               for x, y in zip(a.co_consts, b.co_consts))


def numeric_block(table: Any, columns: list[str]) -> np.ndarray | None:
    """The `columns` of an Arrow table as one float64 array (rows x columns, column-major, as a
    pandas float64 block is), missing values as NaN; None when some column's type is not a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    block = np.empty((len(columns), table.num_rows), dtype=np.float64).T
    for j, name in enumerate(columns):
        column = table.column(name)
        kind = column.type
        if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind):
            if kind != pa.float64():  # int -> float rounds as numpy's astype does (safe=False: no overflow check)
                column = pc.cast(column, pa.float64(), safe=False)
            _fill(block[:, j], column)
        else:
            return None
    return block


def _fill(target: np.ndarray, column: Any) -> None:
    """Copy a float64 Arrow column (chunked or not) into `target`, nulls as NaN."""
    start = 0
    for chunk in getattr(column, "chunks", [column]):
        n = len(chunk)
        target[start:start + n] = chunk.to_numpy(zero_copy_only=False)  # nulls -> NaN
        start += n


def _text(column: Any) -> np.ndarray | None:
    """A string column as Python objects, missing as NaN (what `model_input` gives text columns)."""
    import pyarrow as pa

    kind = column.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
        return None
    values = column.to_numpy(zero_copy_only=False)
    if column.null_count:
        values[column.is_null().to_numpy(zero_copy_only=False)] = np.nan
    return values


def model_frame(table: Any, features: list[str], numeric: list[str]) -> tuple[Any, np.ndarray | None] | None:
    """(the model's input frame for this chunk, the float64 block of its numeric features or None);
    None when some feature is missing or of a type this fast path does not take."""
    import pandas as pd

    if any(name not in table.column_names for name in features):
        return None  # `model_input` names the missing column
    numeric_set = set(numeric)
    index = pd.RangeIndex(table.num_rows)
    if len(numeric_set) == len(features):
        block = numeric_block(table, features)
        if block is None:
            return None
        # `model_input` wraps `frame[features].to_numpy(dtype="float64")`, which is column-major too
        return pd.DataFrame(block, columns=features, index=index, copy=False), block
    numbers = [c for c in features if c in numeric_set]
    block = numeric_block(table, numbers) if numbers else None
    if numbers and block is None:
        return None
    out: dict[str, Any] = {}
    position = {name: j for j, name in enumerate(numbers)}
    for name in features:
        if name in numeric_set:
            out[name] = pd.Series(block[:, position[name]], index=index, dtype="float64", copy=False)
        else:
            values = _text(table.column(name))
            if values is None:
                return None
            out[name] = pd.Series(values, index=index, dtype=object, copy=False)
    return pd.DataFrame(out, index=index), block
