"""SQL sources: templates render with their parameters, and DuckDB (local files, S3) and PostgreSQL
read a query whole and in chunks, both equal to the table."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from mmp.io import sql_engines
from mmp.io.sql_source import QueryError, is_sql_file, iter_query, read_query, render

ROWS = pl.DataFrame({"id": list(range(1, 11)), "x": [i / 4 for i in range(10)],
                     "label": [f"l{i % 3}" for i in range(10)]})


def chunked(sql: str, connection: str | None = None, **kwargs) -> tuple[pl.DataFrame, list[int]]:
    tables = list(iter_query(sql, connection, chunk_rows=4, **kwargs))
    return pl.concat([pl.from_arrow(t) for t in tables]), [t.num_rows for t in tables]


def test_a_template_renders_with_its_parameters_and_keeps_its_lines():
    text = "SELECT *\n{% if recent %}\nFROM t WHERE day >= '{{ date }}'\n{% endif %}\n"
    sql = render(text, {"recent": True, "date": "2026-11-01"}, "q.sql")
    assert sql.splitlines()[2] == "FROM t WHERE day >= '2026-11-01'"
    assert is_sql_file("queries/train.sql") and is_sql_file("s3://b/q.SQL") and not is_sql_file("data/x.csv")


def test_a_missing_parameter_is_named_with_its_line_before_rendering():
    with pytest.raises(QueryError) as caught:
        render("SELECT *\nFROM t\nWHERE day = '{{ date }}' AND n > {{ n }}", {"n": 1}, "data.source: q.sql")
    assert caught.value.line == 3
    assert str(caught.value).startswith("data.source: q.sql, line 3: template parameter not given: date (given: n)")


def test_a_template_syntax_error_names_its_line():
    with pytest.raises(QueryError, match=r"^q.sql, line 2: template syntax error"):
        render("SELECT *\nFROM {{ t }\n", {}, "q.sql")


def test_duckdb_reads_local_parquet_files_by_glob_whole_and_in_chunks(tmp_path):
    (tmp_path / "d").mkdir()
    ROWS.head(6).write_parquet(tmp_path / "d" / "a.parquet")
    ROWS.tail(4).write_parquet(tmp_path / "d" / "b.parquet")
    sql = f"SELECT * FROM '{tmp_path}/d/*.parquet' ORDER BY id"
    assert read_query(sql).equals(ROWS)
    frame, sizes = chunked(sql)
    assert frame.equals(ROWS) and sizes == [4, 4, 2]


def test_duckdb_reads_a_csv_and_a_duckdb_file(tmp_path):
    import duckdb

    ROWS.write_csv(tmp_path / "rows.csv")
    assert read_query(f"SELECT * FROM read_csv_auto('{tmp_path}/rows.csv')").equals(ROWS)
    with duckdb.connect(str(tmp_path / "shop.duckdb")) as con:
        con.execute(f"CREATE TABLE rows AS SELECT * FROM '{tmp_path}/rows.csv'")
    assert read_query("SELECT * FROM rows ORDER BY id", f"duckdb:///{tmp_path}/shop.duckdb").equals(ROWS)


def test_duckdb_reads_parquet_on_s3_through_fsspec(s3_server):
    import io

    import s3fs

    options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": s3_server,
                                                                       "region_name": "us-east-1"}}
    fs = s3fs.S3FileSystem(**options)
    for name, part in (("a", ROWS.head(5)), ("b", ROWS.tail(5))):
        buffer = io.BytesIO()
        part.write_parquet(buffer)
        fs.pipe(f"mmp-test/sql/{name}.parquet", buffer.getvalue())
    sql = "SELECT * FROM read_parquet('s3://mmp-test/sql/*.parquet') ORDER BY id"
    assert read_query(sql, storage_options=options).equals(ROWS)
    frame, sizes = chunked(sql, storage_options=options)
    assert frame.equals(ROWS) and sizes == [4, 4, 2]


@pytest.fixture
def shop(postgres_server, postgres_db) -> str:
    """A database with table `sales` (ints, floats, numeric, text with '' and NULL, bool, date, timestamptz)."""
    database = postgres_db.rsplit("/", 1)[1]
    with postgres_server.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE sales (id int, amount float8, price numeric(8,2), name text, ok bool, "
                     "day date, at timestamptz)")
        conn.execute("INSERT INTO sales SELECT i, i * 1.5, i * 0.25, CASE WHEN i = 2 THEN '' WHEN i = 3 THEN NULL "
                     "ELSE 'n,\"' || i END, i % 2 = 0, DATE '2026-11-01' + i, "
                     "TIMESTAMPTZ '2026-11-01 10:00:00+00' + i * INTERVAL '1 hour' FROM generate_series(1, 10) i")
    return postgres_db


def expected_sales() -> pl.DataFrame:
    ids = list(range(1, 11))
    return pl.DataFrame({
        "id": pl.Series(ids, dtype=pl.Int32), "amount": [i * 1.5 for i in ids], "price": [i * 0.25 for i in ids],
        "name": ["" if i == 2 else None if i == 3 else f'n,"{i}' for i in ids],
        "ok": [i % 2 == 0 for i in ids], "day": [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in ids],
        "at": pl.Series([dt.datetime(2026, 11, 1, 10 + i) for i in ids]).dt.replace_time_zone("UTC"),
    })


def test_postgres_reads_a_table_whole_and_in_chunks_with_its_types(shop):
    sql = "SELECT * FROM sales ORDER BY id;"
    assert read_query(sql, shop).equals(expected_sales())
    frame, sizes = chunked(sql, shop)
    assert frame.equals(expected_sales()) and sizes == [4, 4, 2]
    empty = read_query("SELECT id, name FROM sales WHERE id < 0", shop)
    assert empty.height == 0 and empty.columns == ["id", "name"]


def test_the_sqlalchemy_path_for_other_dialects_reads_the_same_rows(shop):
    """BigQuery and other dialects go through SQLAlchemy; PostgreSQL exercises that code here."""
    tables = list(sql_engines.sqlalchemy_tables("SELECT id, amount, price, name, ok, day FROM sales ORDER BY id",
                                                shop, {}, 4, {}))
    frame = pl.concat([pl.from_arrow(t) for t in tables])
    assert [t.num_rows for t in tables] == [4, 4, 2]
    assert frame.cast({"id": pl.Int32}).equals(expected_sales().drop("at"))


def test_postgres_errors_name_the_line_and_never_the_password(postgres_server, shop):
    with pytest.raises(QueryError) as caught:
        read_query("SELECT id\nFROM nope", shop, where="data.source: q.sql")
    assert str(caught.value) == 'data.source: q.sql, line 2: postgresql says: relation "nope" does not exist'
    with pytest.raises(QueryError, match="cannot connect") as caught:
        read_query("SELECT 1", shop.replace(postgres_server.password, "wrong-password-123"))
    assert "password authentication failed" in str(caught.value) and "wrong-password-123" not in str(caught.value)
