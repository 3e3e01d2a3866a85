"""`mmp validate`: the config, and with data at hand, the columns the recipe names."""

from __future__ import annotations

import polars as pl


def test_valid_recipe_and_data(project, mmp):
    result = mmp("validate", "recipe=model")
    assert result.code == 0, result.err
    assert "569 rows x 32 columns" in result.out


def test_missing_columns_are_listed_with_the_available_ones(project, mmp):
    result = mmp("validate", "recipe=diabetes", "data.target=outcome", "preprocess.2.columns=[gender,sex]")
    assert result.code == 2
    assert "data.target: column not in the data: outcome" in result.err
    assert "preprocess.2.columns: column not in the data: gender" in result.err
    assert "available: id, age, sex, bmi" in result.err


def test_data_flag_points_at_other_data(project, mmp):
    pl.read_csv("data/iris.csv").drop("petal_width_cm").write_parquet("iris_small.parquet")
    result = mmp("validate", "recipe=iris", "-d", "iris_small.parquet", "data.features=[sepal_length_cm,petal_width_cm]")
    assert result.code == 2 and "data.features: column not in the data: petal_width_cm" in result.err


def test_text_column_without_an_encoder_is_reported(project, mmp):
    frame = pl.read_csv("data/iris.csv").with_columns(colour=pl.lit("red"))
    frame.write_csv("iris_colour.csv")
    result = mmp("validate", "recipe=iris", "-d", "iris_colour.csv")
    assert result.code == 2 and "text column with no encoding step: colour" in result.err
    ok = mmp("validate", "recipe=iris", "-d", "iris_colour.csv", "+preprocess=[{type: one_hot, columns: [colour]}]")
    assert ok.code == 0, ok.err


def test_temporal_column_must_parse(project, mmp):
    frame = pl.read_csv("data/diabetes.csv")
    frame.with_columns(seen=pl.lit("last tuesday")).write_csv("visits.csv")
    args = ["recipe=diabetes", "-d", "visits.csv", "data.split.strategy=temporal", "+data.split.time_column=seen"]
    result = mmp("validate", *args)
    assert result.code == 2 and "data.split.time_column: column 'seen' does not parse" in result.err
    dates = pl.date_range(pl.date(2020, 1, 1), pl.date(2021, 12, 31), eager=True).head(frame.height).cast(pl.Utf8)
    frame.with_columns(seen=dates).write_csv("visits.csv")
    assert mmp("validate", *args).code == 0


def test_single_class_target_is_reported(project, mmp):
    pl.read_csv("data/iris.csv").with_columns(species=pl.lit("setosa")).write_csv("one_class.csv")
    result = mmp("validate", "recipe=iris", "-d", "one_class.csv")
    assert result.code == 2 and "data.target: column 'species' has fewer than two classes" in result.err


def test_unreadable_data_is_a_clear_error(project, mmp):
    result = mmp("validate", "recipe=iris", "-d", "no/such/file.csv")
    assert result.code == 2 and "no such file: no/such/file.csv" in result.err
    (project / "garbage.parquet").write_bytes(b"not a parquet file at all")
    result = mmp("validate", "recipe=iris", "-d", "garbage.parquet")
    assert result.code == 2 and "cannot read 'garbage.parquet' as parquet" in result.err


def test_memory_filesystem_data(project, mmp):
    import fsspec

    with fsspec.open("memory://bucket/iris.csv", "wb") as f:
        f.write((project / "data" / "iris.csv").read_bytes())
    result = mmp("validate", "recipe=iris", "-d", "memory://bucket/iris.csv")
    assert result.code == 0, result.err


def test_no_data_flag_skips_reading(project, mmp):
    assert mmp("validate", "recipe=iris", "-d", "no/such/file.csv", "--no-data").code == 0


def test_header_only_csv_says_the_data_has_no_rows(project, mmp):
    header = (project / "data" / "iris.csv").read_text().splitlines()[0]
    (project / "empty.csv").write_text(header + "\n")
    for command in ("validate", "train"):
        result = mmp(command, "recipe=iris", "-d", "empty.csv", "mlflow.tracking_uri=./mlruns-empty")
        assert result.code == 2, result.err
        assert "data.source: the data has 0 rows" in result.err, result.err
        assert "fewer than two classes" not in result.err and "no encoding step" not in result.err
