"""`mmp batch-inference`: formats, parity with the pyfunc, model URIs, schema checks, object stores,
bounded memory and atomic output."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tests.conftest import clean_env, run_mmp, run_mmp_measured


def store_env(workspace, **extra):
    from mmp.io.tracking import mlflow_uri

    return clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")), **extra)


def predict(workspace, *args, **env):
    return run_mmp("batch-inference", *args, cwd=workspace, env=store_env(workspace, **env))


def pyfunc_predictions(workspace, run_id: str, frame: pd.DataFrame) -> pd.DataFrame:
    import mlflow

    from mmp.io.tracking import mlflow_uri

    mlflow.set_tracking_uri(mlflow_uri(str(workspace / "mlruns")))
    return mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(frame)


def test_csv_in_default_parquet_out_matches_the_pyfunc_exactly(workspace, trained):
    run_id = trained["iris"]
    result = predict(workspace, "--run-id", run_id, "-d", "data/iris.csv")
    assert result.code == 0, result.err
    out_uri = result.out.strip().splitlines()[-1]
    assert out_uri == f"predictions/predictions_{run_id}.parquet"
    out = pd.read_parquet(workspace / out_uri)
    source = pd.read_csv(workspace / "data" / "iris.csv")
    assert list(out.columns) == ["id", "prediction", "probability_setosa", "probability_versicolor", "probability_virginica"]
    assert out["id"].tolist() == source["id"].tolist()  # same rows, same order
    expected = pyfunc_predictions(workspace, run_id, source)
    pd.testing.assert_frame_equal(out.drop(columns="id"), expected.reset_index(drop=True), check_exact=True)
    assert "rows/s" in result.err and "150 rows" in result.err


@pytest.mark.parametrize("recipe, source, out_name", [
    ("model", "data/breast_cancer.csv", "bc.csv"),
    ("diabetes", "diabetes.parquet", "diabetes.json"),
    ("wine_clusters", "wine.parquet", "wine.csv"),
])
def test_formats_in_and_out(workspace, trained, tmp_path, recipe, source, out_name):
    csv = {"diabetes": "diabetes.csv", "wine_clusters": "wine.csv"}.get(recipe)
    if csv:
        pl.read_csv(workspace / "data" / csv).write_parquet(workspace / source)
    target = tmp_path / out_name
    result = predict(workspace, "--run-id", trained[recipe], "-d", source, "-o", str(target), "--chunk-rows", "50")
    assert result.code == 0, result.err
    out = pd.read_json(target, lines=True) if out_name.endswith(".json") else pd.read_csv(target)
    frame = pl.read_parquet(workspace / source).to_pandas() if source.endswith(".parquet") else pd.read_csv(workspace / source)
    assert out["id"].tolist() == frame["id"].tolist()
    expected = pyfunc_predictions(workspace, trained[recipe], frame)
    if recipe == "model":
        assert list(out.columns) == ["id", "prediction", "probability"]
        np.testing.assert_allclose(out["probability"], expected["probability"], rtol=1e-12)
    assert out["prediction"].tolist() == expected["prediction"].tolist()


def test_model_run_id_env_var_and_model_uris(workspace, trained, tmp_path):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    run_id = trained["iris"]
    assert predict(workspace, "-d", "data/iris.csv", "-o", str(tmp_path / "a.csv"), MODEL_RUN_ID=run_id).code == 0
    assert predict(workspace, "--model-uri", f"runs:/{run_id}/model", "-d", "data/iris.csv",
                   "-o", str(tmp_path / "b.csv")).code == 0
    mlflow.set_tracking_uri(mlflow_uri(str(workspace / "mlruns")))
    client = mlflow.MlflowClient()
    version = mlflow.register_model(f"runs:/{run_id}/model", "iris-classifier")
    client.set_registered_model_alias("iris-classifier", "champion", version.version)
    for uri, name in ((f"models:/iris-classifier/{version.version}", "c.csv"), ("models:/iris-classifier@champion", "d.csv")):
        result = predict(workspace, "--model-uri", uri, "-d", "data/iris.csv", "-o", str(tmp_path / name))
        assert result.code == 0, result.err
    outputs = [pd.read_csv(tmp_path / n) for n in ("a.csv", "b.csv", "c.csv", "d.csv")]
    for other in outputs[1:]:
        pd.testing.assert_frame_equal(outputs[0], other)


@pytest.mark.parametrize("args, message", [
    (["--run-id", "0123456789abcdef0123456789abcdef"], "no such model: runs:/0123456789abcdef0123456789abcdef/model"),
    (["--model-uri", "models:/no-such-model@prod"], "no such model: models:/no-such-model@prod"),
    (["--model-uri", "nonsense"], "is not a model URI"),
    ([], "pass --run-id ID or --model-uri URI, or set MODEL_RUN_ID"),
])
def test_unknown_model_exits_2(workspace, trained, args, message):
    result = predict(workspace, *args, "-d", "data/iris.csv")
    assert result.code == 2, result.err
    assert message in result.err and "Traceback" not in result.err


def test_schema_check_lists_missing_columns_and_ignores_extra_ones(workspace, trained, tmp_path):
    frame = pl.read_csv(workspace / "data" / "iris.csv")
    frame.drop("petal_width_cm", "sepal_width_cm").write_csv(tmp_path / "narrow.csv")
    result = predict(workspace, "--run-id", trained["iris"], "-d", str(tmp_path / "narrow.csv"))
    assert result.code == 2
    assert "missing columns: sepal_width_cm, petal_width_cm" in result.err and "available: id, sepal_length_cm" in result.err
    frame.with_columns(note=pl.lit("extra")).write_csv(tmp_path / "wide.csv")
    result = predict(workspace, "--run-id", trained["iris"], "-d", str(tmp_path / "wide.csv"), "-o", str(tmp_path / "w.csv"))
    assert result.code == 0, result.err
    assert "note" not in pd.read_csv(tmp_path / "w.csv").columns


def test_type_mismatch_names_the_column(workspace, trained, tmp_path):
    frame = pl.read_csv(workspace / "data" / "iris.csv").with_columns(petal_length_cm=pl.lit("long"))
    frame.write_parquet(tmp_path / "typed.parquet")
    result = predict(workspace, "--run-id", trained["iris"], "-d", str(tmp_path / "typed.parquet"), "-o", str(tmp_path / "t.csv"))
    assert result.code == 2
    assert "column 'petal_length_cm' holds text (large_string), the model expects a number" in result.err
    assert not (tmp_path / "t.csv").exists()


def test_empty_input_exits_2(workspace, trained, tmp_path):
    (tmp_path / "empty.csv").write_text((workspace / "data" / "iris.csv").read_text().splitlines()[0] + "\n")
    result = predict(workspace, "--run-id", trained["iris"], "-d", str(tmp_path / "empty.csv"), "-o", str(tmp_path / "e.csv"))
    assert result.code == 2 and "has no rows" in result.err and not (tmp_path / "e.csv").exists()


def corrupt_csv(path, good_rows: int) -> None:
    """Valid iris rows, then one whose number is not a number, then more valid rows."""
    lines = ["id,sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm"]
    lines += [f"{i},5.1,3.5,1.4,0.2" for i in range(good_rows)]
    lines.append(f"{good_rows},5.1,oops,1.4,0.2")
    lines += [f"{i},6.7,3.0,5.2,2.3" for i in range(good_rows + 1, good_rows + 1000)]
    path.write_text("\n".join(lines) + "\n")


def test_a_corrupt_chunk_midway_leaves_nothing_at_the_destination(workspace, trained, tmp_path):
    corrupt_csv(tmp_path / "corrupt.csv", good_rows=30_000)
    out_dir = tmp_path / "out"
    result = predict(workspace, "--run-id", trained["iris"], "-d", str(tmp_path / "corrupt.csv"),
                     "-o", str(out_dir / "p.parquet"), "--chunk-rows", "1000")
    assert result.code == 2, result.err
    assert "cannot read the data" in result.err and "oops" in result.err
    assert list(out_dir.iterdir()) == []  # neither the file nor its temporary twin


def test_s3_in_and_out_through_moto(workspace, trained, s3_server, tmp_path):
    import s3fs

    fs = s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=s3_server)
    fs.put(str(workspace / "data" / "iris.csv"), "mmp-test/in/iris.csv")
    options = [f"+source.storage_options.endpoint_url={s3_server}", "+source.storage_options.key=testing",
               "+source.storage_options.secret=testing"]
    result = predict(workspace, "--run-id", trained["iris"], "-d", "s3://mmp-test/in/iris.csv",
                     "-o", "s3://mmp-test/out/", *options, AWS_DEFAULT_REGION="us-east-1")
    assert result.code == 0, result.err
    assert result.out.strip().splitlines()[-1] == f"s3://mmp-test/out/predictions_{trained['iris']}.parquet"
    with fs.open(f"mmp-test/out/predictions_{trained['iris']}.parquet", "rb") as f:
        out = pd.read_parquet(f)
    assert len(out) == 150 and out["prediction"].iloc[0] == "setosa"
    assert fs.ls("mmp-test/out/") == [f"mmp-test/out/predictions_{trained['iris']}.parquet"]

    corrupt_csv(tmp_path / "corrupt.csv", good_rows=5000)
    fs.put(str(tmp_path / "corrupt.csv"), "mmp-test/in/corrupt.csv")
    result = predict(workspace, "--run-id", trained["iris"], "-d", "s3://mmp-test/in/corrupt.csv",
                     "-o", "s3://mmp-test/failed/p.csv", "--chunk-rows", "500", *options, AWS_DEFAULT_REGION="us-east-1")
    assert result.code == 2
    fs.invalidate_cache()
    assert not fs.exists("mmp-test/failed/p.csv")
    assert not fs.exists("mmp-test/failed") or fs.ls("mmp-test/failed/") == []  # no temporary object left


def test_gcs_in_and_out_through_the_storage_emulator(workspace, trained, gcs_server):
    import gcsfs

    fs = gcsfs.GCSFileSystem(endpoint_url=gcs_server, token="anon", project="test")
    fs.put(str(workspace / "data" / "iris.csv"), "mmp-test/in/iris.csv")
    result = predict(workspace, "--run-id", trained["iris"], "-d", "gs://mmp-test/in/iris.csv",
                     "-o", "gs://mmp-test/out/iris.json", f"+source.storage_options.endpoint_url={gcs_server}",
                     "+source.storage_options.token=anon", "+source.storage_options.project=test")
    assert result.code == 0, result.err
    fs.invalidate_cache()
    with fs.open("mmp-test/out/iris.json", "rb") as f:
        rows = [json.loads(line) for line in f.read().decode().splitlines()]
    assert len(rows) == 150 and rows[0]["id"] == 1 and rows[0]["prediction"] == "setosa"


def test_peak_memory_stays_flat_as_the_input_grows(workspace, trained, tmp_path):
    base = pl.read_csv(workspace / "data" / "iris.csv")
    peaks = {}
    for rows in (1_000_000, 4_000_000):
        data = tmp_path / f"rows_{rows}.csv"
        pl.concat([base] * (rows // 150 + 1)).head(rows).with_columns(id=pl.int_range(1, rows + 1)).write_csv(data)
        measured = run_mmp_measured("batch-inference", "--run-id", trained["iris"], "-d", str(data),
                                    "-o", str(tmp_path / "out.parquet"), "-q", cwd=workspace, env=store_env(workspace))
        assert measured["code"] == 0, measured["err"]
        peaks[rows] = measured["peak_rss_kb"]
        data.unlink()
    assert pq_rows(tmp_path / "out.parquet") == 4_000_000
    assert peaks[4_000_000] <= 1.5 * peaks[1_000_000], peaks


def pq_rows(path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows
