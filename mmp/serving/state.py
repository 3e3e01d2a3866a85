"""One serving worker's model: what it is, loading it in the background, swapping in a new version
(alias following), and predicting a list of rows in the batcher's model thread."""

from __future__ import annotations

import functools
import gc
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmp.serving.columns import Columns
from mmp.serving.request_schema import RowSchema

log = logging.getLogger("mmp.serve")


@dataclass
class ServingState:
    """One worker's model: what it is (known at start) and whether it is loaded yet."""

    model_dir: str
    info: dict[str, Any]
    settings: dict[str, Any]
    schema: RowSchema
    model: Any = None
    error: str | None = None
    loaded: threading.Event = field(default_factory=threading.Event)
    batcher: Any = None
    drain: Any = None  # the worker's Drain: once started, /ready says so
    monitoring: dict[str, Any] = field(default_factory=dict)  # the env's `monitoring:` section
    drift: Any = None  # mmp.serving.drift.DriftMonitor, built by drift_monitor(model_dir, monitoring)
    follow: dict[str, Any] | None = None  # following models:/NAME@ALIAS: version, last_check, error (mmp.serving.follow)

    @property
    def ready(self) -> bool:
        return self.loaded.is_set() and self.model is not None

    @property
    def model_uri(self) -> str:
        return self.info.get("model_uri", "")

    def load(self) -> None:
        """Unpickle the model (without MLflow when it is mmp's) and warm it up; sets `ready`."""
        from mmp.serving.batching import Batcher

        try:
            model = load_model(self.model_dir)
            batching = self.settings.get("batching", {})
            predict, warm_up = _predict_function(self, model)
            self.batcher = Batcher(predict, batching.get("max_batch_size", 4096),
                                   batching.get("max_wait_ms", 0), batching.get("enabled", True))
            self.model = model
            if warm_up:
                predict(warm_up)  # first call pays lazy imports
            from mmp.serving.drift import drift_monitor

            self.drift = drift_monitor(self.model_dir, self.monitoring)  # after the warm-up: it is not traffic
            # Everything loaded so far (libraries, the model) lives as long as the worker: keep it out
            # of the garbage collector's full passes, which otherwise stall requests for 100+ ms.
            gc.collect()
            gc.freeze()
        except Exception as exc:  # stay alive, stay unready, say why on /ready
            log.exception("model failed to load")
            self.model, self.error = None, f"{type(exc).__name__}: {exc}"
        finally:
            self.loaded.set()

    def swap(self, model_dir: str, info: dict[str, Any], schema: RowSchema) -> None:
        """Serve the model in `model_dir` instead: load and warm it up beside the current one, switch
        between two batches of the model thread (in-flight requests finish on the old model, later
        ones get the new), then free the old. Raises, keeping the current model, if the new one fails."""
        import dataclasses

        model = load_model(model_dir)
        candidate = dataclasses.replace(self, model_dir=model_dir, info=info, schema=schema, model=model, drift=None)
        predict, warm_up = _predict_function(candidate, model)
        if warm_up:
            predict(warm_up)  # a model that cannot predict stays out
        from mmp.serving.drift import drift_monitor

        drift = drift_monitor(model_dir, self.monitoring)
        old = self.model

        def switch() -> None:  # on the model thread, between two batches
            self.model_dir, self.info, self.schema, self.model, self.drift = model_dir, info, schema, model, drift
            if info.get("task") == "timeseries":  # bound to the model itself, not to the state
                self.batcher.predict = predict

        self.batcher.executor.submit(switch).result()
        del old, candidate
        gc.unfreeze()  # the old model was frozen with everything else at load: let a full pass free it
        gc.collect()
        gc.freeze()

    def _predict_rows(self, rows: Columns) -> Columns:
        """The prediction columns of a block of checked request rows (mmp.serving.columns)."""
        frame = rows.frame()
        if hasattr(self.model, "predict_columns"):
            columns = self.model.predict_columns(frame)
        else:
            out = self.model.predict_frame(frame)  # a model logged by an mmp without predict_columns
            columns = {c: out[c].to_numpy() for c in out.columns}
        if self.drift is not None:  # counted here, in the model thread, never on the event loop
            self.drift.record(frame, columns)
        return Columns(columns, len(frame))


class _PyfuncAdapter:
    """A non-mmp MLflow pyfunc behind the same predict_frame contract."""

    def __init__(self, pyfunc: Any):
        self.pyfunc = pyfunc

    def predict_columns(self, frame: Any) -> dict[str, Any]:
        import pandas as pd

        out = self.pyfunc.predict(frame)
        out = out if isinstance(out, pd.DataFrame) else pd.DataFrame({"prediction": list(out)})
        return {c: out[c].to_numpy() for c in out.columns}


def shape_rows(out: dict[str, Any]) -> list[dict]:
    """Prediction columns -> one JSON-ready dict per row: prediction, probability (binary: positive
    class; multi-class: the predicted class's) and, for multi-class, every class's probability; any
    other column (a quantile's `prediction_q05`, ...) as it is."""
    columns = {c: values.tolist() for c, values in out.items()}
    predictions = columns.pop("prediction")
    binary = columns.pop("probability", None)
    classes = [c[len("probability_"):] for c in columns if c.startswith("probability_")]
    extra = [c for c in columns if not c.startswith("probability_")]
    rows = []
    for i, prediction in enumerate(predictions):
        row: dict[str, Any] = {"prediction": prediction}
        if binary is not None:
            row["probability"] = binary[i]
        elif classes:
            probabilities = {c: columns[f"probability_{c}"][i] for c in classes}
            row["probability"] = probabilities.get(str(prediction), max(probabilities.values()))
            row["probabilities"] = probabilities
        else:
            row["probability"] = None
        row.update({c: columns[c][i] for c in extra})
        rows.append(row)
    return rows


def load_model(model_dir: str) -> Any:
    """The model in an MLflow model dir: mmp's own unpickled without MLflow, any other pyfunc through MLflow."""
    from mmp.models.tabular import load_from_mlflow_dir

    model = load_from_mlflow_dir(model_dir)
    if model is None:
        import mlflow

        model = _PyfuncAdapter(mlflow.pyfunc.load_model(model_dir))
    return model


def _predict_function(state: ServingState, model: Any) -> tuple[Any, Any]:
    """(what the batcher calls with a list of requests, a warm-up request or None) for `state` serving `model`."""
    if state.info.get("task") == "timeseries":  # one series per request (mmp.serving.forecast_routes)
        from mmp.serving.forecast_routes import forecast_meta, forecast_responses, warm_up_request

        meta = forecast_meta(state.model_dir)
        return functools.partial(forecast_responses, model, meta), warm_up_request(model, meta)
    return state._predict_rows, state.schema.row_as_columns({c: None for c in state.schema.features})


def model_schema(model_dir: str) -> RowSchema:
    """The input columns of the MLflow model in `model_dir` (mmp's metadata, else its signature)."""
    import yaml

    mlmodel = yaml.safe_load((Path(model_dir) / "MLmodel").read_text(encoding="utf-8"))
    meta = (mlmodel.get("metadata") or {}).get("mmp") or {}
    features = meta.get("features") or [c["name"] for c in json.loads(mlmodel["signature"]["inputs"])]
    return RowSchema(features, meta.get("numeric") or [])
