"""Batch predictions into a SQL table, atomically: rows go to a staging area first and reach the
target in one transaction (replace, append or upsert on the entity columns), or not at all.

A destination is a SQLAlchemy URL with the table as its last path segment:
`postgresql://user@host:5432/dbname/schema.table`, `duckdb:///file.duckdb/table`. Each row gets
the job's `run_id` and `predicted_at` (one timestamp per job). PostgreSQL: `sql_sink_postgres`;
other SQLAlchemy dialects: `sql_sink_sqlalchemy`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from mmp.errors import UserError
from mmp.masking import scrub

MODES = ("replace", "append", "upsert")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
FILE_DIALECTS = ("duckdb", "sqlite")  # the URL's path is a file, then the table
DEFAULT_SCHEMA = {"postgresql": "public", "duckdb": "main"}
# Our column type -> target column types that hold it without loss (names as information_schema gives them).
ACCEPTS = {
    "smallint": {"smallint", "integer", "bigint", "numeric", "real", "double precision"},
    "integer": {"integer", "bigint", "numeric", "double precision"},
    "bigint": {"bigint", "numeric"},
    "real": {"real", "double precision", "numeric"},
    "double precision": {"double precision", "numeric"},
    "numeric": {"numeric"},
    "text": {"text", "character varying"},
    "boolean": {"boolean"},
    "date": {"date"},
    "timestamp with time zone": {"timestamp with time zone"},
    "timestamp without time zone": {"timestamp without time zone"},
}
_DUCKDB_NAMES = {"double": "double precision", "float": "real", "varchar": "text", "tinyint": "smallint",
                 "hugeint": "numeric", "decimal": "numeric", "timestamp": "timestamp without time zone",
                 "timestamptz": "timestamp with time zone", "ubigint": "numeric", "uinteger": "bigint"}


@dataclass(frozen=True)
class SqlTarget:
    """Where a table is: the connection URL (no table), its dialect, schema and table name."""

    url: str
    dialect: str
    schema: str | None
    table: str

    @property
    def shown(self) -> str:
        return scrub(f"{self.url} table {self.qualified}")

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table


def sql_uri(connection: str, table: str) -> str:
    """The env's `output.connection` + `output.table` as one destination URI (table as the last segment)."""
    base, sep, query = connection.partition("?")
    return f"{base.rstrip('/')}/{table}{sep}{query}"


def parse_target(uri: str) -> SqlTarget:
    """`postgresql://user@host/db/schema.table` or `duckdb:///file.duckdb/table` -> a SqlTarget (exit 2 if malformed)."""
    base, sep, query = uri.partition("?")
    parts = urlsplit(base)
    dialect = parts.scheme.split("+", 1)[0].lower()
    dialect = {"postgres": "postgresql"}.get(dialect, dialect)
    head, _, table = base.rpartition("/")
    on_file = dialect in FILE_DIALECTS
    example = f"{dialect}:///path/file.{dialect}/table" if on_file else f"{dialect}://user@host:5432/dbname/schema.table"
    segments = [s for s in parts.path.split("/") if s]
    if (on_file and len(segments) < 2) or (not on_file and len(segments) != 2) or not table:
        raise UserError(f"-o/output.table: name the database and the table, as in {example}; got {scrub(uri)}")
    names = table.split(".")
    if len(names) > 2 or not all(_IDENTIFIER.fullmatch(n) for n in names):
        raise UserError(f"-o/output.table: '{table}' is not a table name; use [schema.]table, each a letter or _ "
                        f"then letters, digits or _ (at most 63), as in {example}")
    if dialect == "postgresql":  # what PostgreSQL does to unquoted names
        names = [n.lower() for n in names]
    schema = names[0] if len(names) == 2 else DEFAULT_SCHEMA.get(dialect)
    return SqlTarget(url=head + sep + query, dialect=dialect, schema=schema, table=names[-1])


