"""Batch inference's fast paths give what the logged pyfunc gives: a model read from its folder
without MLflow, chunks fed from Arrow straight into the model (numbers, integers, booleans, text
categories, NaN, nulls, unseen categories), drift counted from the same block; and MLflow is not
imported at all when nothing needs it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import clean_env, mmp_in_process

MIXED_RECIPE = """\
name: mixed
task: classification
data:
  source: data/mixed.csv
  entity_columns: [id]
  target: label
preprocess:
  - type: impute
    strategy: median
    columns: [x1, x2, n]
  - type: standard_scale
    columns: [x1, n]
  - type: one_hot
    columns: [color]
model:
  class_path: sklearn.linear_model.LogisticRegression
  params: {max_iter: 500}
"""


@pytest.fixture(scope="module")
def mixed(workspace):
    """A model over floats, an integer column and a text category: (run id, tracking URI)."""
    from mmp.io.tracking import mlflow_uri

    rng = np.random.default_rng(3)
    n = 400
    train = pd.DataFrame({"id": range(n), "x1": rng.normal(size=n), "x2": rng.normal(size=n) * 100,
                          "n": rng.integers(0, 50, n), "color": rng.choice(["red", "green", "blue"], n)})
    train["label"] = np.where(train["x1"] + (train["color"] == "red") > 0.5, "yes", "no")
    train.loc[::6, "color"] = np.nan  # missing is a category the encoder learns: NaN vs None would show
    train.to_csv(workspace / "data" / "mixed.csv", index=False)
    (workspace / "recipes" / "mixed.yaml").write_text(MIXED_RECIPE)
    store = mlflow_uri(str(workspace / "mlruns"))
    result = mmp_in_process("train", "recipe=mixed", "-q", cwd=workspace, MLFLOW_TRACKING_URI=store)
    assert result.code == 0, result.err
    return result.out.strip().splitlines()[-1], store


def rows_to_predict(n: int = 61) -> pa.Table:
    """Floats with NaN and nulls, integers with nulls, text with nulls and a category never seen."""
    rng = np.random.default_rng(11)
    x1 = rng.normal(size=n)
    x1[::7] = np.nan
    colors = rng.choice(["red", "green", "blue", "purple"], n).astype(object)
    colors[::5] = None
    return pa.table({
        "id": pa.array(range(n), pa.int64()),
        "x1": pa.array(x1, from_pandas=False),  # NaN stays a NaN value
        "x2": pa.array([None if i % 9 == 0 else float(v) for i, v in enumerate(rng.normal(size=n) * 100)]),
        "n": pa.array([None if i % 4 == 0 else int(v) for i, v in enumerate(rng.integers(0, 60, n))], pa.int32()),
        "color": pa.array(colors, pa.string()),
    })


def test_arrow_chunks_predict_exactly_what_the_logged_pyfunc_predicts(workspace, mixed, tmp_path):
    import mlflow

    from mmp.inference.arrow_input import arrow_predictor, model_frame
    from mmp.inference.batch import predict_table
    from mmp.io.run_store import local_model_folder
    from mmp.models.logged import load_folder

    run_id, store = mixed
    uri = f"runs:/{run_id}/model"
    table = rows_to_predict()
    model = load_folder(uri, local_model_folder(uri, store))
    assert model is not None and model.run_id == run_id
    assert arrow_predictor(model.tabular) is not None  # the fast path is the one under test
    assert model_frame(table, model.tabular.features, model.tabular.numeric) is not None

    mlflow.set_tracking_uri(store)
    expected = mlflow.pyfunc.load_model(uri).predict(table.to_pandas())
    got = predict_table(model, table).to_pandas()
    assert got["id"].tolist() == list(range(table.num_rows))
    pd.testing.assert_frame_equal(got.drop(columns="id"), expected.reset_index(drop=True), check_exact=True)

    # the same through the command, in chunks of 7 rows, from parquet (integer and null types kept)
    pq.write_table(table, tmp_path / "rows.parquet")
    result = mmp_in_process("batch-inference", "--run-id", run_id, "-d", str(tmp_path / "rows.parquet"),
                            "-o", str(tmp_path / "out.parquet"), "--chunk-rows", "7", "-q", cwd=workspace,
                            MLFLOW_TRACKING_URI=store)
    assert result.code == 0, result.err
    out = pd.read_parquet(tmp_path / "out.parquet")
    pd.testing.assert_frame_equal(out.drop(columns="id"), expected.reset_index(drop=True), check_exact=True)


def test_drift_counted_from_the_model_block_equals_counting_the_arrow_columns(mixed):
    from mmp.inference.arrow_input import arrow_predictor
    from mmp.inference.batch import predict_and_count
    from mmp.inference.drift_report import count_chunk
    from mmp.io.run_store import local_model_folder
    from mmp.models.logged import load_folder

    run_id, store = mixed
    uri = f"runs:/{run_id}/model"
    model = load_folder(uri, local_model_folder(uri, store))
    table = rows_to_predict()
    out, counts = predict_and_count(model, table, model.drift_profile, arrow_predictor(model.tabular))
    reference = count_chunk(model.drift_profile, table, out)
    assert counts.rows == reference.rows == table.num_rows
    for group in ("features", "predictions"):
        for name, value in reference.counts[group].items():
            assert counts.counts[group][name].tolist() == value.tolist(), name


def test_runs_uris_resolve_to_the_folder_mlflow_loads_and_anything_else_to_mlflow(workspace, mixed):
    import mlflow

    from mmp.io.run_store import local_model_folder

    run_id, store = mixed
    folder = local_model_folder(f"runs:/{run_id}/model", store)
    mlflow.set_tracking_uri(store)
    info = mlflow.models.get_model_info(f"runs:/{run_id}/model")
    with open(f"{folder}/MLmodel") as f:
        assert f"model_uuid: {info.model_uuid}" in f.read()
    assert local_model_folder(f"runs:/{'0' * 32}/model", store) is None  # unknown run: MLflow says so
    assert local_model_folder(f"runs:/{run_id}/other", store) is None
    assert local_model_folder("models:/mixed@champion", store) is None
    assert local_model_folder(f"runs:/{run_id}/model", "http://127.0.0.1:5000") is None


def test_batch_inference_with_monitoring_off_never_imports_mlflow(workspace, mixed, tmp_path):
    run_id, store = mixed
    rows_to_predict().to_pandas().to_csv(tmp_path / "rows.csv", index=False)
    script = ("import sys\nfrom mmp.cli import run\n"
              "code = run(sys.argv[1:])\nprint(json.dumps({'code': code, 'mlflow': 'mlflow' in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", "import json\n" + script, "batch-inference", "--run-id", run_id,
                           "-d", str(tmp_path / "rows.csv"), "-o", str(tmp_path / "out.csv"), "-q",
                           "monitoring.enabled=false"],
                          cwd=workspace, env=clean_env(MLFLOW_TRACKING_URI=store), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"code": 0, "mlflow": False}
    assert len(pd.read_csv(tmp_path / "out.csv")) == 61
