"""Metrics a recipe can name in `evaluate.metrics`, per task."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    summary: str
    greater_is_better: bool


METRICS: dict[str, dict[str, Metric]] = {
    "classification": {
        "accuracy": Metric("share of correct labels", True),
        "precision": Metric("precision (binary: positive class; multi-class: macro average)", True),
        "recall": Metric("recall (binary: positive class; multi-class: macro average)", True),
        "f1": Metric("F1 score (binary: positive class; multi-class: macro average)", True),
        "roc_auc": Metric("area under the ROC curve (multi-class: one-vs-rest, macro)", True),
        "log_loss": Metric("cross-entropy of the predicted probabilities", False),
    },
    "regression": {
        "rmse": Metric("root mean squared error", False),
        "mae": Metric("mean absolute error", False),
        "r2": Metric("coefficient of determination", True),
        "mape": Metric("mean absolute percentage error", False),
    },
    "clustering": {
        "silhouette": Metric("mean silhouette coefficient", True),
        "davies_bouldin": Metric("Davies-Bouldin index", False),
    },
}

DEFAULT_METRICS = {
    "classification": ["accuracy", "f1", "roc_auc", "log_loss"],
    "regression": ["rmse", "mae", "r2"],
    "clustering": ["silhouette", "davies_bouldin"],
}
