"""Data and prediction drift as the Population Stability Index (PSI) against a reference profile.

The profile is taken at train time on the training split and travels with the logged model
(`drift_profile.json` beside `MLmodel`): for a numeric column the decile edges of its values, for
any other column its most frequent categories plus an "other" bucket, and for both a "missing"
bucket, each with the share of training rows it held. Later data is only counted into the same
buckets, so a report streams over any number of chunks (`DriftCounts`) or a sliding window of
recent requests (`DriftWindow`) without keeping rows.

    PSI = sum over buckets of (actual - expected) * ln(actual / expected)

with both shares floored at `EPSILON` so that an empty bucket costs a large but finite amount.
Common reading (and mmp's default thresholds): < 0.1 stable, 0.1-0.25 a moderate shift, > 0.25 a
major one.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

EPSILON = 1e-4
BINS = 10  # numeric: deciles
TOP_CATEGORIES = 20  # categorical: the most frequent ones; the rest share "other"
PROFILE_FILE = "drift_profile.json"


def column_profile(values: Any, numeric: bool) -> dict[str, Any]:
    """The reference buckets of one column's training values (a numpy array, pandas/polars Series
    or Arrow array) and the share of rows in each."""
    if numeric:
        data = _floats(values)
        present = data[~np.isnan(data)]
        edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)[1:-1])) if present.size else np.array([])
        profile = {"kind": "numeric", "edges": [float(e) for e in edges]}
    else:
        profile = {"kind": "categorical", "categories": _most_common(_strings(values), TOP_CATEGORIES)}
    counts = bucket_counts(profile, values)
    total = counts.sum()
    profile["expected"] = [float(c / total) if total else 0.0 for c in counts]
    profile["rows"] = int(total)
    return profile


def build_profile(columns: dict[str, Any], numeric: set[str] | list[str], predictions: dict[str, Any],
                  categorical_predictions: set[str] | list[str] = ()) -> dict:
    """The whole reference: every feature column in `columns` (numeric when named in `numeric`) and
    every prediction column (numeric when its values are numbers, unless named in
    `categorical_predictions`: class labels and cluster ids are categories even when they are integers)."""
    numeric, labels = set(numeric), set(categorical_predictions)
    return {
        "version": 1,
        "method": "psi",
        "features": {name: column_profile(values, name in numeric) for name, values in columns.items()},
        "predictions": {name: column_profile(values, name not in labels and _is_numeric(values))
                        for name, values in predictions.items()},
    }


def bucket_counts(profile: dict[str, Any], values: Any) -> np.ndarray:
    """How many of `values` fall in each of the profile's buckets (the last bucket: missing)."""
    if profile["kind"] == "numeric":
        data = _floats(values)
        missing = int(np.count_nonzero(np.isnan(data)))
        # bucket i holds the values with i edges below them; one comparison pass per edge (~10) is
        # ~10x cheaper than a binary search per value, and NaN compares False, so counts no edge
        at_most = [np.count_nonzero(data <= edge) for edge in profile["edges"]]
        inner = np.diff(np.array([0, *at_most, data.size - missing], dtype=np.int64))
        return np.append(inner, missing).astype(np.int64)
    import pyarrow as pa
    import pyarrow.compute as pc

    strings = _strings(values)
    categories = profile["categories"]
    index = pc.index_in(strings, value_set=pa.array(categories, type=pa.string()))
    # not a known category: index len(categories), which holds "other" and missing until split below
    found = np.asarray(pc.fill_null(index, len(categories)).to_numpy(), dtype=np.int64)
    counts = np.bincount(found, minlength=len(categories) + 1)
    missing = int(strings.null_count)
    return np.concatenate([counts[:-1], [counts[-1] - missing, missing]]).astype(np.int64)


def psi(expected: list[float], counts: np.ndarray) -> float:
    """PSI of observed bucket `counts` against the `expected` shares."""
    total = counts.sum()
    if not total:
        return float("nan")
    actual = np.maximum(counts / total, EPSILON)
    reference = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    return float(np.sum((actual - reference) * np.log(actual / reference)))


