"""Timeseries recipes: every mistake is refused at compile time (exit 2), naming the key."""

from __future__ import annotations

import pytest

from mmp.config.forecast_checks import FORECASTERS, forecaster_kind, season_for

AIR = "recipe=forecast/air_passengers"
MACRO = "recipe=forecast/us_macro"

INVALID = {
    "no forecast section": ([AIR, "~forecast"], "forecast: a timeseries recipe needs a 'forecast' section"),
    "horizon of zero": ([AIR, "forecast.horizon=0"], "forecast.horizon"),
    "frequency that pandas does not know": ([AIR, "forecast.frequency=fortnightly"], "forecast.frequency: 'fortnightly' is not a pandas frequency"),
    "random split": ([AIR, "+data.split.strategy=random"], "data.split.strategy: a random split"),
    "no time column": ([AIR, "~data.time_column"], "data.time_column: a timeseries recipe needs the time column"),
    "no series id column": ([AIR, "data.entity_columns=[]"], "data.entity_columns: no series id column"),
    "a classifier as model": ([AIR, "model.class_path=sklearn.linear_model.LogisticRegression", "~model.params.model"],
                              "model.class_path: LogisticRegression is neither a statsforecast model nor a regressor"),
    "lags for a statistical model": ([AIR, "+forecast.lags=[1,12]"], "forecast.lags: AutoETS is a statistical model and would ignore"),
    "unknown date feature": ([MACRO, "forecast.date_features=[quartr]"], "did you mean 'quarter'?"),
    "negative lag": ([MACRO, "forecast.lags=[1,-4]"], "forecast.lags.1: lag -4 is not positive"),
    "level of 100": ([AIR, "forecast.level=[100]"], "forecast.level.0: level 100 is outside (0, 100)"),
    "preprocessing steps": ([AIR, "+preprocess=[{type: standard_scale}]"], "preprocess: preprocessing steps are not supported"),
    "time column also a feature": ([MACRO, "+data.features=[quarter]"], "data.features: the time column 'quarter' is also listed"),
    "unknown statsforecast parameter": ([AIR, "+model.params.seasn_length=12"], "model.params.seasn_length"),
    "tuning": ([AIR, "+tune.n_trials=3"], "tune"),
    "split ratios": ([AIR, "data.split.test=0.2"], "data.split.test: split ratios (test) do not apply to timeseries"),
    "forecast on a regression recipe": (["recipe=diabetes", "+forecast.horizon=3"], "'forecast' belongs to timeseries recipes"),
}


@pytest.mark.parametrize("words,expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_timeseries_recipe_exits_2_naming_the_key(project, mmp, words, expected):
    result = mmp("compile", *words)
    assert result.code == 2, result.out + result.err
    assert expected in result.err
    assert "Traceback" not in result.err


def test_example_recipes_compile_into_a_plan_that_says_what_runs(project, mmp):
    air = mmp("compile", AIR)
    assert air.code == 0, air.err
    for words in ("temporal per series", "statsforecast AutoETS", "SeasonalNaive", "plots/forecast_test.png"):
        assert words in air.out
    macro = mmp("compile", MACRO)
    assert macro.code == 0, macro.err
    assert "mlforecast over lightgbm.LGBMRegressor with lags [1, 2, 3, 4]" in macro.out


def test_data_problems_exit_2_before_any_run(project, mmp):
    import polars as pl

    frame = pl.read_csv("data/air_passengers.csv")
    frame.filter(pl.col("month") != "1955-06-01").write_csv("gap.csv")
    pl.concat([frame, frame.tail(1)]).write_csv("dupe.csv")
    frame.with_columns(pl.when(pl.col("month") == "1950-01-01").then(pl.lit("Jan 1950")).otherwise(pl.col("month"))
                       .alias("month")).write_csv("bad_time.csv")
    expected = {"gap.csv": "series 'airline' has a gap in its time index after 1955-05-01",
                "dupe.csv": "series 'airline' has 2 rows at 1960-12-01", "bad_time.csv": "'Jan 1950' is not a date/time"}
    for name, words in expected.items():  # validate -d finds them too, without training
        result = mmp("validate", AIR, "-d", name)
        assert result.code == 2 and "data.time_column" in result.err and words in result.err, result.err
    short = mmp("train", AIR, "forecast.windows=12")
    assert short.code == 2 and "series 'airline' has 144 time steps; at least" in short.err
    for name, words in expected.items():
        result = mmp("train", AIR, "-d", name)
        assert result.code == 2, result.err
        assert "data.time_column" in result.err and words in result.err and "Traceback" not in result.err
    assert not (project / "mlruns").exists() or not list((project / "mlruns").glob("**/meta.yaml"))


def test_registry_and_kinds():
    from lightgbm import LGBMRegressor
    from sklearn.linear_model import LogisticRegression
    from statsforecast.models import AutoETS

    assert "statsforecast.models.AutoETS" in FORECASTERS
    assert forecaster_kind(AutoETS) == "statistical"
    assert forecaster_kind(LGBMRegressor) == "regressor"
    assert forecaster_kind(LogisticRegression) is None
    assert (season_for("MS"), season_for("QS-JAN"), season_for("D"), season_for("h")) == (12, 4, 7, 24)
