"""The bodies /predict/batch reads, each into the model's feature columns (`Columns`):

    {"samples": [{"age": 41, ...}, ...]}                         one object per row (answered with rows)
    {"columns": {"age": [41, 37, ...], ...}}                     one array per column (answered with columns)
    {"dataframe_split": {"columns": ["age", ...], "data": [[41, ...], ...]}}
                                                                 MLflow's split orient, as `mlflow models
                                                                 serve` reads it (answered with rows, as
                                                                 MLflow answers it; "index" is ignored)

Entity columns sent beside the features come back with the answer; other extra fields are ignored.
A body that does not fit gets a `BatchError` naming the fields at fault, all of them at once.
"""

from __future__ import annotations

import collections
import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Sized

from mmp.serving.columns import Columns
from mmp.serving.request_schema import FieldError, RowSchema, kind_of

FORMATS = ("samples", "columns", "dataframe_split")


class BatchError(ValueError):
    """A batch body that does not fit: the status, the error code and the fields at fault."""

    def __init__(self, status: int, kind: str, message: str, fields: list[FieldError]):
        super().__init__(message)
        self.status, self.kind, self.message, self.fields = status, kind, message, fields


@dataclass
class Batch:
    """A batch body read: its features as columns, its format, and what the answer carries back."""

    features: Columns
    form: str  # "samples", "columns", "dataframe_split" or "v2"
    samples: list[dict] | None = None  # the row list itself: entity fields go back row by row
    entities: dict[str, list] = field(default_factory=dict)  # entity columns a column body sent


def read_batch(body: Any, schema: RowSchema, max_rows: int, entities: list[str]) -> Batch:
    """The batch in a parsed /predict/batch body, in whichever of FORMATS it comes; raises BatchError."""
    given = [f for f in FORMATS if isinstance(body, dict) and f in body]
    if not given:
        raise BatchError(422, "invalid_input", 'expected {"samples": [...]}, {"columns": {...}} or '
                         '{"dataframe_split": {"columns": [...], "data": [...]}}', [FieldError("samples", "missing field")])
    if len(given) > 1:
        raise BatchError(422, "invalid_input", f"send one of {', '.join(FORMATS)}; the body has {', '.join(given)}",
                         [FieldError(f, "send this or the others, not both") for f in given])
    form = given[0]
    if form == "samples":
        return _samples(body["samples"], schema, max_rows)
    if form == "columns":
        return _columns(body["columns"], schema, max_rows, entities)
    return _dataframe_split(body["dataframe_split"], schema, max_rows, entities)


def _samples(samples: Any, schema: RowSchema, max_rows: int) -> Batch:
    if not isinstance(samples, list):
        raise BatchError(422, "invalid_input", "samples must be an array", [FieldError("samples", "expected an array")])
    rows_within(len(samples), max_rows, "samples")
    block, errors = schema.rows_as_columns(samples)
    if errors:
        raise BatchError(422, "invalid_input", f"{len(errors)} problem(s) in samples", errors[:100])
    return Batch(block, "samples", samples=samples)


def _columns(columns: Any, schema: RowSchema, max_rows: int, entities: list[str]) -> Batch:
    if not isinstance(columns, dict):
        raise BatchError(422, "invalid_input", "columns must be an object: column name -> array of values",
                         [FieldError("columns", f"expected an object, got {kind_of(columns)}")])
    problems = [FieldError(f"columns.{c}", missing(c, columns, schema)) for c in schema.features if c not in columns]
    problems += [FieldError(f"columns.{c}", f"expected an array of values, got {kind_of(columns[c])}")
                 for c in (*schema.features, *entities) if c in columns and not isinstance(columns[c], list)]
    lists = {c: columns[c] for c in (*schema.features, *entities) if isinstance(columns.get(c), list)}
    problems += ragged(lists, "columns.{}".format)
    if problems:
        raise BatchError(422, "invalid_input", f"{len(problems)} problem(s) in columns", problems[:100])
    rows = len(next(iter(lists.values())))
    rows_within(rows, max_rows, "columns")
    block, errors = schema.check_columns(columns, lambda c, i: f"columns.{c}[{i}]")
    if errors:
        raise BatchError(422, "invalid_input", f"{len(errors)} problem(s) in columns", errors[:100])
    return Batch(block, "columns", entities={c: columns[c] for c in entities if c in columns and c not in schema.features})


