"""Read tabular data from any URI fsspec understands (paths, file://, memory://, s3://, gs://) with polars."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from mmp.errors import UserError

FORMATS_BY_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json",
                     ".jsonl": "ndjson", ".ndjson": "ndjson"}


def data_format(uri: str, declared: str | None = None) -> str:
    """csv | parquet | json | ndjson: as declared, else from the extension."""
    if declared:
        return declared
    suffix = PurePosixPath(uri.split("?", 1)[0]).suffix.lower()
    fmt = FORMATS_BY_SUFFIX.get(suffix)
    if fmt is None:
        raise UserError(
            f"data.source: cannot tell the format of '{uri}' from its extension; "
            f"use one of {', '.join(sorted(FORMATS_BY_SUFFIX))} or set data.format (csv | parquet | json)"
        )
    return fmt


def read_frame(uri: str, fmt: str | None = None, storage_options: dict[str, Any] | None = None,
               columns: list[str] | None = None, n_rows: int | None = None):
    """The data at `uri` as a polars DataFrame (optionally only some columns / the first rows)."""
    import fsspec
    import polars as pl

    fmt = data_format(uri, fmt)
    try:
        with fsspec.open(uri, "rb", **(storage_options or {})) as f:
            if fmt == "csv":
                return pl.read_csv(f, columns=columns, n_rows=n_rows, infer_schema_length=10_000)
            if fmt == "parquet":
                frame = pl.read_parquet(f, columns=columns, n_rows=n_rows)
            elif fmt == "ndjson":
                frame = pl.read_ndjson(f, n_rows=n_rows)
            else:
                frame = _read_json(f)
    except FileNotFoundError as exc:
        raise UserError(f"data.source: no such file: {uri}") from exc
    except UserError:
        raise
    except ImportError as exc:
        raise UserError(f"data.source: cannot open '{uri}': {exc}; for s3:// or gs:// install 'mmp[cloud-extras]'") from exc
    except Exception as exc:  # unreadable bytes, bad credentials, unreachable store
        raise UserError(f"data.source: cannot read '{uri}' as {fmt}: {type(exc).__name__}: {exc}") from exc
    if columns is not None:
        frame = frame.select(columns)
    return frame.head(n_rows) if n_rows is not None else frame


def _read_json(f):
    import polars as pl

    data = f.read()
    try:
        return pl.read_json(data)
    except Exception:  # JSON lines in a .json file
        return pl.read_ndjson(data)


def is_numeric(dtype) -> bool:
    """Whether a polars dtype goes to a model as a number (numbers and booleans)."""
    import polars as pl

    return dtype.is_numeric() or dtype == pl.Boolean
