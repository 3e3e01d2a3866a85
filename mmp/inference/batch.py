"""`mmp batch-inference`: predict a dataset of any size with a logged model, chunk by chunk.

Rows stream in (bounded memory), are checked against the model's columns, predicted by the very
pyfunc that was logged, and stream out as entity columns + prediction columns, in input order,
into a file that appears at its destination only when complete. With monitoring on, each chunk's
features and predictions are also counted into the model's drift profile as they pass (no second
read), and the drift report (mmp.inference.drift_report) follows the completed output.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from mmp.errors import UserError
from mmp.models.logged import LoggedModel


@dataclass
class BatchResult:
    rows: int
    seconds: float
    output_uri: str
    drift: dict[str, Any] | None = None  # the drift report, when monitoring counted one

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def column_types(model: LoggedModel) -> dict[str, str]:
    """How to read the feature columns: numbers as "float", text as "string"."""
    numeric = set(model.numeric)
    return {c: ("float" if c in numeric else "string") for c in model.features} if model.numeric else {}


def check_columns(model: LoggedModel, schema: Any, source: str) -> None:
    """Missing feature columns (with the available ones) and wrongly typed ones: a UserError naming them."""
    import pyarrow as pa

    available = list(schema.names)
    missing = [c for c in model.features if c not in available]
    problems = []
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
                        f"(available: {', '.join(available)})")
    for column in model.numeric:
        if column in available:
            kind = schema.field(column).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
                    or pa.types.is_null(kind) or pa.types.is_decimal(kind)):
                problems.append(f"column '{column}' holds {_words(kind)}, the model expects a number")
    if problems:
        raise UserError(f"-d {source}: the data does not fit the model:\n  - " + "\n  - ".join(problems))


def _words(kind: Any) -> str:
    import pyarrow as pa

    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return f"text ({kind})"
    if pa.types.is_temporal(kind):
        return f"dates/times ({kind})"
    return str(kind)


def predict_table(model: LoggedModel, table: Any) -> Any:
    """Entity columns, then prediction columns, for one chunk (a pyarrow Table)."""
    from mmp.inference.arrow_input import arrow_predictor

    return predict_chunk(model, table, arrow_predictor(model.tabular))[0]


def predict_chunk(model: LoggedModel, table: Any, fast: Any = None) -> tuple[Any, Any]:
    """(entity + prediction columns as a pyarrow Table, the chunk's numeric features as one float64
    block or None). With `fast` (`arrow_input.arrow_predictor`), mmp's own tabular models get their
    input straight from Arrow; any other model, or a column type that path does not take, goes
    through pandas and the model's `predict_frame` / the pyfunc."""
    import pyarrow as pa

    from mmp.models.tabular import InputError

    try:
        done = fast(table) if fast is not None else None
        if done is not None:
            predicted, block = done
        else:
            frame = table.select([c for c in dict.fromkeys(model.features) if c in table.column_names]).to_pandas()
            predicted, block = model.predict(frame), None
    except InputError as exc:
        raise UserError(f"the data does not fit the model: {exc}") from exc
    entities = [c for c in model.entity_columns if c in table.column_names]
    out = pa.Table.from_pandas(predicted, preserve_index=False)
    for i, column in enumerate(entities):
        out = out.add_column(i, column, table.column(column))
    return out, block


def predict_and_count(model: LoggedModel, table: Any, profile: dict[str, Any] | None,
                      fast: Any = None) -> tuple[Any, Any]:
    """One chunk's predictions (`predict_chunk`) and, with a drift `profile`, its drift counts (as
    `drift_report.count_chunk` counts them, numeric features from the float64 block the model read)."""
    from mmp.models.drift import DriftCounts

    out, block = predict_chunk(model, table, fast)
    if profile is None:
        return out, None
    columns = {name: table.column(name) for name in table.column_names}
    if block is not None:
        numbers = [c for c in model.tabular.features if c in set(model.tabular.numeric)]
        columns.update({name: block[:, j] for j, name in enumerate(numbers)})
    counts = DriftCounts(profile)
    counts.add({name: columns[name] for name in profile["features"] if name in columns},
               {name: out.column(name) for name in profile["predictions"] if name in out.column_names})
    return out, counts


