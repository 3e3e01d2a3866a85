"""Score one set of params for a tuning trial: on the validation split, or by k-fold CV on train.

Both report intermediate values to the trial (after each training stage, or after each fold, as
the running mean) and raise optuna.TrialPruned when the pruner says the trial is not worth
finishing. The returned value is the same metric `mmp.training.metrics` computes for a run.
"""

from __future__ import annotations

from typing import Any

from mmp.config.spec import RunSpec
from mmp.training.pipeline import TrainState


def model_for(state: TrainState, spec: RunSpec, params: dict[str, Any]) -> Any:
    """An unfitted copy of the run's preprocessing + the recipe's model class with `params`."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline as SkPipeline

    from mmp.config.estimators import import_class

    return SkPipeline([("preprocess", clone(state.preprocessor)),
                       ("model", import_class(spec.model.class_path)(**params))])


def metric_value(model: Any, X: Any, y: Any, spec: RunSpec, metric: str, classes: list | None) -> float:
    """`metric` of a fitted model's predictions of X against y."""
    import math

    from mmp.models.tabular import prediction_columns
    from mmp.training.metrics import compute
    from mmp.training.stages import probability_matrix

    predicted = prediction_columns(model, X, spec.task, classes)  # what the served model outputs, as arrays
    proba = probability_matrix(predicted, classes) if spec.task == "classification" else None
    values = compute(spec.task, [metric], y_true=y, y_pred=predicted["prediction"], proba=proba, classes=classes)
    if metric not in values or not math.isfinite(values[metric]):
        raise ValueError(f"{metric} is undefined for this trial's predictions "
                         f"({'no probabilities' if proba is None and spec.task == 'classification' else 'not finite'})")
    return values[metric]


def holdout(state: TrainState, spec: RunSpec, params: dict[str, Any], metric: str, trial: Any,
            reports: list, stages: int) -> float:
    """Fit on train, score on validation; estimators that train in rounds report after each stage."""
    import optuna

    model = model_for(state, spec, params)
    X, y = state.inputs["train"], state.targets["train"]
    Xv, yv = state.inputs["validation"], state.targets["validation"]
    codes = state.train_codes if spec.task == "classification" else y

    def on_step(step: int, fitted: Any) -> None:
        value = metric_value(fitted, Xv, yv, spec, metric, state.classes)
        reports.append((step, value))
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned()

    if stages:
        from mmp.training.progress import staged_fit

        if staged_fit(model, X, codes, stages, on_step):
            return reports[-1][1]
    model.fit(X, codes)
    return metric_value(model, Xv, yv, spec, metric, state.classes)


def cross_validate(state: TrainState, spec: RunSpec, params: dict[str, Any], metric: str, folds: int,
                   trial: Any, reports: list) -> float:
    """Mean of `metric` over k folds of train; the running mean is reported after each fold."""
    import numpy as np
    import optuna
    from sklearn.model_selection import KFold, StratifiedKFold

    X, y = state.inputs["train"], state.targets["train"]
    seed = spec.data.split.seed
    if spec.task == "classification":
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, state.train_codes)
        codes = state.train_codes
    else:
        splits = KFold(folds, shuffle=True, random_state=seed).split(X)
        codes = y
    values = []
    for fold, (train_rows, test_rows) in enumerate(splits):
        model = model_for(state, spec, params)
        model.fit(X.iloc[train_rows], codes[train_rows])
        values.append(metric_value(model, X.iloc[test_rows], y[test_rows], spec, metric, state.classes))
        mean = float(np.mean(values))
        reports.append((fold, mean))
        trial.report(mean, fold)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return float(np.mean(values))
