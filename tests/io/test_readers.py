"""A CSV row with more or fewer fields than the header is bad input, named by its line: nothing
is trained, nothing is written."""

from __future__ import annotations

import io

import pytest

from mmp.io.readers import ragged_row
from tests.conftest import clean_env, run_mmp


def truncated(source, target, line: int) -> None:
    """`source` with its line `line` (1-based, the header is line 1) cut after its second field."""
    lines = source.read_text().splitlines()
    lines[line - 1] = ",".join(lines[line - 1].split(",")[:2])
    target.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("text, expected", [
    (b"a,b,c\n1,2,3\n4,5\n6,7,8\n", "line 3 has 2 fields, the header has 3: '4,5'"),
    (b'a,b,c\n1,2,3\n"x,y",5,6,7\n', "line 3 has 4 fields, the header has 3"),
    (b'a,b,c\n"x,y",2,3\n\n4,5,6\n', None),  # quoted commas and blank lines are fine
])
def test_ragged_rows_are_found_and_named_by_line(text, expected):
    from mmp.io.readers import ragged_row

    found = ragged_row(io.BytesIO(text))
    assert (found is None) if expected is None else found.startswith(expected)


@pytest.mark.parametrize("text, agree", [
    (b"a,b,c\n1,2,3\n4,5,6\n", True),
    (b"a,b,c\n1,2,3\n4,5,6", True),  # no line break after the last row
    (b"a,b,c\n", True),
    (b"a,b,c\n1,2,3\n4,5\n", False),
    (b"a,b,c\r\n1,2,3\r\n4,,\r\n", True),  # empty fields are values, not missing fields
    (b'a,b,c\n"x,y",2,3\n', False),  # quotes: only a parser can tell
    (b"a,b,c\n1,2,3\n\n4,5,6\n", False),  # a blank line: the parser skips it, the count cannot
])
def test_counting_commas_vouches_only_for_files_a_parser_would_accept(tmp_path, text, agree):
    from mmp.io.readers import _ragged_row_of_path, fields_agree

    path = tmp_path / "data.csv"
    path.write_bytes(text)
    assert fields_agree(str(path), block_size=4) is agree  # tiny blocks: lines cut across blocks
    if agree:
        with open(path, "rb") as f:
            assert ragged_row(f) is None  # what the full parse would have said
    elif b"4,5\n" in text:
        assert _ragged_row_of_path(str(path)).startswith("line 3 has 2 fields")


def test_a_short_row_hidden_by_a_long_one_is_still_refused(tmp_path):
    """The counts add up (2 + 4 fields = 2 x 3), but the reader refuses the long row itself."""
    import polars as pl

    from mmp.io.readers import fields_agree, iter_tables

    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n")
    assert fields_agree(str(path))
    with pytest.raises(pl.exceptions.ComputeError):
        list(iter_tables(str(path), chunk_rows=10))


def test_training_on_a_truncated_line_exits_2_naming_it(project, mmp):
    truncated(project / "data" / "iris.csv", project / "cut.csv", line=42)
    for command in ("validate", "train"):
        result = mmp(command, "recipe=iris", "-d", "cut.csv", "mlflow.tracking_uri=./mlruns-ragged")
        assert result.code == 2, result.err
        assert "cut.csv: line 42 has 2 fields, the header has 6" in result.err
    import mlflow

    store = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlruns-ragged' / 'mlflow.db'}")
    experiments = [e.experiment_id for e in store.search_experiments()]
    assert experiments and store.search_runs(experiments) == []  # the store was reached; no run was created


@pytest.mark.slow
def test_batch_inference_on_a_truncated_line_exits_2_and_writes_nothing(workspace, trained, tmp_path):
    from mmp.io.tracking import mlflow_uri

    truncated(workspace / "data" / "iris.csv", tmp_path / "cut.csv", line=120)
    out = tmp_path / "out" / "preds.parquet"
    result = run_mmp("batch-inference", "--run-id", trained["iris"], "-d", str(tmp_path / "cut.csv"), "-o", str(out),
                     "--chunk-rows", "10", cwd=workspace,
                     env=clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns"))))
    assert result.code == 2, result.err
    assert "line 120 has 2 fields, the header has 6" in result.err
    assert not out.exists() and not any(p.name.endswith(".tmp") for p in out.parent.iterdir())
