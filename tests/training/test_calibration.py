"""Calibrated classifiers: an overconfident naive Bayes gets better probabilities, and every way of
using the logged model (pyfunc, batch inference, a process without mmp) gives the calibrated ones."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import clean_env, run_mmp

pytestmark = pytest.mark.slow

HELD_OUT = ["data.split.train=0.55", "data.split.calibration=0.15", "calibration.cv=null"]


def store_env(workspace, **extra):
    from mmp.io.tracking import mlflow_uri

    return clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")), **extra)


@pytest.fixture(scope="module")
def calibrated(workspace) -> dict[str, str]:
    """The calibrated_nb recipe trained three ways: 5-fold (as written), on held-out rows, and
    iris (multi-class) with sigmoid 3-fold: name -> run id."""
    runs = {}
    for name, args in {"cv": [], "held_out": HELD_OUT, "iris": ["+calibration.cv=3"]}.items():
        recipe = "iris" if name == "iris" else "calibrated_nb"
        result = run_mmp("train", f"recipe={recipe}", "-q", *args, cwd=workspace, env=clean_env())
        assert result.code == 0, f"{name}: {result.err}"
        runs[name] = result.out.strip().splitlines()[-1]
    return runs


def run_of(workspace, run_id):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    return mlflow.MlflowClient(tracking_uri=mlflow_uri(str(workspace / "mlruns"))).get_run(run_id)


def test_calibration_improves_the_brier_score_of_an_overconfident_naive_bayes(workspace, calibrated):
    for name in ("cv", "held_out"):
        metrics = run_of(workspace, calibrated[name]).data.metrics
        assert metrics["test_brier"] < metrics["test_brier_uncalibrated"], name
        assert metrics["validation_brier"] < metrics["validation_brier_uncalibrated"], name
        assert {"test_log_loss", "test_log_loss_uncalibrated", "validation_log_loss_uncalibrated"} <= set(metrics)
        assert not any(key.startswith("calibration_") or key == "train_brier_uncalibrated" for key in metrics)
    cross = run_of(workspace, calibrated["cv"]).data.metrics  # isotonic over 5 folds also fixes log loss
    assert cross["test_log_loss"] < cross["test_log_loss_uncalibrated"]


def test_held_out_calibration_rows_come_from_train_and_never_from_validation_or_test(workspace, calibrated):
    held, cross = (run_of(workspace, calibrated[n]).data.params for n in ("held_out", "cv"))
    rows = {k: int(held[f"split.{k}_rows"]) for k in ("train", "calibration", "validation", "test")}
    assert rows == {"train": 314, "calibration": 85, "validation": 85, "test": 85}
    assert sum(rows.values()) == 569
    assert held["data.split.calibration"] == "0.15" and held["calibration.method"] == "isotonic"
    assert "split.calibration_rows" not in cross and int(cross["split.train_rows"]) == 399
    # the same validation and test rows with or without calibration rows: comparable runs
    assert (held["split.validation_rows"], held["split.test_rows"]) == (cross["split.validation_rows"], cross["split.test_rows"])


def test_a_reliability_diagram_is_logged_under_plots(workspace, calibrated):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    client = mlflow.MlflowClient(tracking_uri=mlflow_uri(str(workspace / "mlruns")))
    for run_id in calibrated.values():
        paths = {item.path for item in client.list_artifacts(run_id, "plots")}
        assert "plots/reliability.png" in paths and "plots/roc_curve.png" in paths


def logged_model(workspace, run_id):
    import mlflow

    mlflow.set_tracking_uri(store_env(workspace)["MLFLOW_TRACKING_URI"])
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    return pyfunc, pyfunc.unwrap_python_model().model


def test_the_logged_pipeline_ends_in_the_calibrated_classifier_and_batch_gives_its_probabilities(workspace, calibrated, tmp_path):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from mmp.models.tabular import model_input

    source = pd.read_csv(workspace / "data" / "breast_cancer.csv")
    for name in ("cv", "held_out"):
        pyfunc, model = logged_model(workspace, calibrated[name])
        final = model.pipeline.steps[-1][1]
        assert isinstance(final, CalibratedClassifierCV) and final.method == "isotonic"
        X = model.pipeline[:-1].transform(model_input(source, model.features, model.numeric))
        expected = final.predict_proba(X)[:, 1]
        assert np.array_equal(pyfunc.predict(source)["probability"].to_numpy(), expected)

        out = tmp_path / f"{name}.csv"
        result = run_mmp("batch-inference", "--run-id", calibrated[name], "-d", "data/breast_cancer.csv", "-o", str(out),
                         cwd=workspace, env=store_env(workspace))
        assert result.code == 0, result.err
        batch = pd.read_csv(out)
        assert list(batch.columns) == ["id", "prediction", "probability"]
        np.testing.assert_allclose(batch["probability"].to_numpy(), expected, rtol=1e-12)
        assert set(batch["prediction"]) == {"malignant", "benign"}
        if name == "held_out":  # the frozen classifier inside: its own probabilities are not what is served
            assert isinstance(final.estimator, FrozenEstimator)
            assert not np.allclose(final.estimator.predict_proba(X)[:, 1], expected)


def test_multi_class_calibration_keeps_the_label_mapping_and_probability_columns(workspace, calibrated, tmp_path):
    from sklearn.calibration import CalibratedClassifierCV

    from mmp.models.tabular import model_input

    source = pd.read_csv(workspace / "data" / "iris.csv")
    pyfunc, model = logged_model(workspace, calibrated["iris"])
    final = model.pipeline.steps[-1][1]
    assert isinstance(final, CalibratedClassifierCV) and final.method == "sigmoid" and list(final.classes_) == [0, 1, 2]
    out = tmp_path / "iris.parquet"
    result = run_mmp("batch-inference", "--run-id", calibrated["iris"], "-d", "data/iris.csv", "-o", str(out),
                     cwd=workspace, env=store_env(workspace))
    assert result.code == 0, result.err
    batch = pd.read_parquet(out)
    labels = ["setosa", "versicolor", "virginica"]
    assert list(batch.columns) == ["id", "prediction"] + [f"probability_{c}" for c in labels]
    proba = batch[[f"probability_{c}" for c in labels]].to_numpy()
    expected = final.predict_proba(model.pipeline[:-1].transform(model_input(source, model.features, model.numeric)))
    np.testing.assert_allclose(proba, expected, rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert batch["prediction"].tolist() == [labels[i] for i in proba.argmax(axis=1)]
    assert (batch["prediction"] == source["species"]).mean() > 0.9
    metrics = run_of(workspace, calibrated["iris"]).data.metrics
    assert {"test_brier", "test_brier_uncalibrated", "test_log_loss_uncalibrated"} <= set(metrics)


LOAD_WITHOUT_MMP = """
import json, sys
sys.modules['mmp'] = None
import mlflow, pandas as pd
out = {}
for name, (run_id, data) in json.loads(sys.argv[1]).items():
    predicted = mlflow.pyfunc.load_model(f'runs:/{run_id}/model').predict(pd.read_csv(data).head(5))
    out[name] = {c: predicted[c].tolist() for c in predicted.columns}
