"""The databases a query runs on, each streaming pyarrow Tables: DuckDB, PostgreSQL, any SQLAlchemy dialect.

Each reader is `(sql, connection, storage_options, chunk_rows, state) -> Iterator[pa.Table]`, yields at
least one table (an empty one carries a row-less result's columns) and sets `state["connected"]` once
the database answered, so a failure before it reads "cannot connect" and one after it names the line.
"""

from __future__ import annotations

import io
import sys
from typing import Any, Iterator

from mmp.masking import scrub

# PostgreSQL type OIDs -> Arrow types for COPY's CSV; any other type arrives as text.
_PG_TYPES = {16: "bool_", 20: "int64", 21: "int16", 23: "int32", 26: "int64", 700: "float32", 701: "float64",
             1700: "float64", 1082: "date32", 1114: "timestamp", 1184: "timestamptz"}
_WRAP = "SELECT * FROM ("  # the query's columns and types, without running it: (query) AS q LIMIT 0


def duckdb_tables(sql: str, connection: str | None, storage_options: dict[str, Any], chunk_rows: int,
                  state: dict) -> Iterator[Any]:
    """DuckDB in memory (no connection) or a `duckdb:///file.duckdb`, read only; s3:// gs:// ... via fsspec."""
    import duckdb
    import pyarrow as pa

    from mmp.io.sql_source import QueryError, url_protocols

    path = ":memory:"
    if connection:
        path = connection.split("://", 1)[1][1:] or ":memory:"  # duckdb:///x.duckdb -> x.duckdb
    try:
        con = duckdb.connect(path, read_only=path != ":memory:")
    except duckdb.Error as exc:
        raise QueryError("", f"cannot open the DuckDB database {path} (source.connection): {_first_line(exc)}") from None
    state["connected"] = True
    try:
        for protocol in sorted(url_protocols(sql)):
            con.register_filesystem(_filesystem(protocol, storage_options))
        statements = con.extract_statements(sql)
        last = statements[-1].type.name if statements else "none"
        if last not in ("SELECT", "MULTI"):  # MULTI: PIVOT and friends
            raise QueryError("", f"the query's last statement is {last}, not a SELECT: it returns no rows to learn from")
        relation = con.sql(sql)
        reader = (getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader)(chunk_rows)
        empty = True
        for batch in reader:
            if batch.num_rows:
                empty = False
                yield pa.Table.from_batches([batch])
        if empty:
            yield reader.schema.empty_table()
    finally:
        con.close()


def _filesystem(protocol: str, storage_options: dict[str, Any]) -> Any:
    import fsspec

    from mmp.io.sql_source import QueryError

    try:
        return fsspec.filesystem(protocol, **storage_options)
    except (ImportError, ValueError) as exc:
        raise QueryError("", f"cannot read {protocol}:// from a query: {exc}; for s3:// or gs:// install "
                         "'mmp[cloud-extras]'") from None


def postgres_tables(sql: str, connection: str, storage_options: dict[str, Any], chunk_rows: int,
                    state: dict) -> Iterator[Any]:
    """PostgreSQL: `COPY (query) TO STDOUT` as CSV, parsed by pyarrow's streaming reader with the
    query's own column types (1.6x the rows/s of a server-side cursor: scripts/bench_sql_source.py)."""
    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from mmp.io.readers import _rechunk

    with psycopg.connect(libpq_url(connection), connect_timeout=10) as conn:
        state["connected"] = True
        conn.execute("SET TimeZone = 'UTC'")  # timestamptz text as +00, one zone for every row
        cursor = conn.execute(f"{_WRAP}{sql}\n) AS mmp_query LIMIT 0")
        schema = pa.schema([(c.name, _arrow_type(c.type_code)) for c in cursor.description])
        with conn.cursor().copy(f"COPY ({sql}\n) TO STDOUT WITH (FORMAT csv)") as copy:
            stream = io.BufferedReader(_CopyFile(copy), 1 << 20)
            if not stream.peek(1):  # no rows: pyarrow refuses an empty CSV
                yield schema.empty_table()
                return
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(column_names=schema.names, block_size=8 << 20),
                convert_options=pacsv.ConvertOptions(
                    column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False,
                    true_values=["t"], false_values=["f"]),
            )
            yield from _rechunk(reader, chunk_rows)


def postgres_cursor_tables(sql: str, connection: str, storage_options: dict[str, Any], chunk_rows: int,
                           state: dict) -> Iterator[Any]:
    """PostgreSQL through a psycopg server-side cursor (the slower alternative, kept for the benchmark)."""
    import psycopg

    with psycopg.connect(libpq_url(connection), connect_timeout=10) as conn:
        state["connected"] = True
        with conn.cursor(name="mmp_query") as cursor:
            cursor.itersize = chunk_rows
            cursor.execute(sql)
            names = [c.name for c in cursor.description]
            yield from _row_tables(names, lambda: cursor.fetchmany(chunk_rows))


