"""Evaluation plots logged with each run: confusion matrix and ROC (classification), residuals
(regression), clusters (clustering), and feature importance where the model has it."""

from __future__ import annotations

from typing import Any, Iterator


def figures(task: str, model: Any, X: Any, y_true: Any, predicted: Any, classes: list | None) -> Iterator[tuple[str, Any]]:
    """(name, matplotlib figure) pairs for one split."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    if task == "classification" and y_true is not None:
        yield "confusion_matrix", _confusion(y_true, predicted["prediction"].to_numpy(), classes)
        if "probability" in predicted or any(c.startswith("probability_") for c in predicted.columns):
            yield "roc_curve", _roc(y_true, predicted, classes)
    elif task == "regression" and y_true is not None:
        yield "residuals", _residuals(np.asarray(y_true, dtype=float), predicted["prediction"].to_numpy(dtype=float))
    importance = _importance(model)
    if importance is not None:
        yield "feature_importance", _bars(*importance)


def close(figure: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)


def _confusion(y_true: Any, y_pred: Any, classes: list | None):
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(5, 4.5))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=classes, ax=ax, colorbar=False)
    ax.set_title("Confusion matrix (test)")
    fig.tight_layout()
    return fig


def _roc(y_true: Any, predicted: Any, classes: list | None):
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import RocCurveDisplay

    fig, ax = plt.subplots(figsize=(5, 4.5))
    y_true = np.asarray(y_true)
    if "probability" in predicted:
        pairs = [(classes[1], predicted["probability"].to_numpy())]
    else:
        pairs = [(c, predicted[f"probability_{c}"].to_numpy()) for c in classes]
    for label, score in pairs:
        positives = y_true == label
        if 0 < positives.sum() < len(y_true):
            RocCurveDisplay.from_predictions(positives, score, name=str(label), ax=ax)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_title("ROC curve (test, one-vs-rest)")
    fig.tight_layout()
    return fig


def _residuals(y_true: Any, y_pred: Any):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    left.scatter(y_pred, y_true - y_pred, s=10, alpha=0.6)
    left.axhline(0, color="grey", linestyle=":")
    left.set(xlabel="predicted", ylabel="actual - predicted", title="Residuals (test)")
    right.scatter(y_true, y_pred, s=10, alpha=0.6)
    low, high = min(y_true.min(), y_pred.min()), max(y_true.max(), y_pred.max())
    right.plot([low, high], [low, high], color="grey", linestyle=":")
    right.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual (test)")
    fig.tight_layout()
    return fig


def _importance(model: Any) -> tuple[list[str], Any] | None:
    import numpy as np

    estimator = model[-1]
    values = getattr(estimator, "feature_importances_", None)
    if values is None and getattr(estimator, "coef_", None) is not None:
        coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=float))
        values = np.abs(coef).mean(axis=0)
    if values is None:
        return None
    try:
        names = list(model[:-1].get_feature_names_out())
    except Exception:  # a transformer without feature names
        names = [f"x{i}" for i in range(len(values))]
    if len(names) != len(values):
        return None
    return names, np.asarray(values, dtype=float)


def _bars(names: list[str], values: Any, top: int = 20):
    import matplotlib.pyplot as plt
    import numpy as np

    order = np.argsort(values)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(order) + 1.2))
    ax.barh([names[i] for i in order], values[order])
    ax.set_title("Feature importance")
    fig.tight_layout()
    return fig
