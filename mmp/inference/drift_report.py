"""A drift report on data a model sees after training: the summary a user reads, the MLflow drift
run, and exit 3 past the alert limit.

Batch inference and `mmp monitor` count chunks into `mmp.models.drift.DriftCounts` as they stream;
this module turns the merged counts into what is printed and logged. The drift run lives in the
model run's experiment, tagged `mmp.kind=drift` and `mmp.model_run_id`, with one `psi_<column>`
metric per feature and prediction column, the table (`drift/report.json`, `drift/report.csv`)
and a bar chart (`drift/psi.png`).
"""

from __future__ import annotations

import re
from typing import Any

from mmp.errors import ResultError
from mmp.models.drift import NO_DATA, DriftCounts
from mmp.models.logged import LoggedModel

EXIT_DRIFT = 3  # batch-inference / monitor: some column reached its alert limit (a CronJob fails loudly)
REPORT_DIR = "drift"
UNPROFILED_TASKS = ("timeseries", "causal")


class DriftAlert(ResultError):
    """Some column's PSI reached its alert limit and the user asked to fail on it: `mmp` prints
    `stdout` (the output URI, or the status), the message, and exits 3. Raised after the output is written."""

    exit_code = EXIT_DRIFT

    def __init__(self, message: str, stdout: str = "alert"):
        super().__init__(f"drift: {message}", stdout)


def thresholds(monitoring: Any) -> dict[str, Any]:
    """The env's `monitoring:` section as `DriftCounts.report` reads it."""
    return monitoring.model_dump(include={"data_drift", "prediction_drift", "features", "min_rows"})


def count_chunk(profile: dict[str, Any], table: Any, predicted: Any = None) -> DriftCounts:
    """Bucket counts of one chunk: its feature columns (a pyarrow Table) and, when given or present
    in `table`, its prediction columns (`predicted`, a pyarrow Table)."""
    counts = DriftCounts(profile)
    features = {name: table.column(name) for name in profile["features"] if name in table.column_names}
    source = predicted if predicted is not None else table
    predictions = {name: source.column(name) for name in profile["predictions"] if name in source.column_names}
    counts.add(features, predictions)
    return counts


def unprofiled_reason(model: LoggedModel) -> str | None:
    """Why this model's data cannot be checked for drift (one line), or None when it can."""
    if model.drift_profile is not None:
        return None
    if model.task in UNPROFILED_TASKS:
        return f"drift: not computed, {model.task} models carry no drift profile"
    return ("drift: not computed, the model carries no drift profile (it was trained with monitoring.enabled=false "
            "or by an mmp without drift monitoring; retrain it to get one)")


def rows_by_psi(report: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(group, column, entry) for every column, worst PSI first, columns without data last."""
    rows = [(group, name, entry) for group in ("features", "predictions") for name, entry in report[group].items()]
    return sorted(rows, key=lambda r: (r[2]["psi"] is None, -(r[2]["psi"] or 0.0), r[1]))


def alerts(report: dict[str, Any]) -> list[str]:
    """'column (PSI x >= limit)' for every column at or past its alert limit."""
    return [f"{name} (PSI {entry['psi']:.3f} >= {entry['alert']:g})" for _, name, entry in rows_by_psi(report)
            if entry["status"] == "alert"]


def summary(report: dict[str, Any]) -> list[str]:
    """The lines printed after batch inference / monitor: overall status, one line per column (worst
    first), and one line naming the columns the data did not have."""
    rows = [r for r in rows_by_psi(report) if r[2]["status"] != NO_DATA]
    absent = [name for _, name, entry in rows_by_psi(report) if entry["status"] == NO_DATA]
    width = max([len(name) for _, name, _ in rows] + [6])
    lines = [f"drift vs training data (PSI, {report['rows']:,} rows): {report['status']}"]
    for group, name, entry in rows:
        value = "-" if entry["psi"] is None else f"{entry['psi']:.4f}"
        kind = "prediction" if group == "predictions" else "feature"
        lines.append(f"  {name:<{width}}  {value:>8}  {entry['status']:<17}  {kind}")
    if absent:
        lines.append(f"  not in the data ({NO_DATA}): {', '.join(absent)}")
    return lines


def metric_name(column: str) -> str:
    """`psi_<column>` with the characters MLflow refuses in a metric name replaced by '_'."""
    return "psi_" + re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(column))


def log_drift_run(model: LoggedModel, report: dict[str, Any], source: str, experiment: str | None) -> str:
    """Log the report as a run in the model run's experiment (else `experiment`); returns its id."""
    import mlflow

    from mmp.io import tracking
    from mmp.masking import scrub

    client = mlflow.MlflowClient()
    experiment_id = None
    if model.run_id:
        experiment_id = client.get_run(model.run_id).info.experiment_id
    elif experiment:
        experiment_id = tracking.experiment_id(experiment, mlflow.get_tracking_uri())
    tags = {"mmp.kind": "drift", "mmp.model_run_id": model.run_id or "", "mmp.model_uri": model.uri,
            "mmp.data_source": str(scrub(source)), "mmp.drift_status": report["status"], **tracking.owner_tags()}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"drift-{(model.run_id or 'model')[:8]}",
                          tags=tags) as run:
        rows = rows_by_psi(report)
        metrics = {metric_name(name): entry["psi"] for _, name, entry in rows if entry["psi"] is not None}
        statuses = [entry["status"] for _, _, entry in rows]
        metrics.update({"rows": report["rows"], "alerts": statuses.count("alert"), "warnings": statuses.count("warn")})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(report, f"{REPORT_DIR}/report.json")
        mlflow.log_text(_csv(report), f"{REPORT_DIR}/report.csv")
        figure = _plot(report)
        mlflow.log_figure(figure, f"{REPORT_DIR}/psi.png")
        import matplotlib.pyplot as plt

        plt.close(figure)
        return run.info.run_id