def sql_type(name: str, kind: Any) -> str:
    """The SQL column type that holds a pyarrow type (exit 2 for one that has none)."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    checks = [(pa.types.is_boolean, "boolean"), (lambda k: k in (pa.int8(), pa.int16(), pa.uint8()), "smallint"),
              (lambda k: k in (pa.int32(), pa.uint16()), "integer"), (pa.types.is_integer, "bigint"),
              (lambda k: k in (pa.float16(), pa.float32()), "real"), (pa.types.is_floating, "double precision"),
              (pa.types.is_decimal, "numeric"), (pa.types.is_date, "date"), (pa.types.is_null, "text"),
              (lambda k: pa.types.is_string(k) or pa.types.is_large_string(k) or pa.types.is_string_view(k), "text")]
    for check, sql in checks:
        if check(kind):
            return sql
    if pa.types.is_timestamp(kind):
        return "timestamp with time zone" if kind.tz else "timestamp without time zone"
    raise UserError(f"output: column '{name}' holds {kind}, which mmp does not write to SQL tables")


def canonical_type(name: str) -> str:
    """A type name as PostgreSQL's information_schema spells it (DuckDB's names mapped onto those)."""
    name = re.sub(r"\(.*\)", "", name).strip().lower()
    return _DUCKDB_NAMES.get(name, name)


def columns_of(schema: Any) -> dict[str, str]:
    """Output columns and SQL types: the prediction table's, then `run_id` and `predicted_at`."""
    columns = {field.name: sql_type(field.name, field.type) for field in schema}
    return {**columns, "run_id": "text", "predicted_at": "timestamp with time zone"}


def mismatches(ours: dict[str, str], theirs: dict[str, tuple[str, bool]], target: SqlTarget) -> None:
    """Exit 2 naming each column the existing target lacks, holds in another type, or requires and we lack.
    `theirs`: column -> (type, whether a row must give it: NOT NULL without a default)."""
    problems = []
    for column, kind in ours.items():
        if column not in theirs:
            problems.append(f"the table has no column '{column}' ({kind})")
        elif canonical_type(theirs[column][0]) not in ACCEPTS.get(kind, {kind}):
            problems.append(f"column '{column}' is {theirs[column][0]} in the table; the output is {kind}")
    problems += [f"the table requires column '{c}' (NOT NULL, no default), which the output lacks"
                 for c, (_, required) in theirs.items() if required and c not in ours]
    if problems:
        raise UserError(f"output: the existing table {target.shown} does not fit the predictions (nothing written):\n  - "
                        + "\n  - ".join(problems) + "\n  (write to a new table, or mode=replace into a matching one)")


def upsert_keys(mode: str, entity_columns: list[str], columns: list[str], target: SqlTarget) -> list[str]:
    """The columns an upsert matches rows on: the entity columns, which the output must hold."""
    if mode != "upsert":
        return []
    if not entity_columns:
        raise UserError(f"output.mode: upsert matches rows on the model's entity columns, and this model has none "
                        f"(recipe data.entity_columns); use replace or append for {target.shown}")
    missing = [c for c in entity_columns if c not in columns]
    if missing:
        raise UserError(f"output.mode: upsert needs the entity column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)} in the data (-d), to match rows of {target.shown}")
    return list(entity_columns)


class SqlOutput:
    """A stream of pyarrow tables into one SQL table: same interface as AtomicOutput (`with`, `write`, `rows`)."""

    def __init__(self, uri: str, mode: str = "replace", run_id: str | None = None,
                 entity_columns: list[str] | tuple = ()):
        if mode not in MODES:
            raise UserError(f"output.mode: '{mode}' is not allowed; allowed: {', '.join(MODES)}")
        self.uri, self.target, self.mode = uri, parse_target(uri), mode
        self.run_id = run_id or ""
        self.predicted_at = datetime.now(timezone.utc)
        self.entity_columns = list(entity_columns)
        if self.target.dialect == "postgresql":
            from mmp.io.sql_sink_postgres import PostgresTable

            self.sink: Any = PostgresTable(self)
        elif self.target.dialect == "duckdb":
            self.sink = DuckdbTable(self)
        else:
            from mmp.io.sql_sink_sqlalchemy import SqlAlchemyTable

            self.sink = SqlAlchemyTable(self)
        self.rows = 0
        self.prepared = False

    def __enter__(self) -> "SqlOutput":
        self.sink.open()
        return self

    def write(self, table: Any) -> None:
        if not self.prepared:
            self.sink.prepare(table.schema)
            self.prepared = True
        self.sink.write(table)
        self.rows += table.num_rows

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is None and self.rows:
            self.sink.publish()
        else:
            self.sink.discard()


