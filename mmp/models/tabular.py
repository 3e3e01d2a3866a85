"""The logged model: preprocessing + estimator as one scikit-learn Pipeline, with mmp's input and
output contract.

The same `TabularModel.predict_frame` serves training-time evaluation, batch inference, `mlflow
models serve` (through `mmp.models.mlflow_model`) and the BentoML service, so there is no
training/serving skew by construction. Its output follows DESIGN §6: `prediction`, then
`probability` (binary: the positive class) or `probability_<class>` (multi-class), or, for quantile
regression, `prediction_q<NN>` per quantile (`prediction_q05`, `prediction_q50`, ...). This module
imports only numpy and pandas (unpickling adds the estimator's own library), so a server can load
the model without importing MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

class InputError(ValueError):
    """A prediction input that does not fit the model's columns; the message names the column."""


def model_input(frame: pd.DataFrame, features: list[str], numeric: list[str]) -> pd.DataFrame:
    """The model's view of `frame`: its feature columns in training order, numbers as float64
    (so integers and missing values share one type), text as objects with NaN for missing."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise InputError(f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    numeric_set = set(numeric)
    if len(numeric_set) == len(features):
        try:  # all numbers: one float64 block, the fast path a server takes on every request
            block = frame[features].to_numpy(dtype="float64")
            return pd.DataFrame(block, columns=features, index=frame.index)
        except (TypeError, ValueError):
            pass  # some value is not a number: the column-by-column path names it
    out = {}
    for column in features:
        values = frame[column]
        if column in numeric_set:
            if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
                converted = pd.to_numeric(values, errors="coerce")
                bad = converted.isna() & values.notna()
                if bad.any():
                    raise InputError(f"column '{column}' must be numeric, got {values[bad].iloc[0]!r}")
                values = converted
            out[column] = values.astype("float64")
        else:
            values = values.astype(object)
            out[column] = values.where(values.notna(), np.nan)
    return pd.DataFrame(out, index=frame.index)


def quantile_column(q: float) -> str:
    """The output column of quantile `q`: its decimals, at least two: 0.05 -> prediction_q05,
    0.5 -> prediction_q50, 0.975 -> prediction_q975."""
    return "prediction_q" + f"{q:.6f}".split(".")[1].rstrip("0").ljust(2, "0")


def prediction_columns(pipeline: Any, inputs: pd.DataFrame, task: str, classes: list | None) -> dict[str, np.ndarray]:
    """`prediction` (+ probability columns for classifiers, quantile columns for quantile regression)
    as arrays, for rows in model-input form. A classifier predicts class codes 0..k-1; `classes`
    holds the label of each code."""
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    if hasattr(final, "predict_with_quantiles"):
        features = pipeline[:-1].transform(inputs) if len(getattr(pipeline, "steps", ())) > 1 else inputs
        point, matrix = final.predict_with_quantiles(features)
        return {"prediction": point, **{quantile_column(q): matrix[:, i] for i, q in enumerate(final.quantiles_)}}
    if task != "classification" or classes is None:
        return {"prediction": np.asarray(pipeline.predict(inputs))}
    labels = np.asarray(classes, dtype=object)
    if hasattr(pipeline, "predict_proba"):
        proba = np.asarray(pipeline.predict_proba(inputs), dtype="float64")
        codes = proba.argmax(axis=1)
    else:
        proba, codes = None, np.asarray(pipeline.predict(inputs), dtype="int64")
    predicted = labels[codes]
    if all(isinstance(label, (bool, np.bool_)) for label in classes):
        predicted = predicted.astype(bool)
    elif all(isinstance(label, (int, np.integer)) for label in classes):
        predicted = predicted.astype("int64")
    columns = {"prediction": predicted}
    if proba is not None and len(classes) == 2:
        columns["probability"] = proba[:, 1]
    elif proba is not None:
        columns.update({f"probability_{label}": proba[:, i] for i, label in enumerate(classes)})
    return columns


def prediction_frame(pipeline: Any, inputs: pd.DataFrame, task: str, classes: list | None) -> pd.DataFrame:
    """`prediction_columns` as a DataFrame on the inputs' index."""
    return pd.DataFrame(prediction_columns(pipeline, inputs, task, classes), index=inputs.index)


class TabularModel:
    """A fitted scikit-learn Pipeline with the columns it reads and the labels of its class codes."""

    def __init__(self, pipeline: Any, task: str, features: list[str], numeric: list[str], classes: list | None):
        self.pipeline = pipeline
        self.task = task
        self.features = list(features)
        self.numeric = list(numeric)
        self.classes = list(classes) if classes is not None else None

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predict a pandas frame holding (at least) the feature columns."""
        return prediction_frame(self.pipeline, model_input(frame, self.features, self.numeric), self.task, self.classes)

    def predict_columns(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """The same predictions as arrays, without building an output frame (a server's hot path)."""
        return prediction_columns(self.pipeline, model_input(frame, self.features, self.numeric), self.task, self.classes)


MODEL_ARTIFACT = "model"  # the name of the pickled TabularModel among the pyfunc's artifacts


def load_from_mlflow_dir(model_dir: str | Path, meta: dict | None = None) -> TabularModel | None:
    """The TabularModel inside a downloaded MLflow model folder, unpickled without MLflow; None when
    the folder holds some other kind of model. `meta`: its MLmodel, when the caller has read it."""
    import cloudpickle
    import yaml

    if meta is None:
        meta = yaml.safe_load((Path(model_dir) / "MLmodel").read_text())
    artifacts = (meta.get("flavors", {}).get("python_function", {}).get("artifacts") or {})
    path = (artifacts.get(MODEL_ARTIFACT) or {}).get("path")
    if not path:
        return None
    with open(Path(model_dir) / path, "rb") as f:
        return cloudpickle.load(f)
