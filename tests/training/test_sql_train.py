"""Training and batch inference from templated SQL queries: PostgreSQL with `-p`, the embedded DuckDB."""

from __future__ import annotations

import json

import polars as pl
import pytest

RECIPE = """\
name: cancer_sql
task: classification
data:
  source: queries/train.sql
  params: {min_id: 0}
  entity_columns: [id]
  target: diagnosis
model:
  class_path: sklearn.tree.DecisionTreeClassifier
  params: {max_depth: 3, random_state: 0}
"""
ENV = """\
# @package _global_
mlflow:
  tracking_uri: ./mlruns
source:
  connection: postgresql://mmp:${{oc.env:PGPASSWORD}}@127.0.0.1:{port}/{database}
"""


@pytest.fixture
def pg_project(project, postgres_server, postgres_db, monkeypatch):
    """The project with table `cancer` (data/breast_cancer.csv) in PostgreSQL, env=pg, recipe=cancer_sql."""
    frame = pl.read_csv(project / "data" / "breast_cancer.csv")
    database = postgres_db.rsplit("/", 1)[1]
    columns = ", ".join(f'"{c}" {"int" if c == "id" else "text" if c == "diagnosis" else "float8"}' for c in frame.columns)
    with postgres_server.connect(database, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE cancer ({columns})")
        with conn.cursor().copy("COPY cancer FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            copy.write((project / "data" / "breast_cancer.csv").read_bytes())
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    (project / "conf" / "env" / "pg.yaml").write_text(ENV.format(port=postgres_server.port, database=database))
    (project / "recipes" / "cancer_sql.yaml").write_text(RECIPE)
    (project / "queries").mkdir()
    (project / "queries" / "train.sql").write_text("SELECT *\nFROM cancer\nWHERE id > {{ min_id }}\n")
    return postgres_server.password


def run_of(project, run_id: str):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    client = mlflow.MlflowClient(tracking_uri=mlflow_uri(str(project / "mlruns")))
    return client, client.get_run(run_id)


def test_a_templated_postgres_query_trains_with_p_and_logs_the_query(pg_project, project, mmp, tmp_path):
    password = pg_project
    runs = {}
    for min_id in (100, 200):
        result = mmp("train", "recipe=cancer_sql", "env=pg", "-q", "-p", json.dumps({"min_id": min_id}))
        assert result.code == 0, result.err
        assert password not in result.out + result.err
        runs[min_id] = result.out.split()[-1]
    client, first = run_of(project, runs[100])
    _, second = run_of(project, runs[200])
    assert first.data.params["data.params.min_id"] == "100"
    assert first.data.params["split.train_rows"] != second.data.params["split.train_rows"]
    assert first.data.tags["mmp.data_source"] == "queries/train.sql"
    assert first.data.tags["mmp.data_fingerprint"] != second.data.tags["mmp.data_fingerprint"]
    query = client.download_artifacts(runs[100], "data/query.sql", str(tmp_path))
    assert open(query).read() == "SELECT *\nFROM cancer\nWHERE id > 100\n"
    config = open(client.download_artifacts(runs[100], "mmp/config.yaml", str(tmp_path / "c"))).read()
    assert "${oc.env:PGPASSWORD}" in config and password not in config
    assert password not in json.dumps([first.data.params, first.data.tags])

    (project / "queries" / "score.sql").write_text("SELECT * FROM cancer WHERE id <= {{ max_id }} ORDER BY id\n")
    result = mmp("batch-inference", "--run-id", runs[100], "env=pg", "-d", "queries/score.sql", "-p",
                 '{"max_id": 50}', "-o", "scored.csv", "--chunk-rows", "20", "-q")
    assert result.code == 0, result.err
    scored = pl.read_csv(project / "scored.csv")
    assert scored["id"].to_list() == list(range(1, 51)) and scored.columns[:2] == ["id", "prediction"]
    result = mmp("batch-inference", "--run-id", runs[100], "env=pg", "-d", "queries/score.sql", "-o", "bad.csv")
    assert result.code == 2 and "queries/score.sql, line 1: template parameter not given: max_id" in result.err
    assert not (project / "bad.csv").exists()


def test_the_duckdb_example_recipe_trains_with_no_server(project, mmp):
    result = mmp("train", "recipe=sql/breast_cancer_duckdb", "-p", '{"min_id": 100, "model.params.n_estimators": 10}')
    assert result.code == 0, result.err
    assert "469 rows x 32 columns from recipes/sql/breast_cancer.sql" in result.err