def _csv(report: dict[str, Any]) -> str:
    import csv
    import io

    out = io.StringIO()
    fields = ["column", "kind", "psi", "status", "rows", "missing_rate", "expected_missing_rate", "warn", "alert"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for group, name, entry in rows_by_psi(report):
        writer.writerow({"column": name, "kind": "prediction" if group == "predictions" else "feature",
                         **{k: entry[k] for k in fields[2:]}})
    return out.getvalue()


def _plot(report: dict[str, Any]) -> Any:
    """Horizontal PSI bars, worst on top, coloured by status, with the data drift warn/alert lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows_by_psi(report) if r[2]["psi"] is not None][:40][::-1]
    colours = {"ok": "tab:green", "warn": "tab:orange", "alert": "tab:red", "insufficient_data": "tab:gray"}
    figure, axes = plt.subplots(figsize=(7, max(2.5, 0.28 * len(rows) + 1.2)))
    axes.barh([name for _, name, _ in rows], [entry["psi"] for _, _, entry in rows],
              color=[colours.get(entry["status"], "tab:gray") for _, _, entry in rows])
    features = [entry for group, _, entry in rows if group == "features"] or [entry for _, _, entry in rows]
    if features:
        axes.axvline(features[0]["warn"], color="tab:orange", linestyle="--", label=f"warn {features[0]['warn']:g}")
        axes.axvline(features[0]["alert"], color="tab:red", linestyle="--", label=f"alert {features[0]['alert']:g}")
        axes.legend(loc="lower right")
    axes.set_xlabel("PSI vs training data")
    axes.set_title(f"Drift: {report['status']} ({report['rows']:,} rows)")
    figure.tight_layout()
    return figure


def finish(model: LoggedModel, counts: DriftCounts, monitoring: Any, source: str, experiment: str | None,
           console: Any) -> dict[str, Any]:
    """Report the counted drift: print the summary on `console`, log the drift run; returns the report."""
    report = counts.report(thresholds(monitoring))
    report["model_uri"], report["model_run_id"] = model.uri, model.run_id
    for line in summary(report):
        console.print(line, markup=False, highlight=False)
    report["drift_run_id"] = log_drift_run(model, report, source, experiment)
    console.print(f"drift run {report['drift_run_id']} (mmp.kind=drift) logged", markup=False, highlight=False)
    return report


def fail_if_asked(report: dict[str, Any], monitoring: Any, fail_on_drift: bool, stdout: str = "alert") -> None:
    """Raise `DriftAlert` (exit 3, printing `stdout`) when asked to fail (`fail_on_drift` or
    `monitoring.fail_on_alert`) and some column reached its alert limit."""
    alerting = alerts(report)
    if alerting and (fail_on_drift or monitoring.fail_on_alert):
        raise DriftAlert("past the alert limit: " + ", ".join(alerting), stdout)

