"""Drift in serving: what a worker is asked and answers, against the model's training profile
(`mmp.models.drift`, PSI), over a sliding window of the worker's last `monitoring.window_rows` rows.

The batcher's model thread counts each batch after it is predicted (features from the rows,
prediction columns from the model's output), so the event loop never touches a value; the gauges
are refreshed from a timer at most every `EXPORT_EVERY_S`. On BentoML's /metrics:

    mmp_drift_psi{column, kind="feature"|"prediction"}   PSI of the window against training
    mmp_drift_status{column, kind}                       -1 fewer than min_rows rows, 0 ok, 1 warn, 2 alert
    mmp_drift_window_rows                                rows in the worker's window

Each worker keeps its own window (it sees only its share of the traffic) and BentoML serves
/metrics in prometheus_client's multiprocess mode: every value carries the worker's `pid` label
(mode "liveall": a worker's values leave with it), and dashboards and alert rules aggregate with
`max by (column, kind)`. A maximum of per-worker values, rather than one merged window, because a
drifted stream that a load balancer sends to one worker must not be diluted by the others.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from mmp.models.drift import DriftWindow

log = logging.getLogger("mmp.serve")

STATUS_VALUES = {"no_data": -1, "insufficient_data": -1, "ok": 0, "warn": 1, "alert": 2}
KINDS = {"features": "feature", "predictions": "prediction"}
EXPORT_EVERY_S = 0.2
GAUGE_MODE = "liveall"


def drift_monitor(model_dir: str, monitoring: dict[str, Any] | None) -> "DriftMonitor | None":
    """The worker's drift state for the model in `model_dir` under the env's `monitoring:` settings
    (None: the defaults); None when monitoring is off or the model has no profile (forecasts, causal
    models, models logged before profiles). The previous model's gauges are cleared either way."""
    from mmp.config.spec import MonitoringSpec

    settings = MonitoringSpec.model_validate(monitoring or {})
    _GAUGES.clear()
    if not settings.enabled:
        return None
    profile = read_profile(model_dir)
    if profile is None:
        return None
    try:
        return DriftMonitor(profile, settings.model_dump())
    except Exception:  # a profile this mmp cannot read: serve the model all the same, unmonitored
        log.exception("drift is not measured: the drift profile in %s is unusable", model_dir)
        _GAUGES.clear()
        return None


def read_profile(model_dir: str) -> dict[str, Any] | None:
    """The drift profile logged with the model (the file MLmodel's `mmp.drift_profile` names); None when there is none."""
    import yaml

    root = Path(model_dir)
    try:
        meta = (yaml.safe_load((root / "MLmodel").read_text(encoding="utf-8")).get("metadata") or {}).get("mmp") or {}
    except (OSError, AttributeError, yaml.YAMLError):
        return None
    named = meta.get("drift_profile")
    if not isinstance(named, str) or not (root / named).is_file():
        return None
    try:
        return json.loads((root / named).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # serve the model all the same, unmonitored
        log.warning("drift is not measured: cannot read %s (%s)", root / named, exc)
        return None


class DriftMonitor:
    """One worker's window, its report and its gauges; `record` is called from the model thread."""

    def __init__(self, profile: dict[str, Any], settings: dict[str, Any]):
        self.window = DriftWindow(profile, settings["window_rows"])
        self.numeric = [name for name, column in profile["features"].items() if column["kind"] == "numeric"]
        self.other = [name for name, column in profile["features"].items() if column["kind"] != "numeric"]
        self.thresholds = {k: settings[k] for k in ("data_drift", "prediction_drift", "features", "min_rows")}
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None
        _GAUGES.current = self
        _GAUGES.export(self.report())  # every column shows up on /metrics from the start

    def record(self, frame: Any, predictions: dict[str, Any]) -> None:
        """Count one predicted batch: `frame` the rows (a DataFrame), `predictions` the model's output columns."""
        columns = self._columns(frame)
        with self.lock:
            self.window.add(columns, predictions)
            if self.timer is None:  # one export per EXPORT_EVERY_S, however many batches came
                self.timer = threading.Timer(EXPORT_EVERY_S, self._export)
                self.timer.daemon = True
                self.timer.start()

    def _columns(self, frame: Any) -> dict[str, Any]:
        """Feature name -> values; numeric ones as float arrays (a tenth of the cost of counting a Series)."""
        import numpy as np

        columns = {}
        for name in self.numeric:
            if name in frame:
                values = frame[name].to_numpy()
                if values.dtype.kind not in "fiub":  # None (JSON null) becomes NaN
                    try:
                        values = values.astype(np.float64)
                    except (TypeError, ValueError):  # the profile's own conversion copes
                        values = frame[name]
                columns[name] = values
        columns.update({name: frame[name] for name in self.other if name in frame})
        return columns

    def report(self) -> dict[str, Any]:
        """The window's PSI, status and missing rate per feature and prediction column, and the worst status."""
        with self.lock:
            report = self.window.report(self.thresholds)
        if not report["rows"]:  # nothing asked yet: not "ok", just unknown
            report["status"] = "no_data"
        return {"status": report.pop("status"), "rows": report.pop("rows"), "window_rows": self.window.limit,
                "worker": os.getpid(), "thresholds": {k: v for k, v in self.thresholds.items() if k != "features"},
                **report}

    def _export(self) -> None:
        with self.lock:
            self.timer = None
        if _GAUGES.current is self:  # not a model swapped out meanwhile
            _GAUGES.export(self.report())


class _Gauges:
    """The three gauges, created once per process (a registry refuses a name twice) on first use."""

    def __init__(self) -> None:
        self.made: tuple[Any, Any, Any] | None = None
        self.current: DriftMonitor | None = None  # the monitor whose values the gauges show
        self.labels: set[tuple[str, str]] = set()

    def _make(self) -> tuple[Any, Any, Any]:
        if self.made is None:
            import bentoml

            labels = ["column", "kind"]
            self.made = (
                bentoml.metrics.Gauge(name="mmp_drift_psi", labelnames=labels, multiprocess_mode=GAUGE_MODE,
                                      documentation="PSI of this worker's window against the training profile"),
                bentoml.metrics.Gauge(name="mmp_drift_status", labelnames=labels, multiprocess_mode=GAUGE_MODE,
                                      documentation="drift status: -1 too few rows, 0 ok, 1 warn, 2 alert"),
                bentoml.metrics.Gauge(name="mmp_drift_window_rows", multiprocess_mode=GAUGE_MODE,
                                      documentation="rows in this worker's drift window"),
            )
        return self.made

    def export(self, report: dict[str, Any]) -> None:
        psi_gauge, status_gauge, rows_gauge = self._make()
        for group, kind in KINDS.items():
            for column, entry in report[group].items():
                psi = entry["psi"]
                psi_gauge.labels(column=column, kind=kind).set(float("nan") if psi is None else psi)
                status_gauge.labels(column=column, kind=kind).set(STATUS_VALUES.get(entry["status"], -1))
                self.labels.add((column, kind))
        rows_gauge.set(report["rows"])

    def clear(self) -> None:
        """No model's drift is measured any more (a swap): its values go out as NaN."""
        self.current = None
        if self.made is None:
            return
        psi_gauge, status_gauge, rows_gauge = self.made
        for column, kind in self.labels:
            psi_gauge.labels(column=column, kind=kind).set(float("nan"))
            status_gauge.labels(column=column, kind=kind).set(float("nan"))
        rows_gauge.set(0)
        self.labels.clear()


_GAUGES = _Gauges()
