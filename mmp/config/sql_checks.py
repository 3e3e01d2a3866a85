"""A recipe whose data is a query: one source, a template that renders, a connection mmp can use.

Checked at compile time, before anything runs: the query file (when it is on this disk) renders
with `data.params` (a missing parameter or a syntax error names the file and line), and
`source.connection` is a URL whose database driver is installed. Running the query is the load
stage's (`mmp.io.sql_source`): its errors name the file and line just as well.
"""

from __future__ import annotations

from typing import Any, Callable

from mmp.errors import Problem

Origin = Callable[[str], "str | None"]
MISSING_PARAMETER_HINT = "set data.params.NAME in the recipe, or pass -p '{\"NAME\": value}' on the command line"


def sql_problems(config: dict[str, Any], origin: Origin) -> list[Problem]:
    """Problems with a SQL source: both `data.source` and `data.query`, a template that does not
    render, an unusable `source.connection`."""
    from mmp.io.sql_source import is_sql_file

    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    env_source = config.get("source") if isinstance(config.get("source"), dict) else {}
    source, query = data.get("source"), data.get("query")
    problems = []
    if isinstance(query, str) and source:
        problems.append(Problem("data.query", "both data.source and data.query say where the data is",
                                "keep one: a file (data.source, .sql for a query file) or an inline query (data.query)",
                                origin("data.query")))
    connection = env_source.get("connection")
    sql_source = isinstance(query, str) or (isinstance(source, str) and is_sql_file(source))
    if isinstance(connection, str) and connection and sql_source:
        problems += connection_problems(connection, origin)
    if not sql_source or problems:
        return problems
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    if isinstance(query, str):
        return _template_problems(query, params, "data.query", "data.query", origin)
    text = _local_text(source)
    if text is None:
        return [Problem("data.source", f"no such query file: {source}",
                        "a path relative to the working directory, or any fsspec URI", origin("data.source"))]
    return _template_problems(text, params, source, "data.source", origin) if text else []


def _local_text(uri: str) -> str | None:
    """The text of a query file on this disk; '' for one elsewhere (read when the data loads); None if missing."""
    from pathlib import Path

    if "://" in uri and not uri.startswith("file://"):
        return ""
    path = Path(uri.removeprefix("file://"))
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _template_problems(text: str, params: dict[str, Any], where: str, key: str, origin: Origin) -> list[Problem]:
    from mmp.io.sql_source import QueryError, render

    try:
        render(text, params, where, hint=MISSING_PARAMETER_HINT)
    except QueryError as exc:
        line = f"line {exc.line}: " if exc.line else ""
        shown = f"{line}{exc.problem}" if key == "data.query" else str(exc)  # data.source: FILE, line N: ...
        return [Problem(key, shown, None, origin(key))]
    return []


def connection_problems(connection: str, origin: Origin) -> list[Problem]:
    """`source.connection` parses as a SQLAlchemy URL and its database driver is installed."""
    import importlib.util

    from mmp.io.sql_source import engine_of
    from mmp.masking import scrub

    path, shown = "source.connection", scrub(connection)
    engine = engine_of(connection)
    if "://" not in connection:
        return [Problem(path, f"'{shown}' is not a database URL",
                        "allowed: a SQLAlchemy URL such as postgresql://user:${oc.env:PGPASSWORD}@host:5432/db, "
                        "bigquery://project/dataset or duckdb:///file.duckdb; null for an embedded DuckDB", origin(path))]
    needs = {"duckdb": ("duckdb", "mmp[sql-extras]"), "postgresql": ("psycopg", "mmp[sql-extras]")}.get(engine)
    if needs and importlib.util.find_spec(needs[0]) is None:
        return [Problem(path, f"{engine} needs the '{needs[0]}' package, which is not installed",
                        f"pip install '{needs[1]}'", origin(path))]
    if engine != "sqlalchemy":
        return []
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(connection).get_dialect()
    except NoSuchModuleError:  # before ArgumentError, its base class
        dialect = connection.split("://", 1)[0]
        return [Problem(path, f"no SQLAlchemy dialect '{dialect}' is installed",
                        "install its package (BigQuery: pip install sqlalchemy-bigquery)", origin(path))]
    except ArgumentError as exc:
        return [Problem(path, f"'{shown}' is not a SQLAlchemy URL: {scrub(str(exc))}", None, origin(path))]
    return []
