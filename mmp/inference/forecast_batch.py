"""`mmp batch-inference` for a forecaster: read the whole history, forecast each series, write atomically.

A forecast needs each series' whole history, so the input is read at once (not streamed in chunks
like tabular rows) and grouped per series by the model; the output is the id columns, the time
column, `prediction` and interval bounds: `horizon` rows per series after its last timestamp.
Rows with a time but no target after a series' history are its future exogenous values.
"""

from __future__ import annotations

import time
from typing import Any

from mmp.errors import UserError
from mmp.inference.batch import BatchResult
from mmp.models.logged import LoggedModel


def run_forecast_batch(model: LoggedModel, source: str, output_uri: str, output_format: str,
                       storage_options: dict[str, Any], quiet: bool = False, mode: str = "replace") -> BatchResult:
    """Forecast every series in `source` into `output_uri`; bad input is a UserError naming the column."""
    import pyarrow as pa
    from rich.console import Console

    from mmp.io.readers import read_frame
    from mmp.io.writers import open_output
    from mmp.masking import scrub
    from mmp.models.tabular import InputError

    console = Console(stderr=True, quiet=quiet, highlight=False, soft_wrap=True)
    started = time.perf_counter()
    frame = read_frame(source, None, storage_options)
    if frame.height == 0:
        raise UserError(f"-d {source}: the data has no rows")
    forecast = model.info.get("forecast") or {}
    wanted = [*model.entity_columns, forecast.get("time_column"), forecast.get("target"), *model.features]
    missing = [c for c in dict.fromkeys(wanted) if c and c not in frame.columns]
    if missing:
        raise UserError(f"-d {source}: the data does not fit the model:\n  - missing column"
                        f"{'s' if len(missing) > 1 else ''}: {', '.join(missing)} (available: {', '.join(frame.columns)})")
    try:
        predicted = model.predict(frame.select([c for c in dict.fromkeys(wanted) if c]).to_pandas())
    except ValueError as exc:
        # The unpickled model carries its own copy of InputError (mmp's code is pickled by value).
        if not isinstance(exc, InputError) and type(exc).__name__ != "InputError":
            raise
        raise UserError(f"-d {source}: the data does not fit the model: {exc}") from exc
    table = pa.Table.from_pandas(predicted, preserve_index=False)
    time_column = forecast.get("time_column")
    if output_format != "parquet" and time_column in predicted and (predicted[time_column].dt.normalize()
                                                                    == predicted[time_column]).all():
        # Text formats write a timestamp as "2009-10-01 00:00:00.000000"; a daily or coarser forecast reads
        # better as the date the input gave. Parquet keeps the timestamp type.
        at = table.column_names.index(time_column)
        table = table.set_column(at, time_column, table.column(time_column).cast(pa.date32()))
    keys = [*model.entity_columns, time_column]  # an upsert replaces a series' forecast at the same times
    with open_output(output_uri, output_format, storage_options, mode, model.run_id, keys) as output:
        output.write(table)
    result = BatchResult(output.rows, time.perf_counter() - started, output_uri)
    series = predicted[model.entity_columns].drop_duplicates().shape[0]
    console.print(f"[green]✓[/] {series:,} series, {result.rows:,} forecast rows in {result.seconds:.2f} s "
                  f"-> {scrub(output_uri)}")
    return result
