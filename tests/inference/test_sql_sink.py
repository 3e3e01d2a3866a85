"""`mmp batch-inference` into SQL tables: PostgreSQL (a real server) and DuckDB files; replace, append
and upsert; a writer killed midway leaves the target as it was; bad destinations exit 2."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest

from tests.conftest import clean_env, mmp_in_process


def batch(workspace, *args, **env):
    from mmp.io.tracking import mlflow_uri

    return mmp_in_process("batch-inference", *args, "-q", cwd=workspace,
                          MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")), **env)


def rows(server, db_url: str, query: str) -> list[tuple]:
    with server.connect(db_url.rsplit("/", 1)[1]) as conn:
        return conn.execute(query).fetchall()


def tables(server, db_url: str) -> list[str]:
    return [r[0] for r in rows(server, db_url, "SELECT relname FROM pg_class c JOIN pg_namespace n ON "
                                                "n.oid = c.relnamespace WHERE nspname = 'public' AND relkind = 'r' ORDER BY 1")]


def test_replace_append_and_upsert_into_postgresql(workspace, trained, postgres_server, postgres_db):
    run_id, target = trained["model"], f"{postgres_db}/public.scores"
    first = batch(workspace, "--run-id", run_id, "-d", "data/breast_cancer.csv", "-o", target)
    assert first.code == 0, first.err
    assert postgres_server.password not in first.out + first.err and ":***@" in first.out
    assert batch(workspace, "--run-id", run_id, "-d", "data/breast_cancer.csv", "-o", target).code == 0
    columns = rows(postgres_server, postgres_db, "SELECT column_name, data_type FROM information_schema.columns "
                                                 "WHERE table_name = 'scores' ORDER BY ordinal_position")
    assert columns == [("id", "bigint"), ("prediction", "text"), ("probability", "double precision"),
                       ("run_id", "text"), ("predicted_at", "timestamp with time zone")]
    table = rows(postgres_server, postgres_db, "SELECT id, run_id FROM scores ORDER BY id")
    expected = pl.read_csv(workspace / "data" / "breast_cancer.csv")
    assert [r[0] for r in table] == sorted(expected["id"].to_list()) and {r[1] for r in table} == {run_id}

    # append keeps both jobs (two timestamps); the env form names the table
    env_args = [f"output.connection={postgres_db}", "output.table=scores", "output.mode=append"]
    assert batch(workspace, "--run-id", run_id, "-d", "data/breast_cancer.csv", *env_args).code == 0
    assert rows(postgres_server, postgres_db, "SELECT count(*), count(DISTINCT predicted_at) FROM scores") == [(1138, 2)]
    # upsert: the table mmp creates gets a unique index on the entity columns; a second job updates rows
    head = workspace / "bc_head.csv"
    expected.head(100).write_csv(head)
    upsert = f"{postgres_db}/public.latest"
    assert batch(workspace, "--run-id", run_id, "-d", "data/breast_cancer.csv", "-o", upsert, "output.mode=upsert").code == 0
    assert batch(workspace, "--run-id", run_id, "-d", str(head), "-o", upsert, "output.mode=upsert").code == 0
    counts = rows(postgres_server, postgres_db, "SELECT count(*), count(DISTINCT id), count(DISTINCT predicted_at) FROM latest")
    assert counts == [(569, 569, 2)]
    # upsert into a table without a unique index on the entity columns: refused, nothing written
    refused = batch(workspace, "--run-id", run_id, "-d", str(head), "-o", target, "output.mode=upsert")
    assert refused.code == 2 and "unique index or constraint on exactly (id)" in refused.err
    assert rows(postgres_server, postgres_db, "SELECT count(*) FROM scores") == [(1138,)]
    assert tables(postgres_server, postgres_db) == ["latest", "scores"]  # no staging table left


def test_a_sigkilled_writer_leaves_the_target_as_it_was_and_the_next_writer_sweeps(
        workspace, trained, postgres_server, postgres_db, tmp_path):
    from mmp.io.tracking import mlflow_uri

    run_id, target = trained["iris"], f"{postgres_db}/public.iris_scores"
    assert batch(workspace, "--run-id", run_id, "-d", "data/iris.csv", "-o", target).code == 0
    before = rows(postgres_server, postgres_db, "SELECT * FROM iris_scores ORDER BY id")
    big = tmp_path / "iris_big.csv"
    iris = pl.read_csv(workspace / "data" / "iris.csv")
    pl.concat([iris] * 4000).with_columns(id=pl.Series(np.arange(600_000))).write_csv(big)
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")))
    proc = subprocess.Popen([sys.executable, "-m", "mmp", "batch-inference", "--run-id", run_id, "-d", str(big),
                             "-o", target, "--chunk-rows", "20000", "-q"], cwd=workspace, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, staged = time.monotonic() + 120, []
    while time.monotonic() < deadline and not staged:
        assert proc.poll() is None, proc.communicate()
        staged = [t for t in tables(postgres_server, postgres_db) if "__mmp_staging_" in t]
        if staged and rows(postgres_server, postgres_db, f'SELECT count(*) FROM "{staged[0]}"')[0][0] == 0:
            staged = []  # created, no chunk copied yet
        time.sleep(0.05)
    assert staged, "no staging table appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert rows(postgres_server, postgres_db, "SELECT * FROM iris_scores ORDER BY id") == before
    assert tables(postgres_server, postgres_db) == sorted(["iris_scores", staged[0]])

    again = batch(workspace, "--run-id", run_id, "-d", "data/iris.csv", "-o", target)
    assert again.code == 0, again.err
    assert tables(postgres_server, postgres_db) == ["iris_scores"]
    after = rows(postgres_server, postgres_db, "SELECT * FROM iris_scores ORDER BY id")
    assert len(after) == 150 and after[0][-1] > before[0][-1]  # a newer predicted_at


def test_duckdb_file_replace_append_upsert(workspace, trained, tmp_path):
    import duckdb

    run_id, db = trained["iris"], tmp_path / "out" / "preds.duckdb"
    target = f"duckdb:///{db}/scores"  # an absolute path: duckdb:////...
    assert batch(workspace, "--run-id", run_id, "-d", "data/iris.csv", "-o", target).code == 0
    assert batch(workspace, "--run-id", run_id, "-d", "data/iris.csv", "-o", target, "output.mode=append").code == 0
    env_args = [f"output.connection=duckdb:///{db}", "output.table=main.latest", "output.mode=upsert"]
    assert batch(workspace, "--run-id", run_id, "-d", "data/iris.csv", *env_args).code == 0
    result = batch(workspace, "--run-id", run_id, "-d", "data/iris.csv", *env_args)
    assert result.code == 0, result.err
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT predicted_at) FROM scores").fetchone() == (300, 2)
        assert con.execute("SELECT count(*), count(DISTINCT predicted_at) FROM latest").fetchone() == (150, 1)
        columns = [r[0] for r in con.execute("DESCRIBE scores").fetchall()]
    assert columns == ["id", "prediction", "probability_setosa", "probability_versicolor", "probability_virginica",
                       "run_id", "predicted_at"]


def test_other_dialects_go_through_sqlalchemy_replace_append_and_refuse_upsert(workspace, trained, tmp_path):
    """SQLite stands in for BigQuery, Snowflake, MySQL, ...: the same SQLAlchemy staging-table path."""
    import sqlite3

    run_id, db = trained["iris"], tmp_path / "preds.db"
    target = f"sqlite:///{db}/scores"
    assert batch(workspace, "--run-id", run_id, "-d", "data/iris.csv", "-o", target).code == 0
    assert batch(workspace, "--run-id", run_id, "-d", "data/iris.csv", "-o", target, "output.mode=append").code == 0
    assert batch(workspace, "--run-id", run_id, "-d", "data/iris.csv", "-o", target).code == 0  # replace
    refused = batch(workspace, "--run-id", run_id, "-d", "data/iris.csv", "-o", target, "output.mode=upsert")
    assert refused.code == 2 and "upsert is supported on PostgreSQL and DuckDB tables, not sqlite" in refused.err
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*), count(DISTINCT run_id) FROM scores").fetchone() == (150, 1)
        columns = [r[1] for r in con.execute("PRAGMA table_info(scores)")]
        staging = con.execute("SELECT name FROM sqlite_master WHERE name LIKE '%mmp_staging%'").fetchall()
    assert columns[:2] == ["id", "prediction"] and columns[-2:] == ["run_id", "predicted_at"]
    assert staging == []


@pytest.mark.parametrize("case, message", [
    ("unreachable", "cannot connect to postgresql+psycopg://mmp:***@127.0.0.1:1/"),
    ("wrong password", "password authentication failed for user"),
    ("unknown schema", "schema 'nosuch' does not exist"),
    ("bad table name", "'public.pre-ds' is not a table name"),
    ("no table", "name the database and the table"),
    ("mode not allowed", "output.mode: 'merge' is not allowed"),
    ("mode on a file", "output.mode: 'append' applies to SQL tables"),
    ("upsert without entity columns", "upsert needs the entity column id in the data"),
    ("missing column", "the table has no column 'probability' (double precision)"),
    ("wrong type", "column 'prediction' is bigint in the table; the output is text"),
    ("table without connection", "output.connection: missing; output.table is set"),
])
def test_bad_sql_destinations_exit_2_and_write_nothing(workspace, trained, postgres_server, postgres_db, tmp_path,
                                                         case, message):
    wrong = postgres_db.replace(postgres_server.password, "not-the-password")
    no_id = tmp_path / "no_id.csv"
    pl.read_csv(workspace / "data" / "breast_cancer.csv").drop("id").write_csv(no_id)
    with postgres_server.connect(postgres_db.rsplit("/", 1)[1], autocommit=True) as conn:
        conn.execute("CREATE TABLE narrow (id bigint, prediction text, run_id text, predicted_at timestamptz)")
        conn.execute("CREATE TABLE typed (id bigint, prediction bigint, probability float8, run_id text, "
                     "predicted_at timestamptz)")
    args = {
        "unreachable": ["-o", postgres_db.rsplit("@", 1)[0] + "@127.0.0.1:1/x/public.t"],
        "wrong password": ["-o", f"{wrong}/public.t"],
        "unknown schema": ["-o", f"{postgres_db}/nosuch.preds"],
        "bad table name": ["-o", f"{postgres_db}/public.pre-ds"],
        "no table": ["-o", postgres_db],
        "mode not allowed": ["-o", f"{postgres_db}/public.t", "output.mode=merge"],
        "mode on a file": ["-o", str(tmp_path / "p.parquet"), "output.mode=append"],
        "upsert without entity columns": ["-d", str(no_id), "-o", f"{postgres_db}/public.t", "output.mode=upsert"],
        "missing column": ["-o", f"{postgres_db}/public.narrow"],
        "wrong type": ["-o", f"{postgres_db}/public.typed"],
        "table without connection": ["output.table=t"],
    }[case]
    data = [] if "-d" in args else ["-d", "data/breast_cancer.csv"]
    result = batch(workspace, "--run-id", trained["model"], *data, *args)
    assert result.code == 2, result.err
    assert message in result.err and "Traceback" not in result.err, result.err
    assert postgres_server.password not in result.err and "not-the-password" not in result.err
    assert tables(postgres_server, postgres_db) == ["narrow", "typed"]
    assert rows(postgres_server, postgres_db, "SELECT (SELECT count(*) FROM narrow) + (SELECT count(*) FROM typed)") == [(0,)]
