"""A batch of rows held as columns on its way through the service: one request's checked feature
values (numbers as float64 arrays, text as lists), the requests of one model call joined into one
frame, and the model's output columns cut back into each request's share.

Every body format (`samples`, `columns`, `dataframe_split`, the V2 protocol's `inputs`) is read into
`Columns`, so the frame is built once per model call from arrays, never row by row from dicts.
"""

from __future__ import annotations

from typing import Any


class Columns:
    """Equal-length columns by name (numpy arrays or lists); `len()` is the number of rows."""

    __slots__ = ("data", "rows")

    def __init__(self, data: dict[str, Any], rows: int):
        self.data = data
        self.rows = rows

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, part: slice) -> "Columns":
        """The rows `part` of every column: the batcher hands each request its share of a model call."""
        return Columns({name: values[part] for name, values in self.data.items()}, len(range(self.rows)[part]))

    @classmethod
    def join(cls, parts: list["Columns"]) -> "Columns":
        """The rows of `parts`, in order, as one block (the parts hold the same columns: one schema's)."""
        import numpy as np

        if len(parts) == 1:
            return parts[0]
        data = {}
        for name, first in parts[0].data.items():
            values = [part.data[name] for part in parts]
            data[name] = np.concatenate(values) if isinstance(first, np.ndarray) else [v for vs in values for v in vs]
        return cls(data, sum(part.rows for part in parts))

    def frame(self) -> Any:
        """A pandas DataFrame of the columns, in their order."""
        import numpy as np
        import pandas as pd

        index = pd.RangeIndex(self.rows)
        if self.data and all(getattr(v, "dtype", None) == np.float64 for v in self.data.values()):
            # numbers only: one block at once (a dict of columns costs pandas a check per column)
            return pd.DataFrame(np.column_stack(list(self.data.values())), columns=list(self.data), index=index)
        return pd.DataFrame(self.data, index=index)

    def as_lists(self) -> dict[str, list]:
        """Each column as a JSON-ready list (numpy scalars become Python numbers, NaN stays NaN)."""
        return {name: values.tolist() if hasattr(values, "tolist") else list(values) for name, values in self.data.items()}


def join(parts: list[Any]) -> Any:
    """The batcher's inputs of one model call as one: `Columns` joined, lists of requests concatenated."""
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], Columns):
        return Columns.join(parts)
    return [item for part in parts for item in part]