class DriftCounts:
    """Bucket counts for every profiled column, added to chunk by chunk; `report()` turns them into PSI."""

    def __init__(self, profile: dict[str, Any]):
        self.profile = profile
        self.rows = 0
        self.counts = {group: {name: np.zeros(len(p["expected"]), dtype=np.int64) for name, p in profile[group].items()}
                       for group in ("features", "predictions")}

    def add(self, columns: dict[str, Any], predictions: dict[str, Any] | None = None) -> None:
        """Count one chunk: `columns` maps feature names to values, `predictions` prediction columns to values."""
        rows = 0
        for group, given in (("features", columns), ("predictions", predictions or {})):
            for name, profile in self.profile[group].items():
                if name in given:
                    counted = bucket_counts(profile, given[name])
                    self.counts[group][name] += counted
                    rows = max(rows, int(counted.sum()))
        self.rows += rows

    def merge(self, other: "DriftCounts") -> None:
        """Add another chunk's counts (e.g. one counted in a predict thread) to these."""
        for group, columns in other.counts.items():
            for name, counts in columns.items():
                self.counts[group][name] += counts
        self.rows += other.rows

    def report(self, thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
        """PSI, missing rate and status per feature and per prediction column, and the worst status.

        `thresholds`: `{data_drift: {warn, alert}, prediction_drift: {warn, alert}, features: {name: {warn, alert}},
        min_rows}`; below `min_rows` rows a column's status is "insufficient_data", and a column with no
        rows at all is "no_data" and left out of the overall status."""
        thresholds = thresholds or {}
        min_rows = int(thresholds.get("min_rows", 0) or 0)
        report: dict[str, Any] = {"rows": self.rows, "features": {}, "predictions": {}}
        per_feature = thresholds.get("features") or {}
        worst = "ok"
        for group, key in (("features", "data_drift"), ("predictions", "prediction_drift")):
            default = {"warn": 0.1, "alert": 0.25, **(thresholds.get(key) or {})}
            for name, profile in self.profile[group].items():
                counts = self.counts[group][name]
                total = int(counts.sum())
                value = psi(profile["expected"], counts)
                limits = {**default, **(per_feature.get(name) or {})} if group == "features" else default
                status = _status(value, limits, total, min_rows)
                if status != NO_DATA:  # a column nobody showed us says nothing about the data
                    worst = _worse(worst, status)
                report[group][name] = {
                    "psi": None if math.isnan(value) else round(value, 6), "status": status, "rows": total,
                    "missing_rate": round(float(counts[-1] / total), 6) if total else None,
                    "expected_missing_rate": round(profile["expected"][-1], 6),
                    "warn": limits["warn"], "alert": limits["alert"],
                }
        report["status"] = worst
        return report


class DriftWindow:
    """The last `rows` rows' bucket counts (a serving worker's sliding window), in blocks as they came."""

    def __init__(self, profile: dict[str, Any], rows: int):
        self.profile, self.limit = profile, max(1, int(rows))
        self.blocks: deque = deque()
        self.total = DriftCounts(profile)

    def add(self, columns: dict[str, Any], predictions: dict[str, Any] | None = None) -> None:
        """Count one block of rows, then forget the oldest blocks the window no longer needs."""
        block = DriftCounts(self.profile)
        block.add(columns, predictions)
        self.blocks.append(block)
        self.total.merge(block)
        while len(self.blocks) > 1 and self.total.rows - self.blocks[0].rows >= self.limit:
            oldest = self.blocks.popleft()
            for group, columns_ in oldest.counts.items():
                for name, counts in columns_.items():
                    self.total.counts[group][name] -= counts
            self.total.rows -= oldest.rows

    def report(self, thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
        """`DriftCounts.report` over the rows in the window."""
        return self.total.report(thresholds)


STATUSES = ("ok", "insufficient_data", "warn", "alert")
NO_DATA = "no_data"  # the column was not in the data at all (e.g. predictions `mmp monitor` does not see)


def _status(value: float, limits: dict[str, Any], rows: int, min_rows: int) -> str:
    if rows == 0:
        return NO_DATA
    if rows < max(min_rows, 1) or math.isnan(value):
        return "insufficient_data"
    if value >= float(limits["alert"]):
        return "alert"
    return "warn" if value >= float(limits["warn"]) else "ok"


def _worse(a: str, b: str) -> str:
    return a if STATUSES.index(a) >= STATUSES.index(b) else b


def _floats(values: Any) -> np.ndarray:
    """Values as a float64 array, missing ones as NaN (numpy, pandas, polars, Arrow or a list)."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        if hasattr(values, "null_count") and not hasattr(values, "dtype"):  # Arrow: nulls become NaN
            values = values.to_numpy(zero_copy_only=False) if hasattr(values, "buffers") else values.to_numpy()
        elif hasattr(values, "index"):  # pandas, nullable dtypes included
            import pandas as pd

            values = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        else:
            values = values.to_numpy()  # polars
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return array.astype(np.float64, copy=False)
    out = np.full(array.shape, np.nan)
    for i, v in enumerate(array):
        try:
            out[i] = float(v) if v is not None else np.nan
        except (TypeError, ValueError):
            pass
    return out


def _strings(values: Any) -> Any:
    """Values as an Arrow string array (chunked or not), missing ones (None, NaN) as nulls.

    Every source goes through Arrow's cast, so training and later data spell a value alike
    (1 -> "1", True -> "true") whatever container they came in."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        array = values
    elif hasattr(values, "to_arrow"):  # polars
        array = values.to_arrow()
    else:
        try:
            array = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one object column
            items = values.tolist() if hasattr(values, "tolist") else list(values)
            array = pa.array([None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                              for v in items], type=pa.string())
    if isinstance(array, pa.ChunkedArray) and array.num_chunks == 0:
        return pa.array([], type=pa.string())
    if array.type != pa.string():
        array = pc.cast(array, pa.string())
    return array


def _most_common(strings: Any, n: int) -> list[str]:
    """The `n` most frequent values of an Arrow string array (ties: alphabetical), nulls left out."""
    import pyarrow.compute as pc

    counted = pc.value_counts(pc.drop_null(strings))
    pairs = zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist())
    return [value for value, _ in sorted(pairs, key=lambda kv: (-kv[1], kv[0]))[:n]]


def _is_numeric(values: Any) -> bool:
    dtype = getattr(values, "dtype", None)
    if dtype is not None and hasattr(dtype, "kind"):
        return dtype.kind in "fiu"
    if dtype is not None and hasattr(dtype, "is_numeric"):  # polars
        return dtype.is_numeric()
    sample = [v for v in list(values)[:100] if v is not None]
    return bool(sample) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in sample)