def _dataframe_split(split: Any, schema: RowSchema, max_rows: int, entities: list[str]) -> Batch:
    where = "dataframe_split"
    shape = 'dataframe_split must be {"columns": [names], "data": [[values], ...]}'
    if not isinstance(split, dict):
        raise BatchError(422, "invalid_input", shape, [FieldError(where, f"expected an object, got {kind_of(split)}")])
    problems = [FieldError(f"{where}.{k}", "missing field" if k not in split else f"expected an array, got {kind_of(split[k])}")
                for k in ("columns", "data") if not isinstance(split.get(k), list)]
    if problems:
        raise BatchError(422, "invalid_input", shape, problems)
    names, data = split["columns"], split["data"]
    position = {name: i for i, name in enumerate(names) if isinstance(name, str)}
    problems = [FieldError(f"{where}.columns[{i}]", f"expected a column name, got {kind_of(n)}")
                for i, n in enumerate(names) if not isinstance(n, str)]
    problems += [FieldError(f"{where}.columns", f"'{n}' is named {count} times")
                 for n, count in collections.Counter(n for n in names if isinstance(n, str)).items() if count > 1]
    problems += [FieldError(f"{where}.columns", missing(c, position, schema)) for c in schema.features
                 if c not in position]
    if problems:
        raise BatchError(422, "invalid_input", f"{len(problems)} problem(s) in {where}.columns", problems[:100])
    rows_within(len(data), max_rows, f"{where}.data")
    if set(map(type, data)) != {list} or set(map(len, data)) != {len(names)}:
        bad = [FieldError(f"{where}.data[{i}]", f"expected an array of {len(names)} values (one per column), got "
                          + (f"{len(row)} values" if isinstance(row, list) else kind_of(row)))
               for i, row in enumerate(data) if not isinstance(row, list) or len(row) != len(names)]
        raise BatchError(422, "invalid_input", f"{len(bad)} row(s) of {where}.data do not fit its columns", bad[:100])
    values = list(zip(*data))  # one tuple per column, in C
    wanted = [c for c in (*schema.features, *entities) if c in position]
    block, errors = schema.check_columns({c: values[position[c]] for c in wanted},
                                         lambda c, i: f"{where}.data[{i}][{position[c]}]")
    if errors:
        raise BatchError(422, "invalid_input", f"{len(errors)} problem(s) in {where}.data", errors[:100])
    return Batch(block, "dataframe_split",
                 entities={c: list(values[position[c]]) for c in entities if c in position and c not in schema.features})


def rows_within(rows: int, max_rows: int, where: str) -> None:
    """Raises BatchError for no rows or more than `max_rows`."""
    if rows == 0:
        raise BatchError(422, "invalid_input", f"{where} is empty", [FieldError(where, "send at least one row")])
    if rows > max_rows:
        raise BatchError(413, "batch_too_large", f"{rows} rows in {where}; the limit is {max_rows}",
                         [FieldError(where, f"at most {max_rows} rows")])


def ragged(columns: dict[str, Sized], path: Callable[[str], str]) -> list[FieldError]:
    """A problem for each of `columns` (named by `path(name)`) whose length is not the most common one."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) < 2:
        return []
    rows = collections.Counter(lengths.values()).most_common(1)[0][0]
    return [FieldError(path(name), f"{n} values where most columns have {rows}: every column holds one value per row")
            for name, n in lengths.items() if n != rows]


def missing(column: str, given: Any, schema: RowSchema, what: str = "column") -> str:
    """The message for a feature column a body lacks, with the closest unknown name it does hold."""
    unknown = [g for g in given if isinstance(g, str) and g not in schema.features]
    close = difflib.get_close_matches(column, unknown, n=1)
    hint = f"; is '{close[0]}' meant to be this column?" if close else ""
    return f"missing {what} '{column}' (send every feature column, with null for missing values){hint}"
