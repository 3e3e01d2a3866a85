"""A CSV row with more or fewer fields than the header is bad input, named by its line: nothing
is trained, nothing is written."""

from __future__ import annotations

import io

import pytest

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
