"""What a prediction request must hold: every feature column, numbers for numeric columns (finite,
or null for missing) and text for text columns (or null), whether the request sends one JSON object
per row or one array per column. A valid batch is recognised column by column with numpy, with no
Python step per value; only a batch with a problem is walked value by value, to name each field."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from mmp.serving.columns import Columns

# Tree models (scikit-learn, xgboost, lightgbm) compute in float32: a larger number cannot be predicted.
FLOAT32_MAX = 3.4028234663852886e38


@dataclass
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class RowSchema:
    """Checks rows against the model's feature columns; collects every problem with its field path."""

    def __init__(self, features: list[str], numeric: list[str]):
        self.features = list(features)
        self.numeric = set(numeric)

    def check(self, row: Any, where: str = "") -> list[FieldError]:
        prefix = f"{where}." if where else ""
        if not isinstance(row, dict):
            return [FieldError(where or "body", f"expected a JSON object of feature values, got {kind_of(row)}")]
        errors = []
        for column in self.features:
            if column not in row:
                errors.append(FieldError(prefix + column, "missing field (use null for a missing value)"))
                continue
            value = row[column]
            kind = type(value)
            if value is None or (kind is str if column not in self.numeric else
                                 (kind is float or kind is int) and -FLOAT32_MAX <= value <= FLOAT32_MAX):
                continue  # the common case, decided without a call (NaN fails the comparison)
            problem = self.problem(column, value)
            if problem:
                errors.append(FieldError(prefix + column, problem))
        return errors

    def problem(self, column: str, value: Any) -> str | None:
        """What is wrong with `value` as a value of feature `column`; None when nothing is."""
        if value is None:
            return None
        if column in self.numeric:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"expected a number, got {kind_of(value)}"
            if isinstance(value, float) and not math.isfinite(value):
                return f"expected a finite number, got {value}"
            if abs(value) > FLOAT32_MAX:  # exact for ints of any size: Python compares them without float()
                return f"number out of range: {_number(value)} (allowed: within ±3.4e38)"
        elif not isinstance(value, str):
            return f"expected text, got {kind_of(value)}"
        return None

    def check_rows(self, rows: list, where: str = "samples") -> list[FieldError]:
        """Every problem in a list of rows, as `check` finds them row by row (`samples[3].age`)."""
        return self.rows_as_columns(rows, where)[1]

    def rows_as_columns(self, rows: list, where: str = "samples") -> tuple[Columns | None, list[FieldError]]:
        """(the rows' feature columns, []) or (None, every problem as `check` finds them row by row)."""
        import operator

        block = None
        if set(map(type, rows)) == {dict}:
            try:
                block = self.checked({c: list(map(operator.itemgetter(c), rows)) for c in self.features})
            except KeyError:  # a missing field
                pass
        if block is not None:
            return block, []
        errors = [e for i, row in enumerate(rows) for e in self.check(row, f"{where}[{i}]")]
        return (None, errors) if errors else (self._converted(rows), [])

    def row_as_columns(self, row: dict) -> Columns:
        """One checked row (`check` found nothing) as a block of one row."""
        import numpy as np

        numeric = [c for c in self.features if c in self.numeric]
        numbers = iter(np.array([[row[c]] for c in numeric], dtype=np.float64).reshape(len(numeric), 1))
        return Columns({c: next(numbers) if c in self.numeric else [row[c]] for c in self.features}, 1)

    def check_columns(self, columns: dict[str, list], field: Callable[[str, int], str]) -> tuple[Columns | None, list[FieldError]]:
        """(the feature columns checked, []) or (None, every problem): `columns` holds a list of values
        per feature, all of one length; `field(column, i)` names value i of a column in an error."""
        block = self.checked(columns)
        if block is not None:
            return block, []
        errors = [FieldError(field(column, i), problem) for column in self.features
                  for i, problem in enumerate(map(self.problem, [column] * len(columns[column]), columns[column]))
                  if problem]
        return (None, errors) if errors else (self._as_block(columns), [])

    def checked(self, columns: dict[str, list]) -> Columns | None:
        """The block of `columns` (a list per feature) when every value is valid, found with numpy and
        C-level set and map calls; None when some value is not (the caller then names it)."""
        import itertools
        import operator

        import numpy as np

        texts = [columns[c] for c in self.features if c not in self.numeric]
        if not set(map(type, itertools.chain.from_iterable(texts))) <= {str, type(None)}:
            return None
        numbers = [columns[c] for c in self.features if c in self.numeric]
        if not numbers:
            return self._as_block(columns)
        if not set(map(type, itertools.chain.from_iterable(numbers))) <= {int, float, type(None)}:
            return None  # bool is its own type: refused as check() does
        try:
            matrix = np.array(numbers, dtype=np.float64)  # None -> NaN
        except OverflowError:  # an integer beyond float64
            return None
        nan = np.isnan(matrix)
        if nan.any():  # NaN must come from null alone, not from a NaN sent as a value
            if int(nan.sum()) != sum(sum(map(operator.is_, column, itertools.repeat(None))) for column in numbers):
                return None
            if np.abs(matrix[~nan]).max(initial=0.0) > FLOAT32_MAX:
                return None
        elif np.abs(matrix).max(initial=0.0) > FLOAT32_MAX:  # an infinity, or a number beyond float32
            return None
        numeric = iter(matrix)
        return Columns({c: next(numeric) if c in self.numeric else list(columns[c]) for c in self.features},
                       matrix.shape[1])

    def _as_block(self, columns: dict[str, list]) -> Columns:
        import numpy as np

        rows = len(columns[self.features[0]]) if self.features else 0
        return Columns({c: np.array(columns[c], dtype=np.float64) if c in self.numeric else list(columns[c])
                        for c in self.features}, rows)

    def _converted(self, rows: list[dict]) -> Columns:
        return self._as_block({c: [row[c] for row in rows] for c in self.features})

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of one row, for the OpenAPI document."""
        properties = {c: {"type": self.json_type(c)} for c in self.features}
        return {"type": "object", "properties": properties, "required": list(self.features)}

    def json_type(self, column: str) -> list[str]:
        """The JSON types a value of `column` may have."""
        return ["number", "null"] if column in self.numeric else ["string", "null"]


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {_number(value)}"
    if isinstance(value, str):
        return f"text {value[:40]!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _number(value: int | float) -> str:
    """A number as a message shows it: a long integer by its first digits and its length."""
    if isinstance(value, int) and abs(value) > 10**20:
        digits = len(str(abs(value)))  # bounded: the body parser refuses integers over 1000 digits
        return f"{'-' if value < 0 else ''}{str(abs(value))[:3]}... (an integer of {digits} digits)"
    return str(value)
