"""`mmp batch-inference --engine spark` on a real local Spark (pyspark + a Java runtime): the same columns
and values as the local engine, NaN and unseen categories included; forecasters refused; atomic output."""

from __future__ import annotations

import glob
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import mmp_in_process

pytestmark = pytest.mark.slow

TEXT_RECIPE = """\
name: colors
task: classification
data:
  source: data/colors.csv
  entity_columns: [id]
  target: label
preprocess:
  - type: impute
    strategy: median
    columns: [x1, x2]
  - type: one_hot
    columns: [color]
model:
  class_path: sklearn.linear_model.LogisticRegression
  params: {max_iter: 500}
"""


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for the module; mmp reuses the active session."""
    pytest.importorskip("pyspark", reason="pip install 'mmp[spark-extras]'")
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime (.ci/run installs openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("mmp-tests")
               .config("spark.sql.shuffle.partitions", "2").config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def batch(workspace, *args):
    from mmp.io.tracking import mlflow_uri

    return mmp_in_process("batch-inference", "-q", *args, cwd=workspace,
                          MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")))


def read(path) -> pd.DataFrame:
    """A file, or Spark's folder of part files (in part order, which is input order)."""
    path = str(path)
    if path.endswith(".csv"):
        files = sorted(glob.glob(f"{path}/part-*")) if os.path.isdir(path) else [path]
        return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    return pd.read_parquet(path)


def both_engines(workspace, run_id, source, out_local, out_spark) -> tuple[pd.DataFrame, pd.DataFrame]:
    local = batch(workspace, "--run-id", run_id, "-d", source, "-o", str(out_local))
    assert local.code == 0, local.err
    on_spark = batch(workspace, "--run-id", run_id, "-d", source, "-o", str(out_spark), "--engine", "spark")
    assert on_spark.code == 0, on_spark.err
    assert on_spark.out.strip() == str(out_spark)
    return read(out_local), read(out_spark)


def assert_same(local: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(spark.columns) == list(local.columns)
    assert spark["id"].tolist() == local["id"].tolist()  # same rows, same order
    for column in local.columns:
        if local[column].dtype.kind == "f":
            np.testing.assert_allclose(spark[column], local[column], rtol=1e-12, atol=0)
        else:
            assert spark[column].tolist() == local[column].tolist(), column
            assert spark[column].dtype == local[column].dtype, column


@pytest.mark.parametrize("recipe, source, ext, columns", [
    ("model", "data/breast_cancer.csv", "parquet", ["id", "prediction", "probability"]),
    ("iris", "iris.parquet", "csv", ["id", "prediction", "probability_setosa", "probability_versicolor",
                                     "probability_virginica"]),
    ("diabetes", "data/diabetes.csv", "parquet", ["id", "prediction"]),
])
def test_spark_gives_the_local_engines_columns_and_values(spark, workspace, trained, tmp_path, recipe, source, ext,
                                                          columns):
    if source == "iris.parquet":
        pd.read_csv(workspace / "data" / "iris.csv").to_parquet(workspace / source)
    local, on_spark = both_engines(workspace, trained[recipe], source, tmp_path / f"local.{ext}",
                                   tmp_path / f"spark.{ext}")
    assert list(local.columns) == columns
    assert_same(local, on_spark)


def test_one_hot_text_with_nan_and_unseen_categories_and_integer_labels(spark, workspace, tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    train = pd.DataFrame({"id": range(n), "x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "color": rng.choice(["red", "green", "blue"], n)})
    train["label"] = (train["x1"] > 0).astype(int) + (train["color"] == "red").astype(int)  # 0, 1, 2
    train.to_csv(workspace / "data" / "colors.csv", index=False)
    (workspace / "recipes" / "colors.yaml").write_text(TEXT_RECIPE)
    from mmp.io.tracking import mlflow_uri

    trained = mmp_in_process("train", "recipe=colors", "-q", cwd=workspace,
                             MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")))
    assert trained.code == 0, trained.err
    run_id = trained.out.strip().splitlines()[-1]
    rows = pd.DataFrame({"id": [1, 2, 3, 4, 5], "x1": [0.5, np.nan, -1.0, 2.0, np.nan],
                         "x2": [1.0, 0.0, np.nan, -0.5, np.nan],
                         "color": ["red", "purple", None, "blue", None]})  # purple: never seen in training
    rows.to_csv(tmp_path / "rows.csv", index=False)
    local, on_spark = both_engines(workspace, run_id, str(tmp_path / "rows.csv"), tmp_path / "local.parquet",
                                   tmp_path / "spark.parquet")
    assert list(local.columns) == ["id", "prediction", "probability_0", "probability_1", "probability_2"]
    assert local["prediction"].dtype == "int64"
    assert_same(local, on_spark)


def test_a_forecaster_on_spark_exits_2(spark, workspace):
    from mmp.io.tracking import mlflow_uri

    store = mlflow_uri(str(workspace / "mlruns"))
    trained = mmp_in_process("train", "recipe=forecast/air_passengers", "model.class_path=statsforecast.models.Naive",
                             "~model.params.model", "-q", cwd=workspace, MLFLOW_TRACKING_URI=store)
    assert trained.code == 0, trained.err
    run_id = trained.out.strip().splitlines()[-1]
    result = batch(workspace, "--run-id", run_id, "-d", "data/air_passengers.csv", "--engine", "spark")
    assert result.code == 2
    assert "task: timeseries" in result.err and "--engine local" in result.err and "Traceback" not in result.err


def test_a_failed_spark_job_leaves_the_destination_as_it_was(spark, workspace, trained, tmp_path):
    frame = pd.read_csv(workspace / "data" / "breast_cancer.csv").astype({"mean_radius": object})
    frame.loc[len(frame) - 3, "mean_radius"] = "oops"  # late in the file: Spark fails mid-job
    frame.to_csv(tmp_path / "bad.csv", index=False)
    target = tmp_path / "out" / "predictions.parquet"
    target.mkdir(parents=True)
    (target / "earlier.txt").write_text("an earlier run's output")
    result = batch(workspace, "--run-id", trained["model"], "-d", str(tmp_path / "bad.csv"), "-o", str(target),
                   "--engine", "spark")
    assert result.code == 2, result.err
    assert "mean_radius" in result.err or "oops" in result.err, result.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["predictions.parquet"]  # no temporary left
    assert [p.name for p in target.iterdir()] == ["earlier.txt"]
