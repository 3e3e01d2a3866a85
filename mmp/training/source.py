"""The recipe's data: a file read with polars, or a query rendered and run (`data.source: x.sql`, `data.query`)."""

from __future__ import annotations

from typing import Any

from mmp.config.spec import RunSpec
from mmp.config.sql_checks import MISSING_PARAMETER_HINT
from mmp.errors import UserError

QUERY_ARTIFACT = "data/query.sql"


def is_query(spec: RunSpec) -> bool:
    """Whether the recipe's data comes from a SQL query."""
    from mmp.io.sql_source import is_sql_file

    return spec.data.query is not None or is_sql_file(spec.data.source)


def source_label(spec: RunSpec, limit: int = 200) -> str:
    """The data source as progress lines and the `mmp.data_source` tag show it (secrets masked)."""
    from mmp.masking import scrub

    data = spec.data
    if data.query is not None:
        text = " ".join(data.query.split())
        return scrub(f"data.query: {text[:limit]}{'...' if len(text) > limit else ''}")
    return scrub(data.source or "")


def rendered_query(spec: RunSpec) -> str:
    """The recipe's query with `data.params` filled in (a UserError naming the file and line if it cannot be)."""
    from mmp.io.sql_source import read_template, render

    data = spec.data
    where = "data.query" if data.query is not None else f"data.source: {data.source}"
    text = data.query if data.query is not None else read_template(data.source, spec.source.storage_options, where)
    return render(text, data.params, where, hint=MISSING_PARAMETER_HINT)


def load_data(spec: RunSpec) -> tuple[Any, str | None]:
    """The recipe's data as a polars DataFrame, and the rendered query when it came from one."""
    from mmp.io.readers import read_frame

    if is_query(spec):
        from mmp.io.sql_source import read_query

        sql = rendered_query(spec)
        where = "data.query" if spec.data.query is not None else f"data.source: {spec.data.source}"
        return read_query(sql, spec.source.connection, spec.source.storage_options, where), sql
    if not spec.data.source:
        raise UserError("data.source: no training data; set data.source in the recipe or pass -d URI")
    return read_frame(spec.data.source, spec.data.format, spec.source.storage_options), None


def database_label(spec: RunSpec) -> str:
    """Where a query runs, in words: 'embedded DuckDB' or the masked connection URL."""
    from mmp.masking import scrub

    return scrub(spec.source.connection) if spec.source.connection else "embedded DuckDB"
