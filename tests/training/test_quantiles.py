"""Quantile regression: one model per quantile behind one logged model, whose quantile columns never
cross and reach batch inference, a process without mmp, and the served /predict."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, Server, clean_env, run_mmp

COLUMNS = ["prediction", "prediction_q05", "prediction_q50", "prediction_q95"]


def diabetes():
    frame = pd.read_csv(REPO / "data" / "diabetes.csv")
    return frame.drop(columns=["id", "progression"]).astype("float64"), frame["progression"].to_numpy(dtype="float64")


def regressors():
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor
    from sklearn.linear_model import QuantileRegressor

    found = [("sklearn.ensemble.GradientBoostingRegressor", GradientBoostingRegressor(n_estimators=30, random_state=0)),
             ("sklearn.ensemble.HistGradientBoostingRegressor", HistGradientBoostingRegressor(max_iter=10, random_state=0)),
             ("sklearn.linear_model.QuantileRegressor", QuantileRegressor(alpha=0.0))]
    try:
        from lightgbm import LGBMRegressor

        found.append(("lightgbm.LGBMRegressor", LGBMRegressor(n_estimators=30, verbose=-1, random_state=0)))
    except ImportError:
        pass
    try:
        from xgboost import XGBRegressor

        found.append(("xgboost.XGBRegressor", XGBRegressor(n_estimators=30, random_state=0)))
    except ImportError:
        pass
    return found


@pytest.mark.parametrize("class_path, regressor", regressors(), ids=[c for c, _ in regressors()])
def test_every_quantile_loss_fits_one_model_per_quantile_and_rows_never_cross(class_path, regressor):
    from sklearn.pipeline import Pipeline

    from mmp.config.catalogue import QUANTILE_LOSSES
    from mmp.models.quantile import MultiQuantileRegressor
    from mmp.models.tabular import prediction_columns

    X, y = diabetes()
    loss = QUANTILE_LOSSES[class_path]
    model = MultiQuantileRegressor(regressor, (0.95, 0.05, 0.5), loss.params, loss.quantile_param)
    pipeline = Pipeline([("model", model)]).fit(X, y)
    assert [m.get_params()[loss.quantile_param] for m in model.estimators_] == [0.05, 0.5, 0.95]
    assert all(m.get_params()[k] == v for m in model.estimators_ for k, v in loss.params.items())
    out = prediction_columns(pipeline, X, "regression", None)
    assert list(out) == COLUMNS
    matrix = np.column_stack([out[c] for c in COLUMNS[1:]])
    assert (np.diff(matrix, axis=1) >= 0).all()
    assert np.array_equal(out["prediction"], out["prediction_q50"])
    assert np.array_equal(pipeline.predict(X), out["prediction"])
    coverage = np.mean((y >= out["prediction_q05"]) & (y <= out["prediction_q95"]))
    assert 0.6 < coverage <= 1.0, coverage  # in-sample: each family's interval holds most rows


def test_without_the_median_the_prediction_is_the_regressor_with_its_own_loss():
    from sklearn.base import clone
    from sklearn.ensemble import GradientBoostingRegressor

    from mmp.models.quantile import MultiQuantileRegressor
    from mmp.models.tabular import prediction_columns

    X, y = diabetes()
    regressor = GradientBoostingRegressor(n_estimators=30, random_state=0)
    model = MultiQuantileRegressor(regressor, [0.1, 0.9], {"loss": "quantile"}, "alpha").fit(X, y)
    out = prediction_columns(model, X, "regression", None)
    assert list(out) == ["prediction", "prediction_q10", "prediction_q90"]
    assert np.array_equal(out["prediction"], clone(regressor).fit(X, y).predict(X))
    assert model.point_estimator_.loss == "squared_error"


def test_crossing_quantiles_are_sorted_per_row():
    from sklearn.dummy import DummyRegressor

    from mmp.models.quantile import MultiQuantileRegressor

    X, y = diabetes()
    # DummyRegressor's quantile strategy, told the quantiles in reverse, predicts them crossed
    model = MultiQuantileRegressor(DummyRegressor(strategy="quantile"), [0.1, 0.5, 0.9], {}, "quantile").fit(X, y)
    model.estimators_ = model.estimators_[::-1]
    point, matrix = model.predict_with_quantiles(X.head(3))
    assert (np.diff(matrix, axis=1) >= 0).all() and np.array_equal(point, matrix[:, 1])


def test_quantile_columns_are_named_by_their_decimals():
    from mmp.models.tabular import quantile_column

    names = [quantile_column(q) for q in (0.05, 0.5, 0.95, 0.025, 0.975, 0.1, 0.01)]
    assert names == ["prediction_q05", "prediction_q50", "prediction_q95", "prediction_q025", "prediction_q975",
                     "prediction_q10", "prediction_q01"]


def store_env(workspace, **extra):
    from mmp.io.tracking import mlflow_uri

    return clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")), **extra)


@pytest.fixture(scope="module")
def quantile_runs(workspace) -> dict[str, str]:
    """The diabetes_quantiles recipe as written, and diabetes_lgbm asked for quantiles: name -> run id."""
    runs = {}
    for name, args in {"gbr": ["recipe=diabetes_quantiles"],
                       "lgbm": ["recipe=boosting/diabetes_lgbm", "+quantiles=[0.1,0.5,0.9]"]}.items():
        if name == "lgbm" and not _installed("lightgbm"):
            continue
        result = run_mmp("train", *args, "-q", cwd=workspace, env=clean_env())
        assert result.code == 0, f"{name}: {result.err}"
        runs[name] = result.out.strip().splitlines()[-1]
    return runs


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run_of(workspace, run_id):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    return mlflow.MlflowClient(tracking_uri=mlflow_uri(str(workspace / "mlruns"))).get_run(run_id)


@pytest.mark.slow
def test_held_out_metrics_give_pinball_loss_per_quantile_and_a_sane_interval_coverage(workspace, quantile_runs):
    run = run_of(workspace, quantile_runs["gbr"])
    metrics, params = run.data.metrics, run.data.params
    held_out = 0
    for split in ("validation", "test"):
        for q in ("q05", "q50", "q95"):
            assert metrics[f"{split}_pinball_{q}"] > 0
        # the median is the prediction: its pinball loss is half the absolute error
        assert metrics[f"{split}_pinball_q50"] == pytest.approx(metrics[f"{split}_mae"] / 2)
        assert 0.7 <= metrics[f"{split}_coverage_q05_q95"] <= 1.0
        assert metrics[f"{split}_width_q05_q95"] > 0
        held_out += metrics[f"{split}_coverage_q05_q95"] * int(params[f"split.{split}_rows"])
    rows = int(params["split.validation_rows"]) + int(params["split.test_rows"])
    assert rows >= 130 and 0.7 <= held_out / rows <= 1.0
    assert params["quantiles"] == "[0.05, 0.5, 0.95]"
    plots = {item.path for item in _client(workspace).list_artifacts(run.info.run_id, "plots")}
    assert {"plots/quantile_intervals.png", "plots/residuals.png", "plots/feature_importance.png"} <= plots


def _client(workspace):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    return mlflow.MlflowClient(tracking_uri=mlflow_uri(str(workspace / "mlruns")))


@pytest.mark.slow
def test_batch_inference_writes_monotone_quantile_columns(workspace, quantile_runs, tmp_path):
    source = pd.read_csv(workspace / "data" / "diabetes.csv")
    out = tmp_path / "quantiles.parquet"
    result = run_mmp("batch-inference", "--run-id", quantile_runs["gbr"], "-d", "data/diabetes.csv", "-o", str(out),
                     cwd=workspace, env=store_env(workspace))
    assert result.code == 0, result.err
    batch = pd.read_parquet(out)
    assert list(batch.columns) == ["id"] + COLUMNS and batch["id"].tolist() == source["id"].tolist()
    bounds = batch[COLUMNS[1:]].to_numpy()
    assert (np.diff(bounds, axis=1) >= 0).all()
    assert np.array_equal(batch["prediction"], batch["prediction_q50"])
    assert (batch["prediction_q95"] > batch["prediction_q05"]).mean() > 0.99


@pytest.mark.slow
def test_a_lightgbm_quantile_model_pins_lightgbm_and_names_its_columns(workspace, quantile_runs):
    if "lgbm" not in quantile_runs:
        pytest.skip("lightgbm is not installed")
    import mlflow

    mlflow.set_tracking_uri(store_env(workspace)["MLFLOW_TRACKING_URI"])
    uri = f"runs:/{quantile_runs['lgbm']}/model"
    requirements = open(mlflow.pyfunc.get_model_dependencies(uri)).read()
    assert "lightgbm==" in requirements
    predicted = mlflow.pyfunc.load_model(uri).predict(pd.read_csv(workspace / "data" / "diabetes.csv"))
    assert list(predicted.columns) == ["prediction", "prediction_q10", "prediction_q50", "prediction_q90"]
    assert (np.diff(predicted[predicted.columns[1:]].to_numpy(), axis=1) >= 0).all()
    assert "test_coverage_q10_q90" in run_of(workspace, quantile_runs["lgbm"]).data.metrics


LOAD_WITHOUT_MMP = """
import sys
sys.modules['mmp'] = None
import mlflow, pandas as pd
m = mlflow.pyfunc.load_model(f'runs:/{sys.argv[1]}/model')
print(list(m.predict(pd.read_csv('data/diabetes.csv').head(4)).columns))
"""


@pytest.mark.slow
def test_the_quantile_model_loads_and_predicts_without_mmp(workspace, quantile_runs):
    proc = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_MMP, quantile_runs["gbr"]], capture_output=True, text=True,
                          cwd=workspace, env=store_env(workspace), timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(COLUMNS)


@pytest.mark.slow
def test_served_predict_returns_the_quantiles_and_the_schema_lists_them(workspace, quantile_runs):
    import httpx

    import mlflow

    source = pd.read_csv(workspace / "data" / "diabetes.csv").head(3)
    rows = source.drop(columns=["id", "progression"]).to_dict(orient="records")
    mlflow.set_tracking_uri(store_env(workspace)["MLFLOW_TRACKING_URI"])
    expected = mlflow.pyfunc.load_model(f"runs:/{quantile_runs['gbr']}/model").predict(source)
    server = Server(workspace, quantile_runs["gbr"])
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            one = client.post("/predict", json=rows[0])
            assert one.status_code == 200, one.text
            body = one.json()
            for column in COLUMNS:
                assert body[column] == pytest.approx(expected[column].iloc[0])
            assert body["prediction_q05"] <= body["prediction_q50"] <= body["prediction_q95"]
            batch = client.post("/predict/batch", json={"samples": [{**r, "id": i} for i, r in enumerate(rows)]}).json()
            assert [p["id"] for p in batch["predictions"]] == [0, 1, 2]
            assert [p["prediction_q95"] for p in batch["predictions"]] == pytest.approx(expected["prediction_q95"].tolist())
            schema = client.get("/model/schema").json()
            assert schema["outputs"] == ["prediction", "probability", "prediction_q05", "prediction_q50", "prediction_q95"]
            assert schema["task"] == "regression"
    finally:
        assert server.stop() == 0
