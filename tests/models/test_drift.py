"""The PSI core (mmp.models.drift): a sample against itself is stable, a known shift alerts on
exactly the shifted columns, counting streams (chunks, windows) and reads any container alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mmp.models.drift import NO_DATA, DriftCounts, DriftWindow, build_profile

ROWS = 20_000
LIMITS = {"data_drift": {"warn": 0.1, "alert": 0.25}, "prediction_drift": {"warn": 0.1, "alert": 0.25}, "min_rows": 100}


def sample(seed: int, rows: int = ROWS) -> dict:
    """Two numeric features, two categorical ones (one with missing values) and a label-like prediction."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], size=rows, p=[0.5, 0.3, 0.2]).astype(object)
    plan[rng.random(rows) < 0.05] = None
    return {
        "income": rng.normal(50_000, 12_000, rows),
        "age": rng.integers(18, 90, rows).astype(float),
        "plan": pd.Series(plan, dtype=object),
        "region": pd.Series(rng.choice(["north", "south", "east", "west"], size=rows), dtype=object),
        "prediction": rng.integers(0, 2, rows),
    }


@pytest.fixture(scope="module")
def reference() -> dict:
    data = sample(0)
    features = {k: v for k, v in data.items() if k != "prediction"}
    return build_profile(features, ["income", "age"], {"prediction": data["prediction"]}, ["prediction"])


def report_of(profile: dict, data: dict, **limits) -> dict:
    counts = DriftCounts(profile)
    counts.add({k: v for k, v in data.items() if k != "prediction"},
               {"prediction": data["prediction"]} if "prediction" in data else None)
    return counts.report({**LIMITS, **limits})


def statuses(report: dict) -> dict:
    return {name: entry["status"] for group in ("features", "predictions") for name, entry in report[group].items()}


def test_psi_of_a_sample_against_itself_is_near_zero(reference):
    report = report_of(reference, sample(0))
    assert all(entry["psi"] < 0.01 for group in ("features", "predictions") for entry in report[group].values())
    assert report["status"] == "ok"


def test_a_fresh_sample_of_the_same_population_is_stable(reference):
    report = report_of(reference, sample(1))
    assert set(statuses(report).values()) == {"ok"}
    assert max(e["psi"] for e in report["features"].values()) < 0.02


def test_a_known_shift_alerts_on_exactly_the_shifted_features(reference):
    shifted = sample(2)
    shifted["income"] = shifted["income"] + 12_000  # one standard deviation
    region = shifted["region"].copy()
    region[np.random.default_rng(3).random(ROWS) < 0.4] = "overseas"  # a category never seen in training
    shifted["region"] = region
    report = report_of(reference, shifted)
    assert statuses(report) == {"income": "alert", "age": "ok", "plan": "ok", "region": "alert", "prediction": "ok"}
    assert report["status"] == "alert"
    assert report["features"]["income"]["psi"] > 0.25 and report["features"]["region"]["psi"] > 0.25


def test_more_missing_values_than_in_training_show_as_drift_and_a_missing_rate(reference):
    shifted = sample(4)
    income = shifted["income"].copy()
    income[: ROWS // 2] = np.nan
    shifted["income"] = income
    report = report_of(reference, shifted)
    assert report["features"]["income"]["status"] == "alert"
    assert report["features"]["income"]["missing_rate"] == pytest.approx(0.5)
    assert report["features"]["income"]["expected_missing_rate"] == 0.0
    assert report["features"]["plan"]["expected_missing_rate"] == pytest.approx(0.05, abs=0.01)


def test_counting_in_chunks_equals_counting_at_once(reference):
    data = sample(5)
    whole = DriftCounts(reference)
    whole.add({k: v for k, v in data.items() if k != "prediction"}, {"prediction": data["prediction"]})
    merged = DriftCounts(reference)
    for start in range(0, ROWS, 3_000):  # Arrow chunks, as batch inference reads them
        part = DriftCounts(reference)
        rows = slice(start, start + 3_000)
        part.add({k: pa.chunked_array([pa.array(np.asarray(v)[rows], from_pandas=True)])
                  for k, v in data.items() if k != "prediction"},
                 {"prediction": pa.array(data["prediction"][rows])})
        merged.merge(part)
    assert merged.rows == whole.rows == ROWS
    for group in ("features", "predictions"):
        for name in whole.counts[group]:
            assert merged.counts[group][name].tolist() == whole.counts[group][name].tolist(), name
    assert merged.report(LIMITS) == whole.report(LIMITS)


def test_the_window_reports_only_its_most_recent_rows(reference):
    window = DriftWindow(reference, rows=2_000)
    shifted = sample(6, 2_000)
    shifted["income"] = shifted["income"] + 24_000
    for seed in range(7, 12):  # 5 x 1,000 stable rows ...
        block = sample(seed, 1_000)
        window.add({k: v for k, v in block.items() if k != "prediction"})
    assert window.report(LIMITS)["features"]["income"]["status"] == "ok"
    window.add({k: v for k, v in shifted.items() if k != "prediction"})  # ... then 2,000 shifted ones
    report = window.report(LIMITS)
    assert report["rows"] == 2_000  # the stable rows have left the window
    assert report["features"]["income"]["status"] == "alert"
    assert report["features"]["age"]["status"] == "ok"


def test_a_column_the_data_does_not_have_is_no_data_and_leaves_the_status_alone(reference):
    data = sample(13)
    del data["prediction"]  # `mmp monitor` on data without predictions
    report = report_of(reference, data)
    assert report["predictions"]["prediction"]["status"] == NO_DATA
    assert report["predictions"]["prediction"]["psi"] is None
    assert report["status"] == "ok"


def test_fewer_rows_than_min_rows_are_insufficient_data_never_an_alert(reference):
    few = sample(14, 50)
    few["income"] = few["income"] + 50_000
    report = report_of(reference, few)
    assert set(statuses(report).values()) == {"insufficient_data"}
    assert report["status"] == "insufficient_data"


def test_per_feature_limits_replace_the_defaults_for_that_feature(reference):
    shifted = sample(15)
    shifted["income"] = shifted["income"] + 12_000
    report = report_of(reference, shifted, features={"income": {"warn": 5.0, "alert": 10.0}})
    assert report["features"]["income"]["status"] == "ok"
    assert report["features"]["income"]["alert"] == 10.0


def test_labels_count_alike_from_numpy_pandas_arrow_and_lists():
    profile = build_profile({}, [], {"prediction": np.array([0, 1, 1, 2])}, ["prediction"])
    assert profile["predictions"]["prediction"]["categories"] == ["1", "0", "2"]
    for values in (np.array([0, 1, 1, 2]), pd.Series([0, 1, 1, 2]), pa.array([0, 1, 1, 2]),
                   pa.chunked_array([[0, 1], [1, 2]]), [0, 1, 1, 2]):
        counts = DriftCounts(profile)
        counts.add({}, {"prediction": values})
        assert counts.counts["predictions"]["prediction"].tolist() == [2, 1, 1, 0, 0], type(values)


def test_categories_beyond_the_top_twenty_share_the_other_bucket():
    values = pd.Series([f"c{i:02d}" for i in range(30)] * 10 + ["c00"] * 50, dtype=object)
    profile = build_profile({"code": values}, [], {})["features"]["code"]
    assert len(profile["categories"]) == 20 and profile["categories"][0] == "c00"
    assert profile["expected"][20] == pytest.approx(100 / 350)  # "other": ten codes x ten rows
