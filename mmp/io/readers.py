"""Read tabular data from any URI fsspec understands (paths, file://, memory://, s3://, gs://) with polars."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from mmp.errors import UserError
from mmp.io.sql_source import is_sql_file

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
                problem = ragged_row(f)
                if problem:
                    raise UserError(f"data.source: {uri}: {problem}")
                f.seek(0)
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


def iter_tables(uri: str, fmt: str | None = None, storage_options: dict[str, Any] | None = None,
                chunk_rows: int = 100_000, column_types: dict[str, str] | None = None,
                connection: str | None = None, params: dict[str, Any] | None = None):
    """The data at `uri` as a stream of pyarrow Tables of at most `chunk_rows` rows, in file order.
    A `.sql` file is a query template (`params`) run on `connection` (see `mmp.io.sql_source`).

    Memory stays bounded by the chunk size whatever the file size. Local files go through polars'
    streaming engine (multi-threaded parsing); other fsspec URIs through pyarrow's streaming
    readers over an fsspec file (polars would read a file object whole). `column_types` pins
    columns to "float" or "string" so that every chunk agrees with the first. A JSON array (.json
    that is not JSON lines) is read whole.
    """
    import fsspec

    if is_sql_file(uri):
        from mmp.io.sql_source import iter_query, read_template, render

        where = f"-d {uri}"
        sql = render(read_template(uri, storage_options, where), params or {}, where,
                     hint="""give it with -p '{"NAME": value}'""")
        yield from iter_query(sql, connection, storage_options, chunk_rows, where, column_types)
        return
    fmt = data_format(uri, fmt)
    column_types = column_types or {}
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    if is_local_fs(fs) and fmt in ("csv", "parquet", "ndjson"):
        if not fs.exists(path):
            raise UserError(f"-d: no such file: {uri}")
        yield from _polars_tables(path, fmt, chunk_rows, column_types)
        return
    try:
        handle = fs.open(path, "rb")
    except FileNotFoundError as exc:
        raise UserError(f"-d: no such file: {uri}") from exc
    try:
        if fmt == "csv":
            batches = _csv_batches(handle, column_types)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            batches = pq.ParquetFile(handle).iter_batches(batch_size=chunk_rows)
        else:
            batches = _json_batches(handle, chunk_rows)
        yield from _rechunk(batches, chunk_rows)
    finally:
        handle.close()


def is_local_fs(fs: Any) -> bool:
    """Whether an fsspec filesystem is this machine's disk."""
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def _polars_tables(path: str, fmt: str, chunk_rows: int, column_types: dict[str, str]):
    import polars as pl

    shape_check = None
    if fmt == "csv":
        overrides = {c: pl.Float64 if kind == "float" else pl.Utf8 for c, kind in column_types.items()}
        frame = pl.scan_csv(path, schema_overrides=overrides, infer_schema_length=10_000)
        # polars reads a short row as trailing nulls; pyarrow, which refuses one, checks the file
        # in a thread beside the prediction, and the stream fails at its end if a row is ragged.
        shape_check = _in_thread(_ragged_row_of_path, path)
    elif fmt == "parquet":
        frame = pl.scan_parquet(path)
    else:
        frame = pl.scan_ndjson(path, infer_schema_length=10_000)
    for batch in frame.collect_batches(chunk_size=chunk_rows):
        if batch.height:  # polars hands a batch over in ~30 pieces a column; one piece converts in one go
            yield batch.rechunk().to_arrow()
    problem = shape_check.result() if shape_check is not None else None
    if problem:
        raise UserError(f"-d {path}: {problem}")


def _in_thread(function: Any, *args: Any) -> Any:
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmp-csv-check")
    future = pool.submit(function, *args)
    pool.shutdown(wait=False)
    return future


def _ragged_row_of_path(path: str) -> str | None:
    if fields_agree(path):
        return None
    with open(path, "rb") as f:
        return ragged_row(f)