def _quote(*names: str) -> str:
    """Names as quoted SQL identifiers, comma-separated (a class's column name may hold any character)."""
    return ", ".join('"' + n.replace('"', '""') + '"' for n in names)


class DuckdbTable:
    """A DuckDB file: every chunk goes into the target inside one open transaction, committed at the end
    (DuckDB rolls an uncommitted transaction back when the file is next opened after a crash)."""

    def __init__(self, output: SqlOutput):
        self.output, self.target = output, output.target
        self.path = urlsplit(self.target.url).path[1:]  # duckdb:///rel.duckdb, duckdb:////abs.duckdb
        self.con: Any = None
        self.insert = ""

    def open(self) -> None:
        import os

        import duckdb

        if os.path.dirname(self.path):
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            self.con = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise UserError(f"output: cannot open the DuckDB file {self.path}: {str(exc).splitlines()[0]}") from exc
        if not self.con.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = ?",
                                [self.target.schema]).fetchone():
            raise UserError(f"output.table: schema '{self.target.schema}' does not exist in {self.path}")

    def prepare(self, schema: Any) -> None:
        ours = columns_of(schema)
        keys = upsert_keys(self.output.mode, self.output.entity_columns, list(ours), self.target)
        name, t = f"{_quote(self.target.schema)}.{_quote(self.target.table)}", self.target
        theirs = {c: (k, n == "NO" and d is None) for c, k, n, d in self.con.execute(
            "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [t.schema, t.table]).fetchall()}
        if theirs:
            mismatches(ours, theirs, t)
            if keys and not self._unique_on(keys):
                raise UserError(f"output.mode: upsert into {t.shown} needs a PRIMARY KEY or UNIQUE constraint on "
                                f"({', '.join(keys)}); the table has none (add one, or use replace or append)")
        self.con.execute("BEGIN TRANSACTION")
        if not theirs:
            columns = [f"{_quote(c)} {k}" for c, k in ours.items()] + ([f"UNIQUE ({_quote(*keys)})"] if keys else [])
            self.con.execute(f"CREATE TABLE {name} ({', '.join(columns)})")
        elif self.output.mode == "replace":
            self.con.execute(f"DELETE FROM {name}")
        conflict = ""
        if keys:
            updates = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in ours if c not in keys)
            conflict = f" ON CONFLICT ({_quote(*keys)}) DO UPDATE SET {updates}"
        self.insert = f"INSERT INTO {name} ({_quote(*ours)}) SELECT *, ?::VARCHAR, ?::TIMESTAMPTZ FROM _mmp_chunk{conflict}"

    def _unique_on(self, keys: list[str]) -> bool:
        rows = self.con.execute("SELECT constraint_column_names FROM duckdb_constraints() WHERE schema_name = ? AND "
                                "table_name = ? AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
                                [self.target.schema, self.target.table]).fetchall()
        return any(sorted(columns) == sorted(keys) for (columns,) in rows)

    def write(self, table: Any) -> None:
        import duckdb

        self.con.register("_mmp_chunk", table)
        try:
            self.con.execute(self.insert, [self.output.run_id, self.output.predicted_at])
        except duckdb.ConstraintException as exc:
            raise UserError(f"output: {self.target.shown}: {str(exc).splitlines()[0]}") from exc
        finally:
            self.con.unregister("_mmp_chunk")

    def publish(self) -> None:
        self.con.execute("COMMIT")
        self.con.close()

    def discard(self) -> None:
        if self.con is not None:
            try:
                if self.insert:
                    self.con.execute("ROLLBACK")
            finally:
                self.con.close()
