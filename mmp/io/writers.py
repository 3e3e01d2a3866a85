"""Where batch predictions go, written atomically: under a temporary name beside the destination,
moved into place only when every row is written. A failure leaves nothing at the destination."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import Any

from mmp.io.readers import is_local_fs
from mmp.errors import UserError

EXTENSIONS = {"parquet": "parquet", "csv": "csv", "json": "json"}
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}


def destination(target: str, default_format: str, run_id: str | None) -> tuple[str, str]:
    """(uri, format): a file URI keeps its extension's format; a folder or prefix gets
    `predictions_<run_id>.<ext>` in the env's `output.format`."""
    suffix = PurePosixPath(target.split("?", 1)[0]).suffix.lower()
    if suffix in FORMATS and not target.endswith("/"):
        return target, FORMATS[suffix]
    if suffix:
        raise UserError(f"-o: unknown output extension '{suffix}' in {target}; use .parquet, .csv or .json")
    name = f"predictions_{run_id or 'model'}.{EXTENSIONS[default_format]}"
    return f"{target.rstrip('/')}/{name}", default_format


class AtomicOutput:
    """A stream of pyarrow tables into one parquet, csv or JSON-lines file, published atomically."""

    def __init__(self, uri: str, fmt: str, storage_options: dict[str, Any] | None = None):
        import fsspec

        self.uri, self.format = uri, fmt
        self.fs, self.path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
        parent, name = self.path.rsplit("/", 1) if "/" in self.path else ("", self.path)
        self.temp = f"{parent}/.{name}.{uuid.uuid4().hex[:12]}.tmp" if parent else f".{name}.{uuid.uuid4().hex[:12]}.tmp"
        self.file: Any = None
        self.writer: Any = None
        self.rows = 0

    def __enter__(self) -> "AtomicOutput":
        parent = self.path.rsplit("/", 1)[0] if "/" in self.path else ""
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        self.file = self.fs.open(self.temp, "wb")
        return self

    def write(self, table: Any) -> None:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            if self.writer is None:
                self.writer = pq.ParquetWriter(self.file, table.schema)
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