def sqlalchemy_tables(sql: str, connection: str, storage_options: dict[str, Any], chunk_rows: int,
                      state: dict) -> Iterator[Any]:
    """Any SQLAlchemy dialect (BigQuery, ...): a server-side cursor (`stream_results`), `chunk_rows` at a time."""
    from sqlalchemy import create_engine

    engine = create_engine(sqlalchemy_url(connection))
    try:
        with engine.connect() as conn:
            state["connected"] = True
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).exec_driver_sql(sql)
            yield from _row_tables(list(result.keys()), lambda: result.fetchmany(chunk_rows))
    finally:
        engine.dispose()


def _row_tables(names: list[str], fetch: Any) -> Iterator[Any]:
    import decimal

    import pyarrow as pa

    first = True
    while True:
        rows = fetch()
        if not rows and not first:
            return
        columns = list(zip(*rows)) if rows else [()] * len(names)
        arrays = []
        for column in columns:
            if any(isinstance(v, decimal.Decimal) for v in column):  # NUMERIC: a model wants floats
                column = [None if v is None else float(v) for v in column]
            arrays.append(pa.array(column))
        yield pa.table(dict(zip(names, arrays))) if names else pa.table({})
        first = False
        if not rows:
            return


class _CopyFile(io.RawIOBase):
    """psycopg's COPY stream as a read-only file, for pyarrow's CSV reader."""

    def __init__(self, copy: Any) -> None:
        self.copy, self.pending = copy, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # COPY sends one message per row: fill the whole buffer from many of them per call.
        view, filled = memoryview(buffer).cast("B"), 0
        while filled < len(view):
            data = self.pending or self.copy.read()
            if not data:
                break
            n = min(len(data), len(view) - filled)
            view[filled:filled + n] = data[:n]
            filled += n
            self.pending = data[n:] if n < len(data) else b""
        return filled


def _arrow_type(oid: int) -> Any:
    import pyarrow as pa

    name = _PG_TYPES.get(oid)
    if name == "timestamp":
        return pa.timestamp("us")
    if name == "timestamptz":
        return pa.timestamp("us", tz="UTC")
    return getattr(pa, name)() if name else pa.string()


def libpq_url(connection: str) -> str:
    """A SQLAlchemy PostgreSQL URL (`postgresql+psycopg://...`) as libpq takes it (`postgresql://...`)."""
    return "postgresql://" + connection.split("://", 1)[1]


def sqlalchemy_url(connection: str) -> str:
    """`postgresql://` means psycopg (3) here, not SQLAlchemy's default psycopg2, which mmp does not install."""
    scheme, rest = connection.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else connection


READERS = {"duckdb": duckdb_tables, "postgresql": postgres_tables, "sqlalchemy": sqlalchemy_tables}


def database_errors() -> tuple[type, ...]:
    """The exception types that mean "the database said no" (of the drivers loaded so far)."""
    found: list[type] = []
    for module, name in (("duckdb", "Error"), ("psycopg", "Error"), ("sqlalchemy.exc", "SQLAlchemyError"),
                         ("pyarrow.lib", "ArrowInvalid")):
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found) or (OSError,)


def describe_error(exc: BaseException, engine: str, sql: str, connection: str | None,
                   connected: bool) -> tuple[str, int | None]:
    """What went wrong in one line (no password) and the query line it points at, if any."""
    from mmp.io.sql_source import duckdb_line

    inner = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's exception
    message = scrub(_first_line(inner), _password_of(connection))
    if not connected:
        shown = scrub(connection or "", _password_of(connection))
        return f"cannot connect to {shown} (source.connection): {message}", None
    line = None
    position = getattr(getattr(inner, "diag", None), "statement_position", None)
    if position:  # PostgreSQL: a character offset, into our wrapper when describing
        offset = int(position) - 1
        offset -= len(_WRAP) if offset >= len(_WRAP) else 0
        line = sql[:max(offset, 0)].count("\n") + 1
    elif engine == "duckdb":
        line = duckdb_line(str(inner)) or _line_naming(sql, message)
        hint = next((x.strip() for x in str(inner).splitlines() if x.strip().startswith(("Did you mean", "Candidate"))
                     and not any(f'"{p}' in x for p in ("pg_", "duckdb_", "sqlite_", "information_schema"))), None)
        message += f" {hint}" if hint else ""
    return f"{engine} says: {message}", line


def _line_naming(sql: str, message: str) -> int | None:
    """The first line of `sql` that holds the name an error message quotes (DuckDB gives no position)."""
    import re

    names = re.findall(r'"([^"]+)"', message) + re.findall(r"with name (\S+?) does not exist", message)
    for name in names:
        for number, text in enumerate(sql.splitlines(), 1):
            if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text, re.I):
                return number
    return None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _password_of(connection: str | None) -> set[str]:
    from mmp.masking import url_secrets

    return {s for s in url_secrets(connection or "") if s}
