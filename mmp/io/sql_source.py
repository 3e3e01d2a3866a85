"""Rows from a SQL query: render a Jinja template, run it, stream the result as Arrow.

Where the query runs is a SQLAlchemy URL: none is an embedded DuckDB in memory (it reads local
files itself, and s3:// or gs:// through fsspec), `duckdb:///file.duckdb` a DuckDB file,
PostgreSQL goes through psycopg's COPY, any other dialect (BigQuery, ...) through SQLAlchemy with
a server-side cursor. Every failure is a UserError that names `where`, the line, and never a password.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, Iterator

from mmp.errors import UserError
from mmp.masking import scrub

_TEMPLATE_FILE = "<mmp-query>"  # the rendered template's frames carry this name: the line of a render error
_URL_IN_SQL = re.compile(r"\b([a-z][a-z0-9+]*)://", re.I)
_DUCKDB_LINE = re.compile(r"\bLINE (\d+):")


class QueryError(UserError):
    """A query that cannot be rendered or run: `where` (file or key), the `line`, the problem."""

    def __init__(self, where: str, problem: str, line: int | None = None) -> None:
        self.where, self.problem, self.line = where, problem, line
        super().__init__(f"{where}{f', line {line}' if line else ''}: {problem}")


def is_sql_file(uri: str | None) -> bool:
    """Whether a data URI names a query file (`.sql`) rather than data."""
    return bool(uri) and PurePosixPath(str(uri).split("?", 1)[0]).suffix.lower() == ".sql"


def read_template(uri: str, storage_options: dict[str, Any] | None = None, where: str = "data.source") -> str:
    """The text of the query file at `uri` (any fsspec URI)."""
    import fsspec

    try:
        with fsspec.open(uri, "rt", encoding="utf-8", **(storage_options or {})) as f:
            return f.read()
    except FileNotFoundError as exc:
        raise QueryError(where, f"no such query file: {scrub(uri)}") from exc
    except (OSError, UnicodeDecodeError, ImportError, ValueError) as exc:
        raise QueryError(where, f"cannot read the query file {scrub(uri)}: {type(exc).__name__}: {exc}") from exc


def _environment():
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    # No trim_blocks: a `{% if %}` line renders as an empty line, so line N of the query is line N of the file.
    # Sandboxed: a query file (-d may name any URI) reaches no Python internals through the template.
    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


def parameters(text: str, where: str) -> dict[str, int]:
    """The parameters a template uses, each with the line it is first used on."""
    import jinja2
    from jinja2 import meta, nodes

    try:
        tree = _environment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise QueryError(where, f"template syntax error: {exc.message}", exc.lineno) from exc
    lines: dict[str, int] = {}
    for node in tree.find_all(nodes.Name):
        lines.setdefault(node.name, node.lineno)
    return {name: lines.get(name, 1) for name in sorted(meta.find_undeclared_variables(tree))}


def render(text: str, params: dict[str, Any], where: str, hint: str = "") -> str:
    """The query `text` with its `{{ parameters }}` filled in from `params` (a missing one is named first)."""
    import traceback

    import jinja2

    used = parameters(text, where)
    missing = [name for name in used if name not in params]
    if missing:
        given = f"given: {', '.join(sorted(params))}" if params else "none is given"
        raise QueryError(where, f"template parameter{'s' if len(missing) > 1 else ''} not given: "
                         f"{', '.join(missing)} ({given}){'; ' + hint.replace('NAME', missing[0]) if hint else ''}",
                         used[missing[0]])
    env = _environment()
    try:
        template = env.template_class.from_code(env, env.compile(text, filename=_TEMPLATE_FILE), env.make_globals(None))
        sql = template.render(**params)
    except jinja2.TemplateError as exc:
        frames = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == _TEMPLATE_FILE]
        raise QueryError(where, f"template error: {exc}", frames[-1] if frames else None) from exc
    if not strip_sql(sql):
        raise QueryError(where, "the query is empty once rendered")
    return sql


def strip_sql(sql: str) -> str:
    """The query without trailing semicolons and blanks (COPY and subqueries take no `;`)."""
    return sql.strip().rstrip(";").rstrip()


def engine_of(connection: str | None) -> str:
    """duckdb | postgresql | sqlalchemy: which reader runs a query on `connection`."""
    if not connection:
        return "duckdb"
    scheme = connection.split("://", 1)[0].split("+", 1)[0].lower()
    return {"duckdb": "duckdb", "postgresql": "postgresql", "postgres": "postgresql"}.get(scheme, "sqlalchemy")


def iter_query(sql: str, connection: str | None = None, storage_options: dict[str, Any] | None = None,
               chunk_rows: int = 100_000, where: str = "query",
               column_types: dict[str, str] | None = None) -> Iterator[Any]:
    """The query's rows as pyarrow Tables of at most `chunk_rows` rows, streamed (bounded memory).
    `column_types` pins columns to "float" or "string", as `mmp.io.readers.iter_tables` does."""
    for table in _tables(sql, connection, storage_options or {}, chunk_rows, where):
        if table.num_rows:
            yield _pin(table, column_types or {})


def read_query(sql: str, connection: str | None = None, storage_options: dict[str, Any] | None = None,
               where: str = "query") -> Any:
    """The query's rows as one polars DataFrame."""
    import polars as pl
    import pyarrow as pa

    tables = list(_tables(sql, connection, storage_options or {}, 1_000_000, where))
    return pl.from_arrow(pa.concat_tables(tables, promote_options="permissive"))


def _tables(sql: str, connection: str | None, storage_options: dict[str, Any], chunk_rows: int,
            where: str) -> Iterator[Any]:
    """At least one table (an empty one carries the columns of a query with no rows)."""
    from mmp.io.sql_engines import READERS, database_errors, describe_error

    engine = engine_of(connection)
    sql = strip_sql(sql)
    state = {"connected": False}
    try:
        yield from READERS[engine](sql, connection, storage_options, chunk_rows, state)
    except QueryError as exc:  # a reader's own words, without the caller's `where`
        raise QueryError(exc.where or where, exc.problem, exc.line) from None
    except ImportError as exc:
        raise QueryError(where, f"the {engine} driver is not installed ({exc.name}): pip install 'mmp[sql-extras]'"
                         + (" or this dialect's SQLAlchemy package" if engine == "sqlalchemy" else "")) from None
    except database_errors() as exc:
        problem, line = describe_error(exc, engine, sql, connection, state["connected"])
        raise QueryError(where, problem, line) from None


def _pin(table: Any, column_types: dict[str, str]) -> Any:
    import pyarrow as pa

    for i, name in enumerate(table.column_names):
        kind = column_types.get(name)
        if kind:
            wanted = pa.float64() if kind == "float" else pa.string()
            if table.schema.field(i).type != wanted:
                table = table.set_column(i, name, table.column(i).cast(wanted))
    return table


def duckdb_line(message: str) -> int | None:
    """The `LINE n:` DuckDB puts under a parse or binding error."""
    match = _DUCKDB_LINE.search(message)
    return int(match.group(1)) if match else None


def url_protocols(sql: str) -> set[str]:
    """The fsspec protocols a DuckDB query reads from (s3, gs, ...), local and web ones aside."""
    return {p.lower() for p in _URL_IN_SQL.findall(sql)} - {"file", "http", "https"}
