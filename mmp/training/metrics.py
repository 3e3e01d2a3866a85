"""Compute the metrics a recipe names in `evaluate.metrics` (defined in mmp.config.catalogue) on one split."""

from __future__ import annotations

from typing import Any


def compute(task: str, names: list[str], y_true: Any = None, y_pred: Any = None, proba: Any = None,
            classes: list | None = None, X: Any = None, labels: Any = None) -> dict[str, float]:
    """The named metrics for one split. Classification needs labels (and probabilities for
    roc_auc/log_loss), regression needs values, clustering needs the transformed X and cluster ids."""
    import numpy as np
    from sklearn import metrics as m

    out: dict[str, float] = {}
    for name in names:
        if task == "classification":
            binary = classes is not None and len(classes) == 2
            average = "binary" if binary else "macro"
            pos = {"pos_label": classes[1]} if binary else {}
            if name == "accuracy":
                value = m.accuracy_score(y_true, y_pred)
            elif name in ("precision", "recall", "f1"):
                fn = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[name]
                value = fn(y_true, y_pred, average=average, zero_division=0, **pos)
            elif name == "roc_auc":
                if proba is None or len(set(y_true)) < 2:
                    continue  # undefined on a split with one class, or a model without probabilities
                value = (m.roc_auc_score(y_true == classes[1], proba[:, 1]) if binary else
                         m.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes))
            elif name == "log_loss":
                if proba is None:
                    continue
                value = m.log_loss(y_true, proba, labels=classes)
            elif name == "brier":
                if proba is None:
                    continue
                value = brier(y_true, proba, classes)
        elif task == "regression":
            if name == "rmse":
                value = float(np.sqrt(m.mean_squared_error(y_true, y_pred)))
            elif name == "mae":
                value = m.mean_absolute_error(y_true, y_pred)
            elif name == "r2":
                value = m.r2_score(y_true, y_pred)
            elif name == "mape":
                value = m.mean_absolute_percentage_error(y_true, y_pred)
        else:
            if labels is None or len(set(labels)) < 2 or len(set(labels)) >= len(labels):
                continue  # both scores need 2 <= clusters < samples
            value = (m.silhouette_score(X, labels) if name == "silhouette" else m.davies_bouldin_score(X, labels))
        out[name] = float(value)
    return out


def brier(y_true: Any, proba: Any, classes: list) -> float:
    """Brier score: binary, of the positive class's probability; multi-class, halved over all classes
    (scikit-learn's scaling, so both lie in [0, 1])."""
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(y_true, proba, labels=classes))


def probability_metrics(y_true: Any, proba: Any, classes: list) -> dict[str, float]:
    """Brier score and log loss of one split's probabilities: what calibration is judged by."""
    from sklearn.metrics import log_loss

    return {"brier": brier(y_true, proba, classes), "log_loss": float(log_loss(y_true, proba, labels=classes))}


def quantile_metrics(y_true: Any, columns: dict[str, Any]) -> dict[str, float]:
    """Pinball loss per quantile (`pinball_q05`), and coverage and mean width of the outermost pair
    (`coverage_q05_q95`, `width_q05_q95`). `columns`: quantile -> (its name without `prediction_`, values)."""
    import numpy as np
    from sklearn.metrics import mean_pinball_loss

    y = np.asarray(y_true, dtype="float64")
    out = {f"pinball_{name}": float(mean_pinball_loss(y, values, alpha=q)) for q, (name, values) in columns.items()}
    if len(columns) >= 2:
        (low_name, low), (high_name, high) = columns[min(columns)], columns[max(columns)]
        out[f"coverage_{low_name}_{high_name}"] = float(np.mean((y >= low) & (y <= high)))
        out[f"width_{low_name}_{high_name}"] = float(np.mean(np.asarray(high) - np.asarray(low)))
    return out
