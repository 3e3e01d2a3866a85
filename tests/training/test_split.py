"""Splits: sizes, reproducibility, class balance, time order."""

from __future__ import annotations

import polars as pl
import pytest

from mmp.config.spec import SplitSpec
from mmp.training.split import split


@pytest.fixture
def frame() -> pl.DataFrame:
    n = 1000
    return pl.DataFrame({
        "x": list(range(n)),
        "label": ["rare" if i % 10 == 0 else "common" for i in range(n)],
        "when": [f"2024-{1 + (i * 7) % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
    })


def test_random_split_sizes_and_seed(frame):
    spec = SplitSpec(strategy="random", train=0.7, validation=0.1, test=0.2, seed=3)
    parts = split(frame, spec, "label")
    assert [parts[k].height for k in ("train", "validation", "test")] == [700, 100, 200]
    assert split(frame, spec, "label")["test"]["x"].to_list() == parts["test"]["x"].to_list()
    assert split(frame, spec.model_copy(update={"seed": 4}), "label")["test"]["x"].to_list() != parts["test"]["x"].to_list()
    everything = sorted(parts["train"]["x"].to_list() + parts["validation"]["x"].to_list() + parts["test"]["x"].to_list())
    assert everything == list(range(1000))


def test_stratified_split_keeps_class_shares(frame):
    parts = split(frame, SplitSpec(strategy="stratified", train=0.6, validation=0.2, test=0.2), "label")
    for part in parts.values():
        assert (part["label"] == "rare").mean() == pytest.approx(0.1, abs=0.01)


def test_temporal_split_puts_the_latest_rows_in_test(frame):
    parts = split(frame, SplitSpec(strategy="temporal", train=0.8, validation=0.1, test=0.1, time_column="when"), None)
    latest_train = parts["train"]["when"].str.to_date().max()
    assert parts["validation"]["when"].str.to_date().min() >= latest_train
    assert parts["test"]["when"].str.to_date().min() >= parts["validation"]["when"].str.to_date().max()


def test_validation_may_be_empty(frame):
    parts = split(frame, SplitSpec(strategy="random", train=0.8, validation=0.0, test=0.2), None)
    assert parts["validation"].height == 0 and parts["train"].height == 800


def test_stratifying_a_class_with_one_row_is_a_clear_error(frame):
    from mmp.errors import UserError

    tiny = frame.with_columns(label=pl.when(pl.col("x") == 0).then(pl.lit("alone")).otherwise(pl.col("label")))
    with pytest.raises(UserError, match="cannot stratify on 'label'.*'alone' \\(1 rows\\)"):
        split(tiny, SplitSpec(strategy="stratified"), "label")


@pytest.mark.parametrize("strategy", ["random", "stratified", "temporal"])
def test_calibration_rows_are_carved_from_train_leaving_validation_and_test_unchanged(frame, strategy):
    plain = SplitSpec(strategy=strategy, train=0.7, validation=0.1, test=0.2, seed=5, time_column="when")
    calibrated = plain.model_copy(update={"train": 0.55, "calibration": 0.15})
    before, after = split(frame, plain, "label"), split(frame, calibrated, "label")
    assert "calibration" not in before
    assert {k: p.height for k, p in after.items()} == {"train": 550, "calibration": 150, "validation": 100, "test": 200}
    for name in ("validation", "test"):
        assert after[name]["x"].to_list() == before[name]["x"].to_list()
    assert sorted(after["train"]["x"].to_list() + after["calibration"]["x"].to_list()) == sorted(before["train"]["x"].to_list())
    if strategy == "stratified":
        assert (after["calibration"]["label"] == "rare").mean() == pytest.approx(0.1, abs=0.01)
    if strategy == "temporal":  # in time order: train, calibration, validation
        when = {k: p["when"].str.to_date() for k, p in after.items()}
        assert when["train"].max() <= when["calibration"].min() and when["calibration"].max() <= when["validation"].min()
