"""Bad SQL sources exit 2 with one clear message naming the file and line (or the key), before any
MLflow run exists, and never show a password."""

from __future__ import annotations

import pytest

RECIPE = """\
name: sql_bad
task: classification
data:
  source: {source}
  params: {{min_id: 0}}
  entity_columns: [id]
  target: diagnosis
model:
  class_path: sklearn.tree.DecisionTreeClassifier
"""
ENV = """\
# @package _global_
mlflow:
  tracking_uri: ./mlruns
source:
  connection: {connection}
"""
WRONG_PASSWORD = "wrong-Pass-4242"


def no_runs(project) -> bool:
    import mlflow

    from mmp.io.tracking import mlflow_uri

    if not (project / "mlruns").exists():
        return True
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri(str(project / "mlruns")))
    return not client.search_runs([e.experiment_id for e in client.search_experiments()])


def write(project, name: str, text: str) -> None:
    (project / name).parent.mkdir(parents=True, exist_ok=True)
    (project / name).write_text(text)


def fail(mmp, project, *args: str, secret: str | None = None) -> str:
    result = mmp(*args)
    shown = result.out + result.err
    assert result.code == 2, shown
    assert "Traceback" not in shown and no_runs(project)
    assert secret is None or secret not in shown
    return result.err


# name -> (query file text, connection or None, what the message says)
DUCKDB_CASES = {
    "missing template parameter": ("SELECT *\nFROM read_csv_auto('data/breast_cancer.csv')\nWHERE id > {{ max_id }}\n",
                                   ["q.sql, line 3: template parameter not given: max_id (given: min_id)",
                                    "-p '{\"max_id\": value}'"]),
    "template syntax error": ("SELECT *\nFROM {{ table }\n", ["q.sql, line 2: template syntax error: unexpected '}'"]),
    "SQL syntax error": ("SELECT *\nFORM read_csv_auto('data/breast_cancer.csv')\n",
                         ["q.sql, line 2: duckdb says: Parser Error: syntax error"]),
    "unknown table": ("SELECT *\nFROM sales\n", ["q.sql, line 2: duckdb says: Catalog Error: Table with name sales"]),
    "missing data file": ("SELECT * FROM 'data/nope.parquet'\n", ["q.sql", "data/nope.parquet"]),
    "not a query": ("CREATE TABLE t (id int)\n", ["q.sql: the query's last statement is CREATE, not a SELECT"]),
}


@pytest.mark.parametrize("case", list(DUCKDB_CASES))
def test_a_bad_query_on_the_embedded_duckdb_exits_2_naming_file_and_line(project, mmp, case):
    text, expected = DUCKDB_CASES[case]
    write(project, "q.sql", text)
    write(project, "recipes/sql_bad.yaml", RECIPE.format(source="q.sql"))
    command = "train" if case == "unknown table" else "validate"  # validate runs the same load, without MLflow
    err = fail(mmp, project, command, "recipe=sql_bad")
    for words in expected:
        assert words in err


def test_config_mistakes_are_reported_at_compile_time(project, mmp):
    write(project, "recipes/sql_bad.yaml", RECIPE.format(source="queries/absent.sql"))
    assert "data.source: no such query file: queries/absent.sql" in fail(mmp, project, "compile", "recipe=sql_bad")
    assert "both data.source and data.query" in fail(mmp, project, "compile", "recipe=sql_bad", "+data.query=SELECT 1")
    err = fail(mmp, project, "train", "recipe=sql_bad", "~data.source", "+data.query='SELECT {{ x }}'")
    assert "data.query: line 1: template parameter not given: x" in err
    write(project, "q.sql", "SELECT 1 AS id\n")
    err = fail(mmp, project, "compile", "recipe=sql_bad", "data.source=q.sql", "+source.connection=bigquery://p/d")
    assert "source.connection: no SQLAlchemy dialect 'bigquery' is installed; install its package" in err
    err = fail(mmp, project, "compile", "recipe=sql_bad", "data.source=q.sql", "+source.connection=localhost:5432")
    assert "source.connection: 'localhost:5432' is not a database URL" in err


@pytest.fixture
def pg_env(project, postgres_server, postgres_db, monkeypatch):
    """env=pg: source.connection on the test's database, the password from $PGPASSWORD."""
    database = postgres_db.rsplit("/", 1)[1]
    with postgres_server.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE cancer (id int, x float8, diagnosis text)")
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    url = f"postgresql://mmp:${{oc.env:PGPASSWORD}}@127.0.0.1:{postgres_server.port}/{database}"
    write(project, "conf/env/pg.yaml", ENV.format(connection=url))
    write(project, "conf/env/pg_down.yaml", ENV.format(connection=url.replace(str(postgres_server.port), "1")))
    write(project, "recipes/sql_bad.yaml", RECIPE.format(source="q.sql"))
    return postgres_server.password


def test_postgres_failures_exit_2_with_the_line_and_no_password(project, mmp, pg_env, monkeypatch):
    write(project, "q.sql", "SELECT id, x, diagnosis\nFROM cancer\nWHERE nope > {{ min_id }}\n")
    err = fail(mmp, project, "validate", "recipe=sql_bad", "env=pg", secret=pg_env)
    assert 'data.source: q.sql, line 3: postgresql says: column "nope" does not exist' in err
    write(project, "q.sql", "SELECT id\nFROM sales\n")
    err = fail(mmp, project, "train", "recipe=sql_bad", "env=pg", secret=pg_env)
    assert 'q.sql, line 2: postgresql says: relation "sales" does not exist' in err
    write(project, "q.sql", "SELECT id,\nFROM cancer\n")
    assert "q.sql, line 2: postgresql says: syntax error at or near" in fail(mmp, project, "validate", "recipe=sql_bad",
                                                                              "env=pg", secret=pg_env)
    write(project, "q.sql", "SELECT * FROM cancer\n")
    err = fail(mmp, project, "train", "recipe=sql_bad", "env=pg_down", secret=pg_env)
    assert "cannot connect to postgresql://mmp:***@127.0.0.1:1/" in err and "Connection refused" in err
    monkeypatch.setenv("PGPASSWORD", WRONG_PASSWORD)
    err = fail(mmp, project, "train", "recipe=sql_bad", "env=pg", secret=WRONG_PASSWORD)
    assert "cannot connect" in err and 'password authentication failed for user "mmp"' in err


def test_p_keys_are_template_parameters_when_the_recipe_reads_a_query(project):
    from mmp.config.request import build_request

    write(project, "recipes/sql_bad.yaml", RECIPE.format(source="q.sql"))
    params = '{"min_id": 5, "model.params.max_depth": 3}'
    assert build_request(["recipe=sql_bad"], params_json=params).overrides[:2] == [
        "++data.params.min_id=5", "++model.params.max_depth=3"]
    assert build_request(["recipe=iris"], params_json=params).overrides[:2] == [
        "++model.params.min_id=5", "++model.params.max_depth=3"]
    assert "++data.params.d=1" in build_request(["recipe=iris"], data_uri="q.sql", params_json='{"d": 1}').overrides