def run_batch(model: LoggedModel, source: str, output_uri: str, output_format: str,
              storage_options: dict[str, Any], chunk_rows: int, quiet: bool = False,
              workers: int | None = None, mode: str = "replace", connection: str | None = None,
              params: dict[str, Any] | None = None, monitoring: Any = None, fail_on_drift: bool = False,
              experiment: str | None = None, connected: Any = None) -> BatchResult:
    """Stream `source` through the model into `output_uri`; return rows, seconds and the output URI.

    Chunks are predicted by `workers` threads (default: one per core; scikit-learn, xgboost and
    lightgbm release the GIL while they compute) and written in input order; at most
    `workers + 1` chunks are in flight, so memory stays bounded. `mode` (replace | append | upsert)
    is for SQL tables. A `.sql` source is a query template (`params`) run on `connection`.
    With `monitoring` enabled and a model that carries a drift profile, the same threads count the
    chunks' drift; once the output is complete the report is printed and logged, and a column past
    its alert limit raises `DriftAlert` when `fail_on_drift` or `monitoring.fail_on_alert`.
    `connected`: a future of the MLflow connection the drift run is logged through, made while
    the rows streamed (`mmp.inference.background`); None: already connected.
    """
    import os
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from rich.console import Console
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from mmp.inference.arrow_input import arrow_predictor
    from mmp.io.readers import iter_tables
    from mmp.io.writers import open_output
    from mmp.masking import scrub

    from mmp.models.drift import DriftCounts

    workers = workers or os.cpu_count() or 1
    console = Console(stderr=True, quiet=quiet, highlight=False, soft_wrap=True)
    profile = model.drift_profile if monitoring is not None and monitoring.enabled else None
    drift = DriftCounts(profile) if profile is not None else None
    fast = arrow_predictor(model.tabular)
    started = time.perf_counter()
    chunks = iter_tables(source, None, storage_options, chunk_rows, column_types(model), connection, params)
    columns = [TextColumn("[bold]predicting[/]"), TextColumn("{task.completed:,.0f} rows"),
               TextColumn("{task.fields[rate]:,.0f} rows/s"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False, disable=quiet) as progress, \
            open_output(output_uri, output_format, storage_options, mode, model.run_id,
                        model.entity_columns) as output, \
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmp-predict") as pool:
        task = progress.add_task("predict", total=None, rate=0.0)
        pending: deque = deque()

        def write_oldest() -> None:
            predicted, counts = pending.popleft().result()
            output.write(predicted)
            if counts is not None:
                drift.merge(counts)
            elapsed = time.perf_counter() - started
            progress.update(task, completed=output.rows, rate=output.rows / elapsed if elapsed else 0.0)

        try:
            for table in read_errors_as_user_errors(chunks, source):
                if output.rows == 0 and not pending:
                    check_columns(model, table.schema, source)
                pending.append(pool.submit(predict_and_count, model, table, profile, fast))
                if len(pending) > workers:
                    write_oldest()
            while pending:
                write_oldest()
        finally:
            for future in pending:
                future.cancel()
        if output.rows == 0:
            raise UserError(f"-d {source}: the data has no rows")
    result = BatchResult(output.rows, time.perf_counter() - started, output_uri)
    console.print(f"[green]✓[/] {result.rows:,} rows in {result.seconds:.2f} s "
                  f"({result.rows_per_second:,.0f} rows/s) -> {scrub(output_uri)}")
    if monitoring is not None and monitoring.enabled:
        from mmp.inference.drift_report import fail_if_asked, finish, unprofiled_reason

        if drift is None:
            console.print(unprofiled_reason(model), markup=False)
        else:
            if connected is not None:
                connected.result()
            result.drift = finish(model, drift, monitoring, source, experiment, console)
            fail_if_asked(result.drift, monitoring, fail_on_drift, output_uri)
    return result


def load_model(uri: str, env: Any) -> tuple[LoggedModel, Any]:
    """(the model at `uri`, a future of the MLflow connection or None when already connected).

    For the local engine, a model whose folder is on this disk (a runs:/ URI in an embedded store)
    is read without MLflow; MLflow is then imported, on a thread while the rows stream, only when
    a drift run will be logged. Anything else is resolved and loaded by MLflow, as before."""
    from mmp.io import tracking
    from mmp.models import logged

    model = None
    if env.batch.engine != "spark":
        from mmp.io.run_store import local_model_folder

        folder = local_model_folder(uri, tracking.mlflow_uri(env.mlflow.tracking_uri))
        model = logged.load_folder(uri, folder) if folder else None
    if model is None:
        tracking.connect(env.mlflow.tracking_uri)
        return logged.load(uri), None
    if env.monitoring.enabled and model.task != "timeseries" and model.info.get("drift_profile"):
        from mmp.inference.background import in_background

        return model, in_background(_ready_to_log_drift, env.mlflow.tracking_uri)
    return model, None


def _ready_to_log_drift(tracking_uri: str | None) -> None:
    """What logging the drift run needs before it starts: MLflow connected, matplotlib imported."""
    from mmp.io import tracking

    tracking.connect(tracking_uri)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def read_errors_as_user_errors(chunks: Any, source: str) -> Any:
    """Parse errors in the input (a bad value in a typed column, a corrupt block) are bad input: exit 2."""
    import polars as pl
    import pyarrow as pa

    try:
        yield from chunks
    except (pa.ArrowInvalid, pa.ArrowTypeError, pl.exceptions.PolarsError) as exc:
        raise UserError(f"-d {source}: cannot read the data: {str(exc).strip().splitlines()[0]}") from exc


def batch_command(request: Any, uri: str, data: str, output: str | None, chunk_rows: int | None,
                  quiet: bool = False, params_json: str | None = None, fail_on_drift: bool = False) -> str:
    """`mmp batch-inference`: compose the env, load the model at `uri`, predict `data` into the
    env's (or the given) output; returns the output URI. `params_json`: a .sql input's parameters.
    `fail_on_drift`: raise `DriftAlert` (exit 3) after writing when some column's drift alerts."""
    from mmp.config.env import compose_env
    from mmp.config.request import json_object
    from mmp.io.writers import destination, output_target

    if chunk_rows is not None and chunk_rows < 1:
        raise UserError(f"--chunk-rows: must be a positive number of rows, got {chunk_rows}")
    params = json_object(params_json) if params_json else None
    env = compose_env(request, prog="mmp batch-inference")
    model, connected = load_model(uri, env)
    if env.monitoring.enabled and (env.batch.engine == "spark" or model.task == "timeseries") and not quiet:
        print(f"drift: not computed for {'batch.engine=spark' if env.batch.engine == 'spark' else 'timeseries models'}"
              " (only the local engine counts drift, on tabular models)", file=sys.stderr)
    if env.batch.engine == "spark":  # a Spark session reads, predicts (mlflow's spark_udf) and writes
        from mmp.inference.spark import run_spark_batch

        if env.output.table or params:  # SQLAlchemy sinks and .sql templates are the local engine's
            raise UserError("batch.engine=spark: SQL tables are read and written through JDBC "
                            "(-d/-o jdbc:<url>#<table>), not output.connection/output.table or -p; "
                            "use --engine local for those")
        return run_spark_batch(model, data, output or env.output.path, env.output.format, env.batch.spark,
                               quiet=quiet).output_uri
    target = output_target(output, env.output.path, env.output.connection, env.output.table)
    output_uri, output_format = destination(target, env.output.format, model.run_id)
    if model.task == "timeseries":  # a forecast reads each series whole: no row chunks
        from mmp.inference.forecast_batch import run_forecast_batch

        run_forecast_batch(model, data, output_uri, output_format, env.source.storage_options, quiet=quiet,
                           mode=env.output.mode)
        return output_uri
    run_batch(model, data, output_uri, output_format, env.source.storage_options,
              chunk_rows or env.output.chunk_rows, quiet=quiet, mode=env.output.mode,
              connection=env.source.connection, params=params, monitoring=env.monitoring,
              fail_on_drift=fail_on_drift, experiment=env.mlflow.experiment, connected=connected)
    return output_uri
