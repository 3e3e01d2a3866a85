"""Split a dataset into train / calibration / validation / test: random, stratified by class, or temporal.

The calibration rows (only when `data.split.calibration` > 0) are carved from what would otherwise
be training rows, so validation and test are the same rows with or without calibration.
"""

from __future__ import annotations

from mmp.errors import UserError
from mmp.config.spec import SplitSpec

SPLITS = ("train", "calibration", "validation", "test")


def split(frame, spec: SplitSpec, target: str | None) -> dict:
    """{'train', 'validation', 'test'} (+ 'calibration' when asked) -> polars frame; seeded and reproducible."""
    import numpy as np
    import polars as pl

    n = frame.height
    n_test = max(1, round(n * spec.test))
    n_val = round(n * spec.validation)
    n_cal = max(1, round(n * spec.calibration)) if spec.calibration > 0 else 0
    n_train = n - n_test - n_val - n_cal
    if n_train < 1:
        cal = f" / calibration {spec.calibration}" if n_cal else ""
        raise UserError(f"data.split: {n} rows are too few for train {spec.train}{cal} / validation {spec.validation} / test {spec.test}")

    if spec.strategy == "temporal":  # in time order: train, calibration, validation, test
        column = pl.col(spec.time_column)
        if not frame.schema[spec.time_column].is_temporal():
            column = column.cast(pl.Utf8).str.to_datetime(strict=False)
        order = frame.with_row_index("__row").sort(column, nulls_last=True)["__row"].to_numpy()
        train, cal, val, test = np.split(order, np.cumsum([n_train, n_cal, n_val]))
    elif spec.strategy == "stratified":
        from sklearn.model_selection import train_test_split

        labels = frame[target].cast(pl.Utf8).fill_null("<missing>").to_numpy()
        index = np.arange(n)
        try:
            rest, test = train_test_split(index, test_size=n_test, stratify=labels, random_state=spec.seed)
            if n_val:
                train, val = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=spec.seed)
            else:
                train, val = rest, rest[:0]
            if n_cal:
                train, cal = train_test_split(train, test_size=n_cal, stratify=labels[train], random_state=spec.seed)
            else:
                cal = train[:0]
        except ValueError as exc:
            counts = frame[target].value_counts(sort=True).tail(3)
            rare = ", ".join(f"{row[0]!r} ({row[1]} rows)" for row in counts.iter_rows())
            raise UserError(f"data.split.strategy: cannot stratify on '{target}': {exc}; rarest classes: {rare}; "
                            "use strategy random or more data") from exc
    else:
        order = np.random.default_rng(spec.seed).permutation(n)
        train, cal, val, test = np.split(order, np.cumsum([n_train, n_cal, n_val]))
    parts = {"train": train, "calibration": cal, "validation": val, "test": test}
    return {name: frame[np.sort(rows)] for name, rows in parts.items() if name != "calibration" or n_cal}