def fields_agree(path: str, block_size: int = 16 << 20) -> bool:
    """True when a CSV file without quotes has, on every line, the header's number of commas,
    counted with numpy off the GIL: ~0.25 CPU-seconds for 600 MB where parsing the file a second time
    with pyarrow took ~1.1. False when it cannot tell (a quote anywhere: a field may then hold a
    comma or a line break; a blank line; a short row): `ragged_row` then looks for the row. A long
    row needs no check: polars refuses it."""
    import numpy as np

    with open(path, "rb") as f:
        header = f.readline()
        if b'"' in header:
            return False
        per_line, commas, lines, last = header.count(b","), 0, 0, b"\n"
        while block := f.read(block_size):
            if b'"' in block:
                return False
            data = np.frombuffer(block, dtype=np.uint8)
            commas += int(np.count_nonzero(data == ord(",")))
            lines += int(np.count_nonzero(data == ord("\n")))
            last = block[-1:]
    lines += last != b"\n"  # a last line without its line break
    return commas == per_line * lines


def ragged_row(handle: Any) -> str | None:
    """Where a CSV file's first row with more or fewer fields than its header is, in words
    ('line 7 has 3 fields, the header has 5: ...'), or None when every row fits. Reads `handle`
    to its end (parsing only, on all cores; the file is read again, on one core, to name the
    line only when there is such a row)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def first_bad(threads: bool) -> Any:
        found: list = []

        def handler(row: Any) -> str:
            found.append(row)
            return "error"

        handle.seek(0)
        first = handle.readline().decode("utf-8", "replace").strip().split(",")[0].strip('"')
        handle.seek(0)
        try:
            reader = pacsv.open_csv(handle, read_options=pacsv.ReadOptions(use_threads=threads, block_size=8 << 20),
                                    parse_options=pacsv.ParseOptions(invalid_row_handler=handler),
                                    convert_options=pacsv.ConvertOptions(include_columns=[first],
                                                                         column_types={first: pa.string()}))
            for _ in reader:
                pass
        except (pa.ArrowInvalid, pa.ArrowKeyError):
            pass  # what the handler did not see (a bad header) is for the real reader to report
        return found[0] if found else None

    row = first_bad(threads=True)
    if row is None:
        return None
    row = first_bad(threads=False) or row
    where = f"line {row.number}" if row.number else "a row"
    return (f"{where} has {row.actual_columns} field{'s' if row.actual_columns != 1 else ''}, the header has "
            f"{row.expected_columns}: {row.text[:120]!r}; fix or remove that row (a truncated line?)")


def _csv_batches(handle, column_types: dict[str, str]):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    column_types = {c: pa.float64() if kind == "float" else pa.string() for c, kind in column_types.items()}
    reader = pacsv.open_csv(
        handle,
        read_options=pacsv.ReadOptions(block_size=8 << 20),
        convert_options=pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=True),
    )
    yield from reader


def _json_batches(handle, chunk_rows: int):
    import io

    import polars as pl

    first = handle.read(1)
    rest = handle.read() if first == b"[" else None
    if rest is not None:  # a JSON array: no streaming format, read whole
        for batch in pl.read_json(io.BytesIO(first + rest)).to_arrow().to_batches(chunk_rows):
            yield batch
        return
    lines = [first + handle.readline()] if first else []
    while True:
        lines += [handle.readline() for _ in range(chunk_rows - len(lines))]
        block = b"".join(line for line in lines if line.strip())
        if block:
            yield from pl.read_ndjson(io.BytesIO(block)).to_arrow().to_batches()
        if not lines or not lines[-1]:
            return
        lines = []


def _rechunk(batches, chunk_rows: int):
    """Re-cut a stream of record batches into tables of exactly `chunk_rows` rows (the last: fewer)."""
    import pyarrow as pa

    pending, count = [], 0
    for batch in batches:
        while batch.num_rows:
            take = min(chunk_rows - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == chunk_rows:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)
