"""Where batch predictions go, written atomically: under a temporary name beside the destination,
moved into place only when every row is written. A failure leaves nothing at the destination."""

from __future__ import annotations

import re
import uuid
from pathlib import PurePosixPath
from typing import Any

from mmp.errors import UserError
from mmp.io.processes import alive, this_process
from mmp.io.readers import is_local_fs

# `.preds.parquet.<hex>.<pid>-<start>@<host>.tmp`; older mmp wrote `.preds.parquet.<hex>.tmp`.
_TEMP = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}(?:\.(?P<pid>\d+)-(?P<start>\d+)@(?P<host>.+))?\.tmp")
EXTENSIONS = {"parquet": "parquet", "csv": "csv", "json": "json"}
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}


# URL schemes (before any `+driver`) that name a database: the destination is a table (mmp.io.sql_sink).
SQL_SCHEMES = frozenset({"postgresql", "postgres", "duckdb", "mysql", "mariadb", "mssql", "oracle", "sqlite",
                         "bigquery", "snowflake", "redshift"})


def is_sql(target: str) -> bool:
    """Whether a destination is a database table (a SQLAlchemy URL) rather than a file."""
    return "://" in target and target.split("://", 1)[0].split("+", 1)[0].lower() in SQL_SCHEMES


def output_target(given: str | None, path: str, connection: str | None, table: str | None) -> str:
    """The destination: `-o` if given, else the env's SQL table (`output.connection` + `output.table`),
    else `output.path`."""
    if given:
        return given
    if bool(connection) != bool(table):
        have, lack = ("connection", "table") if connection else ("table", "connection")
        raise UserError(f"output.{lack}: missing; output.{have} is set, and a SQL output needs both "
                        f"(connection: a SQLAlchemy URL, table: [schema.]table)")
    if connection:
        from mmp.io.sql_sink import sql_uri

        return sql_uri(connection, table or "")
    return path


def destination(target: str, default_format: str, run_id: str | None) -> tuple[str, str]:
    """(uri, format): a file URI keeps its extension's format; a folder or prefix gets
    `predictions_<run_id>.<ext>` in the env's `output.format`; a database URL is format "sql"."""
    if is_sql(target):
        return target, "sql"
    suffix = PurePosixPath(target.split("?", 1)[0]).suffix.lower()
    if suffix in FORMATS and not target.endswith("/"):
        return target, FORMATS[suffix]
    if suffix:
        raise UserError(f"-o: unknown output extension '{suffix}' in {target}; use .parquet, .csv or .json")
    name = f"predictions_{run_id or 'model'}.{EXTENSIONS[default_format]}"
    return f"{target.rstrip('/')}/{name}", default_format


def open_output(uri: str, fmt: str, storage_options: dict[str, Any] | None = None, mode: str = "replace",
                run_id: str | None = None, entity_columns: list[str] | tuple = ()) -> Any:
    """Where a batch job writes: an AtomicOutput for a file, a SqlOutput for a table (format "sql")."""
    if fmt == "sql":
        from mmp.io.sql_sink import SqlOutput

        return SqlOutput(uri, mode, run_id, entity_columns)
    if mode != "replace":
        from mmp.masking import scrub

        raise UserError(f"output.mode: '{mode}' applies to SQL tables; a file output ({scrub(uri)}) is always written "
                        f"whole (allowed for files: replace)")
    return AtomicOutput(uri, fmt, storage_options)


class AtomicOutput:
    """A stream of pyarrow tables into one parquet, csv or JSON-lines file, published atomically."""

    def __init__(self, uri: str, fmt: str, storage_options: dict[str, Any] | None = None):
        import fsspec

        self.uri, self.format = uri, fmt
        self.fs, self.path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
        self.parent, self.name = self.path.rsplit("/", 1) if "/" in self.path else ("", self.path)
        host, pid, start = this_process()
        # The temporary name says who writes it, so a later writer can remove it if that process died.
        temp = f".{self.name}.{uuid.uuid4().hex[:12]}.{pid}-{start or 0}@{host}.tmp"
        self.temp = f"{self.parent}/{temp}" if self.parent else temp
        self.file: Any = None
        self.writer: Any = None
        self.rows = 0

    def __enter__(self) -> "AtomicOutput":
        if self.parent:
            self.fs.makedirs(self.parent, exist_ok=True)
        self.sweep_stale()
        self.file = self.fs.open(self.temp, "wb")
        return self

    def sweep_stale(self) -> list[str]:
        """Remove temporary files beside the destination left by writers that died (SIGKILL, OOM):
        those of a dead process on this host, and unattributed ones (older mmp) a day old."""
        import socket
        import time

        try:
            siblings = self.fs.ls(self.parent or ".", detail=True)
        except (FileNotFoundError, OSError):
            return []
        removed = []
        for entry in siblings:
            name = entry["name"].rsplit("/", 1)[-1]
            match = _TEMP.fullmatch(name)
            if not match or match["name"] != self.name:
                continue
            if match["host"] is not None:
                start = "" if match["start"] == "0" else match["start"]  # "0": written where /proc is not
                stale = match["host"] == socket.gethostname() and not alive(int(match["pid"]), start)
            else:
                modified = entry.get("mtime") or entry.get("LastModified") or entry.get("updated")
                stale = isinstance(modified, (int, float)) and time.time() - modified > 86_400
            if stale:
                try:
                    self.fs.rm(entry["name"])
                    removed.append(entry["name"])
                except (FileNotFoundError, OSError):
                    pass
        return removed

    def write(self, table: Any) -> None:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            if self.writer is None:
                self.writer = pq.ParquetWriter(self.file, table.schema, use_dictionary=_dictionary_columns(table.schema))
            self.writer.write_table(table)
        elif self.format == "csv":
            import pyarrow.csv as pacsv

            if self.writer is None:
                self.writer = pacsv.CSVWriter(self.file, table.schema)
            self.writer.write_table(table)
        else:
            import polars as pl

            pl.from_arrow(table).write_ndjson(self.file)
        self.rows += table.num_rows

    def _publish(self) -> None:
        """Rename on a local disk; on object stores a server-side copy (the object appears whole) then
        delete the temporary one. (gcsfs's mv would try a moveTo call first, which emulators lack.)"""
        if is_local_fs(self.fs):
            self.fs.mv(self.temp, self.path)
            return
        self.fs.copy(self.temp, self.path)
        self.fs.rm(self.temp)

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            if self.writer is not None:
                self.writer.close()
            self.file.close()
        except Exception:
            if kind is None:
                raise
        if kind is None:
            self._publish()
            return
        try:
            self.fs.rm(self.temp)
        except (FileNotFoundError, OSError):
            pass


def _dictionary_columns(schema: Any) -> list[str]:
    """The columns worth dictionary-encoding in parquet: all but floats. Probabilities and regression
    outputs are nearly all distinct, so the writer would build each page's dictionary only to drop
    it (a third of the write time); labels, ids and text keep it."""
    import pyarrow as pa

    return [field.name for field in schema if not pa.types.is_floating(field.type)]
