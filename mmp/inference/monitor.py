"""`mmp monitor`: the drift report of any dataset against a model's training data, predicting nothing.

The data streams through in chunks that are only counted into the model's drift profile, so any
size works. Feature columns give data drift; the model's prediction columns, where the data holds
them, give prediction drift (a batch-inference output holds only those: prediction drift alone). The report is printed,
logged as a drift run beside the model's run, and optionally written as JSON (`-o`).
"""

from __future__ import annotations

from typing import Any

from mmp.errors import UserError


def monitor_command(request: Any, uri: str, data: str, output: str | None, chunk_rows: int | None = None,
                    quiet: bool = False, fail_on_drift: bool = False) -> str:
    """Compose the env, load the model at `uri`, count `data` into its drift profile, report; returns
    the overall status (ok, warn, alert, insufficient_data). Raises `DriftAlert` (exit 3) when asked."""
    import json

    import fsspec
    from rich.console import Console

    from mmp.config.env import compose_env
    from mmp.inference.batch import read_errors_as_user_errors, check_columns, column_types
    from mmp.inference.drift_report import count_chunk, fail_if_asked, finish
    from mmp.io import tracking
    from mmp.io.readers import iter_tables
    from mmp.models import logged
    from mmp.models.drift import DriftCounts

    if chunk_rows is not None and chunk_rows < 1:
        raise UserError(f"--chunk-rows: must be a positive number of rows, got {chunk_rows}")
    env = compose_env(request, prog="mmp monitor")
    tracking.connect(env.mlflow.tracking_uri)
    model = logged.load(uri)
    profile = model.drift_profile
    if profile is None:
        why = (f"{model.task} models carry none" if model.task in ("timeseries", "causal") else
               "it was logged with monitoring.enabled=false or by an mmp without drift monitoring; "
               "retrain it with this mmp (monitoring.enabled: true, the default) to get one")
        raise UserError(f"--run-id/--model-uri {uri}: the model has no drift profile ({why})")
    console = Console(stderr=True, quiet=quiet, highlight=False, soft_wrap=True)
    counts = DriftCounts(profile)
    chunks = iter_tables(data, None, env.source.storage_options, chunk_rows or env.output.chunk_rows,
                         column_types(model), env.source.connection)
    for table in read_errors_as_user_errors(chunks, data):
        if counts.rows == 0 and not _predictions_only(profile, table.column_names):
            check_columns(model, table.schema, data)
        counts.merge(count_chunk(profile, table))
    if counts.rows == 0:
        raise UserError(f"-d {data}: the data has no rows")
    report = finish(model, counts, env.monitoring, data, env.mlflow.experiment, console)
    if output:
        with fsspec.open(output, "w", **env.source.storage_options) as f:
            json.dump(report, f, indent=2)
    fail_if_asked(report, env.monitoring, fail_on_drift)
    return report["status"]


def _predictions_only(profile: dict[str, Any], columns: list[str]) -> bool:
    """A batch-inference output: the model's prediction columns and none of its features."""
    return (not any(name in columns for name in profile["features"])
            and any(name in columns for name in profile["predictions"]))
