"""Split a dataset into train / validation / test: random, stratified by class, or temporal."""

from __future__ import annotations

from mmp.errors import UserError
from mmp.config.spec import SplitSpec

SPLITS = ("train", "validation", "test")


def split(frame, spec: SplitSpec, target: str | None) -> dict:
    """{'train': frame, 'validation': frame, 'test': frame} (polars); seeded and reproducible."""
    import numpy as np
    import polars as pl

    n = frame.height
    n_test = max(1, round(n * spec.test))
    n_val = round(n * spec.validation)
    n_train = n - n_test - n_val
    if n_train < 1:
        raise UserError(f"data.split: {n} rows are too few for train {spec.train} / validation {spec.validation} / test {spec.test}")

    if spec.strategy == "temporal":
        column = pl.col(spec.time_column)
        if not frame.schema[spec.time_column].is_temporal():
            column = column.cast(pl.Utf8).str.to_datetime(strict=False)
        order = frame.with_row_index("__row").sort(column, nulls_last=True)["__row"].to_numpy()
        train, val, test = order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]
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
        except ValueError as exc:
            counts = frame[target].value_counts(sort=True).tail(3)
            rare = ", ".join(f"{row[0]!r} ({row[1]} rows)" for row in counts.iter_rows())
            raise UserError(f"data.split.strategy: cannot stratify on '{target}': {exc}; rarest classes: {rare}; "
                            "use strategy random or more data") from exc
    else:
        order = np.random.default_rng(spec.seed).permutation(n)
        train, val, test = order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]
    return {"train": frame[np.sort(train)], "validation": frame[np.sort(val)], "test": frame[np.sort(test)]}