print(json.dumps(out))
"""


def test_calibrated_models_load_and_predict_in_a_process_without_mmp(workspace, calibrated):
    runs = {"cv": (calibrated["cv"], "data/breast_cancer.csv"), "iris": (calibrated["iris"], "data/iris.csv")}
    proc = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_MMP, json.dumps(runs)], capture_output=True, text=True,
                          cwd=workspace, env=store_env(workspace), timeout=180)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    source = pd.read_csv(workspace / "data" / "breast_cancer.csv").head(5)
    expected = logged_model(workspace, calibrated["cv"])[0].predict(source)
    assert out["cv"]["probability"] == expected["probability"].tolist()
    assert list(out["iris"]) == ["prediction", "probability_setosa", "probability_versicolor", "probability_virginica"]


def test_a_calibrated_torch_mlp_carries_mmp_code_and_torch_pin_into_the_model(workspace):
    """mmp's own estimator sits inside the calibrated classifier: it is still pickled by value."""
    pytest.importorskip("torch")
    import mlflow

    result = run_mmp("train", "recipe=deep/iris_mlp", "+calibration.cv=2", "-q", cwd=workspace, env=clean_env())
    assert result.code == 0, result.err
    run_id = result.out.strip().splitlines()[-1]
    mlflow.set_tracking_uri(store_env(workspace)["MLFLOW_TRACKING_URI"])
    assert "torch==" in open(mlflow.pyfunc.get_model_dependencies(f"runs:/{run_id}/model")).read()
    proc = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_MMP, json.dumps({"mlp": (run_id, "data/iris.csv")})],
                          capture_output=True, text=True, cwd=workspace, env=store_env(workspace), timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["mlp"]["prediction"] == ["setosa"] * 5
