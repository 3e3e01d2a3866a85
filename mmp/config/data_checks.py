"""With the data at hand: the columns a recipe names exist, and the data can be learned from."""

from __future__ import annotations

from typing import Callable

from mmp.config.catalogue import ENCODERS, step_columns
from mmp.config.monitoring_checks import PROFILED_TASKS, feature_problems
from mmp.config.spec import RunSpec
from mmp.errors import Problem

Origin = Callable[[str], "str | None"]


def _no_origin(path: str) -> None:
    return None


def column_problems(spec: RunSpec, frame, origin: Origin = _no_origin) -> list[Problem]:
    """With the data at hand: every named column exists, the time column parses, the target has
    two classes, and no text column reaches the model without an encoder."""
    from mmp.io.readers import is_numeric

    columns = list(frame.columns)
    if frame.height == 0:
        return [Problem("data.source", f"the data has 0 rows (columns: {', '.join(columns) or 'none'})",
                        "give a file with at least one data row below the header", origin("data.source"))]
    available = f"available: {', '.join(columns)}"
    problems = []

    def need(path: str, names: list[str]) -> None:
        missing = [c for c in names if c not in columns]
        if missing:
            problems.append(Problem(path, f"column{'s' if len(missing) > 1 else ''} not in the data: {', '.join(missing)}",
                                    available, origin(path)))

    data = spec.data
    need("data.entity_columns", data.entity_columns)
    if data.target:
        need("data.target", [data.target])
    if data.features is not None:
        need("data.features", data.features)
    if data.split.time_column:
        need("data.split.time_column", [data.split.time_column])
    if data.time_column:
        need("data.time_column", [data.time_column])
    if data.treatment:
        need("data.treatment", [data.treatment])
    for i, step in enumerate(spec.preprocess):
        if step.columns is not None:
            need(f"preprocess.{i}.columns", step.columns)
    if problems:
        return problems

    features = feature_columns(spec, columns)
    if data.features is None and spec.task in PROFILED_TASKS:  # a listed data.features was checked at compile
        problems += feature_problems(spec.monitoring.features, features, origin)
    numeric = {c for c in features if is_numeric(frame.schema[c])}
    covered = set()
    for step in spec.preprocess:
        if step.type in ENCODERS:
            covered |= set(step_columns(step.type, step.options, step.columns, features, numeric))
    text = [c for c in features if c not in numeric and c not in covered]
    if text:
        problems.append(Problem("preprocess", f"text column{'s' if len(text) > 1 else ''} with no encoding step: {', '.join(text)}",
                                f"add a step of type {' | '.join(ENCODERS)} for them", origin("preprocess")))
    time_column = data.split.time_column
    if time_column and not frame.schema[time_column].is_temporal():
        import polars as pl

        try:
            frame.select(pl.col(time_column).cast(pl.Utf8).str.to_datetime(strict=True))
        except Exception as exc:
            problems.append(Problem("data.split.time_column", f"column '{time_column}' does not parse as dates/times ({str(exc).splitlines()[0]})",
                                    "use ISO 8601 values like 2024-01-31 or 2024-01-31T12:00:00", origin("data.split.time_column")))
    if spec.task == "classification" and data.target and frame[data.target].drop_nulls().n_unique() < 2:
        problems.append(Problem("data.target", f"column '{data.target}' has fewer than two classes",
                                "classification needs at least two", origin("data.target")))
    return problems


def feature_columns(spec: RunSpec, columns: list[str]) -> list[str]:
    """The model's input columns: `data.features`, else every column but entities, target, time
    columns and treatment."""
    if spec.data.features is not None:
        return list(spec.data.features)
    data = spec.data
    excluded = set(data.entity_columns) | {data.target, data.split.time_column, data.time_column, data.treatment}
    return [c for c in columns if c not in excluded]
