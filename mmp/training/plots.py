"""Evaluation plots logged with each run: confusion matrix and ROC (classification), a reliability
diagram before and after calibration, residuals (regression), quantile intervals (quantile
regression), and feature importance where the model has it.

`render` draws them into PNG files; `mmp.training.plot_worker` runs it in a forked process so that
drawing overlaps with logging the model."""

from __future__ import annotations

from typing import Any, Iterator


def figures(task: str, y_true: Any, predicted: Any, classes: list | None, uncalibrated: Any = None,
            importance: tuple[list[str], Any] | None = None) -> Iterator[tuple[str, Any]]:
    """(name, matplotlib figure) pairs for one split; `uncalibrated`: the predictions before calibration;
    `importance`: (feature names, values) from `feature_importance(model)`."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    if task == "classification" and y_true is not None:
        yield "confusion_matrix", _confusion(y_true, predicted["prediction"].to_numpy(), classes)
        if "probability" in predicted or any(c.startswith("probability_") for c in predicted.columns):
            yield "roc_curve", _roc(y_true, predicted, classes)
            if uncalibrated is not None:
                yield "reliability", _reliability(y_true, {"uncalibrated": uncalibrated, "calibrated": predicted}, classes)
    elif task == "regression" and y_true is not None:
        yield "residuals", _residuals(np.asarray(y_true, dtype=float), predicted["prediction"].to_numpy(dtype=float))
        bounds = [c for c in predicted.columns if c.startswith("prediction_q")]
        if len(bounds) >= 2:
            yield "quantile_intervals", _intervals(np.asarray(y_true, dtype=float), predicted, bounds[0], bounds[-1])
    if importance is not None:
        yield "feature_importance", _bars(*importance)


def render(folder: str, *args: Any, **kwargs: Any) -> list[str]:
    """Draw `figures(*args, **kwargs)` into `folder` as NAME.png (as `mlflow.log_figure` saves them);
    the names, in drawing order."""
    import os

    names = []
    for name, figure in figures(*args, **kwargs):
        try:
            figure.savefig(os.path.join(folder, f"{name}.png"))
        finally:
            close(figure)
        names.append(name)
    return names


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


def _reliability(y_true: Any, frames: dict[str, Any], classes: list | None):
    """Reliability diagram: binary, the positive class's probability; multi-class, the predicted
    class's probability against how often it is right."""
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.calibration import CalibrationDisplay

    fig, ax = plt.subplots(figsize=(5, 4.5))
    y_true = np.asarray(y_true)
    for i, (name, predicted) in enumerate(frames.items()):
        if "probability" in predicted:
            hit, score = y_true == classes[1], predicted["probability"].to_numpy()
        else:
            columns = [f"probability_{c}" for c in classes or []]
            if not all(c in predicted for c in columns):
                continue  # that model gives no probabilities
            proba = predicted[columns].to_numpy()
            hit = np.asarray(classes, dtype=object)[proba.argmax(axis=1)] == y_true
            score = proba.max(axis=1)
        CalibrationDisplay.from_predictions(hit, score, n_bins=10, name=name, ax=ax, ref_line=i == 0)
    if len(classes or []) == 2:
        ax.set(xlabel=f"predicted probability of {classes[1]!r}", ylabel=f"share that is {classes[1]!r}",
               title="Reliability (test)")
    else:
        ax.set(xlabel="probability of the predicted class", ylabel="share predicted right",
               title="Reliability (test, predicted class)")
    fig.tight_layout()
    return fig


def _intervals(y_true: Any, predicted: Any, low: str, high: str):
    """Each test row's interval between the outermost quantiles, rows ordered by prediction, with the actual value."""
    import matplotlib.pyplot as plt
    import numpy as np

    order = np.argsort(predicted["prediction"].to_numpy(dtype=float))
    x = np.arange(len(order))
    lower, upper = predicted[low].to_numpy(dtype=float)[order], predicted[high].to_numpy(dtype=float)[order]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.fill_between(x, lower, upper, alpha=0.3, label=f"{low[len('prediction_'):]} - {high[len('prediction_'):]}")
    ax.plot(x, predicted["prediction"].to_numpy(dtype=float)[order], color="C0", label="prediction")
    inside = (y_true[order] >= lower) & (y_true[order] <= upper)
    ax.scatter(x[inside], y_true[order][inside], s=10, color="C2", label="actual, inside")
    ax.scatter(x[~inside], y_true[order][~inside], s=14, color="C3", marker="x", label="actual, outside")
    ax.set(xlabel="test rows, by prediction", ylabel="target", title=f"Quantile interval (test): {inside.mean():.0%} inside")
    ax.legend(loc="upper left", fontsize="small")
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


def feature_importance(model: Any) -> tuple[list[str], Any] | None:
    """(feature names, importance values) of a fitted pipeline's estimator, else None."""
    import numpy as np

    values = [v for v in (_importance_of(e) for e in _inner(model[-1])) if v is not None]
    if not values or len({len(v) for v in values}) != 1:
        return None
    values = np.mean(values, axis=0)  # a k-fold calibrated classifier: the mean over its k fits
    try:
        names = list(model[:-1].get_feature_names_out())
    except Exception:  # a transformer without feature names
        names = [f"x{i}" for i in range(len(values))]
    if len(names) != len(values):
        return None
    return names, np.asarray(values, dtype=float)


def _inner(estimator: Any) -> list:
    """The fitted estimators whose importance stands for `estimator`'s: a calibrated classifier's
    classifier(s), a quantile regressor's point model, else the estimator itself."""
    if hasattr(estimator, "calibrated_classifiers_"):
        from sklearn.frozen import FrozenEstimator

        found = [c.estimator for c in estimator.calibrated_classifiers_]
        return [e.estimator if isinstance(e, FrozenEstimator) else e for e in found]
    if hasattr(estimator, "point_estimator_"):
        return [estimator.point_estimator_]
    return [estimator]


def _importance_of(estimator: Any):
    import numpy as np

    values = getattr(estimator, "feature_importances_", None)
    if values is None and getattr(estimator, "coef_", None) is not None:
        values = np.abs(np.atleast_2d(np.asarray(estimator.coef_, dtype=float))).mean(axis=0)
    return None if values is None else np.asarray(values, dtype=float)


def _bars(names: list[str], values: Any, top: int = 20):
    import matplotlib.pyplot as plt
    import numpy as np

    order = np.argsort(values)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(order) + 1.2))
    ax.barh([names[i] for i in order], values[order])
    ax.set_title("Feature importance")
    fig.tight_layout()
    return fig
