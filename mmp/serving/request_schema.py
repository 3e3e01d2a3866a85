"""What a prediction request must hold: one JSON object per row with every feature column, numbers
for numeric columns (finite, or null for missing) and text for text columns (or null)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
            if value is None:
                continue
            if column in self.numeric:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    errors.append(FieldError(prefix + column, f"expected a number, got {kind_of(value)}"))
                elif isinstance(value, float) and not math.isfinite(value):
                    errors.append(FieldError(prefix + column, f"expected a finite number, got {value}"))
                elif abs(value) > FLOAT32_MAX:  # exact for ints of any size: Python compares them without float()
                    errors.append(FieldError(prefix + column,
                                             f"number out of range: {_number(value)} (allowed: within ±3.4e38)"))
            elif not isinstance(value, str):
                errors.append(FieldError(prefix + column, f"expected text, got {kind_of(value)}"))
        return errors

    def check_rows(self, rows: list, where: str = "samples") -> list[FieldError]:
        """Every problem in a list of rows, as `check` finds them row by row (`samples[3].age`); a
        batch without any is recognised column by column, with no Python step per value."""
        if self._all_valid(rows):
            return []
        return [e for i, row in enumerate(rows) for e in self.check(row, f"{where}[{i}]")]

    def _all_valid(self, rows: list) -> bool:
        import itertools
        import operator

        import numpy as np

        if set(map(type, rows)) != {dict}:
            return False
        try:
            columns = {c: list(map(operator.itemgetter(c), rows)) for c in self.features}
        except KeyError:  # a missing field
            return False
        numbers = [columns[c] for c in self.features if c in self.numeric]
        texts = [columns[c] for c in self.features if c not in self.numeric]
        if not set(map(type, itertools.chain.from_iterable(texts))) <= {str, type(None)}:
            return False
        kinds = set(map(type, itertools.chain.from_iterable(numbers)))
        if not kinds <= {int, float, type(None)}:  # bool is its own type: refused as check() does
            return False
        try:
            matrix = np.array(numbers, dtype=np.float64)  # None -> NaN
        except OverflowError:  # an integer beyond float64
            return False
        nan = np.isnan(matrix)
        sent_none = sum(column.count(None) for column in numbers) if type(None) in kinds else 0
        # a NaN or an infinity sent as a value, or a number beyond float32
        return int(nan.sum()) == sent_none and not np.abs(matrix[~nan]).max(initial=0.0) > FLOAT32_MAX

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of one row, for the OpenAPI document."""
        properties = {
            c: ({"type": ["number", "null"]} if c in self.numeric else {"type": ["string", "null"]}) for c in self.features
        }
        return {"type": "object", "properties": properties, "required": list(self.features)}


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
