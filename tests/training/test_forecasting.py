"""`mmp train` on the timeseries examples: backtest metrics beside the seasonal-naive baseline,
artifacts, a refit model that batch-inference uses to forecast past the data's end."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from tests.conftest import REPO
from tests.conftest import mmp_in_process as run_mmp

pytestmark = pytest.mark.slow

RECIPES = {"air": "forecast/air_passengers", "macro": "forecast/us_macro"}


@pytest.fixture(scope="module")
def forecasts(tmp_path_factory):
    """A project folder with both examples trained once: (folder, {name: run id})."""
    root = tmp_path_factory.mktemp("forecasting")
    for name in ("conf", "recipes", "data"):
        shutil.copytree(REPO / name, root / name)
    runs = {}
    for name, recipe in RECIPES.items():
        result = run_mmp("train", f"recipe={recipe}", "-q", cwd=root)
        assert result.code == 0, f"{recipe}: {result.err}"
        runs[name] = result.out.strip().splitlines()[-1]
    return root, runs


def _client(root):
    from mlflow import MlflowClient

    from mmp.io.tracking import mlflow_uri

    return MlflowClient(tracking_uri=mlflow_uri(str(root / "mlruns")))


@pytest.mark.parametrize("name", RECIPES)
def test_metrics_show_the_model_beats_the_seasonal_naive_baseline(forecasts, name):
    root, runs = forecasts
    run = _client(root).get_run(runs[name])
    metrics = run.data.metrics
    for split in ("validation", "test"):
        for metric in ("mase", "mae", "rmse", "smape"):
            assert f"{split}_{metric}" in metrics and f"{split}_{metric}_seasonal_naive" in metrics
    assert metrics["validation_mase"] < 1 < metrics["validation_mase_seasonal_naive"]
    assert metrics["test_mase"] < metrics["test_mase_seasonal_naive"]
    assert run.data.tags["mmp.task"] == "timeseries"


def test_per_series_table_and_plot_are_logged(forecasts):
    root, runs = forecasts
    client = _client(root)
    names = {a.path for folder in ("evaluation", "plots") for a in client.list_artifacts(runs["macro"], folder)}
    assert {"evaluation/per_series.csv", "plots/forecast_test.png"} <= names
    table = pd.read_csv(client.download_artifacts(runs["macro"], "evaluation/per_series.csv"))
    assert sorted(table["unique_id"]) == ["cpi", "realcons", "realdpi", "realgdp", "realgovt", "realinv"]
    assert {"validation_mase", "test_mase_seasonal_naive"} <= set(table.columns)


def test_model_pins_the_forecasting_libraries(forecasts):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    root, runs = forecasts
    mlflow.set_tracking_uri(mlflow_uri(str(root / "mlruns")))
    for name, wanted in (("air", ("statsforecast==", "coreforecast==")), ("macro", ("mlforecast==", "lightgbm=="))):
        path = mlflow.pyfunc.get_model_dependencies(f"runs:/{runs[name]}/model")
        text = open(path).read()
        assert all(w in text for w in wanted), text


def test_batch_inference_forecasts_the_horizon_after_each_series(forecasts):
    root, runs = forecasts
    out = run_mmp("batch-inference", "--run-id", runs["air"], "-d", "data/air_passengers.csv", "-o", "air.csv",
                  cwd=root)
    assert out.code == 0, out.err
    air = pd.read_csv(root / "air.csv", parse_dates=["month"])
    assert list(air.columns) == ["series", "month", "prediction", "prediction_lo_90", "prediction_hi_90"]
    assert list(air["month"]) == list(pd.date_range("1961-01-01", periods=12, freq="MS"))
    assert (air["prediction_lo_90"] < air["prediction"]).all() and (air["prediction"] < air["prediction_hi_90"]).all()
    # A shorter history forecasts from its own end: the model is the same, the window is the input's.
    history = pd.read_csv(root / "data" / "us_macro.csv")
    history[history["quarter"] < "2005-01-01"].to_csv(root / "macro_2004.csv", index=False)
    out = run_mmp("batch-inference", "--run-id", runs["macro"], "-d", "macro_2004.csv", "-o", "macro.parquet",
                  cwd=root)
    assert out.code == 0, out.err
    macro = pd.read_parquet(root / "macro.parquet")
    assert list(macro.columns) == ["series", "quarter", "prediction"]
    assert len(macro) == 6 * 4 and macro.groupby("series")["quarter"].min().eq(pd.Timestamp("2005-01-01")).all()


def test_bad_history_exits_2_naming_the_column(forecasts):
    root, runs = forecasts
    history = pd.read_csv(root / "data" / "air_passengers.csv")
    history.drop(index=30).to_csv(root / "gap.csv", index=False)
    history.drop(columns=["passengers"]).to_csv(root / "no_target.csv", index=False)
    for name, words in (("gap.csv", "month: series 'airline' has a gap"), ("no_target.csv", "missing column: passengers")):
        out = run_mmp("batch-inference", "--run-id", runs["air"], "-d", name, "-o", f"{name}.out.csv",
                      cwd=root)
        assert out.code == 2 and words in out.err and "Traceback" not in out.err, out.err
        assert not (root / f"{name}.out.csv").exists()


def test_bad_training_data_exits_2_with_nothing_logged(forecasts):
    root, _ = forecasts
    history = pd.read_csv(root / "data" / "us_macro.csv")
    pd.concat([history, history.tail(1)]).to_csv(root / "dupe.csv", index=False)
    client = _client(root)
    before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    out = run_mmp("train", "recipe=forecast/us_macro", "-d", "dupe.csv", cwd=root)
    assert out.code == 2 and "data.time_column: quarter: series 'cpi' has 2 rows at 2009-07-01" in out.err, out.err
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == before


@pytest.mark.parametrize("model", ["lightgbm.LGBMRegressor", "statsforecast.models.AutoARIMA"])
def test_exogenous_features_are_learned_and_their_future_rows_are_required(tmp_path, model):
    """Consumption forecast with disposable income as a known-in-advance regressor: the future rows
    (a time and the income, no target) drive the forecast; leaving them out is exit 2 naming them."""
    for name in ("conf", "recipes", "data"):
        shutil.copytree(REPO / name, tmp_path / name)
    macro = pd.read_csv(tmp_path / "data" / "us_macro.csv")
    wide = macro.pivot(index="quarter", columns="series", values="value").reset_index()
    frame = pd.DataFrame({"series": "realcons", "quarter": wide["quarter"], "value": wide["realcons"],
                          "income": wide["realdpi"]})
    frame.iloc[:-4].to_csv(tmp_path / "data" / "cons.csv", index=False)
    future = frame.iloc[-4:].assign(value=None)
    pd.concat([frame.iloc[:-4], future]).to_csv(tmp_path / "with_future.csv", index=False)
    frame.iloc[:-4].to_csv(tmp_path / "no_future.csv", index=False)
    overrides = ["recipe=forecast/us_macro", "data.source=data/cons.csv", "+data.features=[income]",
                 f"model.class_path={model}"]
    if model.startswith("statsforecast"):
        overrides += ["~model.params", "forecast.lags=[]", "forecast.rolling_windows=[]", "forecast.date_features=[]",
                      "forecast.differences=[]", "+model.params={season_length: 1}"]
    trained = run_mmp("train", *overrides, "-q", cwd=tmp_path)
    assert trained.code == 0, trained.err
    run_id = trained.out.strip().splitlines()[-1]
    out = tmp_path / "forecast.csv"
    predicted = run_mmp("batch-inference", "--run-id", run_id, "-d", str(tmp_path / "with_future.csv"), "-o", str(out),
                        "-q", cwd=tmp_path)
    assert predicted.code == 0, predicted.err
    result = pd.read_csv(out)
    assert list(result["quarter"]) == list(future["quarter"])  # dates as the input wrote them, not timestamps
    assert result["prediction"].notna().all()
    assert set(result["series"]) == {"realcons"}
    poorer = pd.concat([frame.iloc[:-4], future.assign(income=future["income"] * 0.5)])
    poorer.to_csv(tmp_path / "poorer.csv", index=False)
    assert run_mmp("batch-inference", "--run-id", run_id, "-d", str(tmp_path / "poorer.csv"), "-o", str(out), "-q",
                   cwd=tmp_path).code == 0
    assert not pd.read_csv(out)["prediction"].equals(result["prediction"])  # the future income is used
    refused = run_mmp("batch-inference", "--run-id", run_id, "-d", str(tmp_path / "no_future.csv"),
                      "-o", str(tmp_path / "x.csv"), "-q", cwd=tmp_path)
    assert refused.code == 2 and "income" in refused.err and "Traceback" not in refused.err, refused.err
    assert not (tmp_path / "x.csv").exists()


def test_settings_the_forecaster_refuses_at_fit_exit_2_naming_model_params(tmp_path):
    for name in ("conf", "recipes", "data"):
        shutil.copytree(REPO / name, tmp_path / name)
    result = run_mmp("train", "recipe=forecast/air_passengers", "model.params.model=QQQ", "-q", cwd=tmp_path)
    assert result.code == 2 and "model.params: statsforecast.models.AutoETS cannot fit with these settings" in result.err
