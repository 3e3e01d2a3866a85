"""Fit a pipeline's estimator in stages of its training progress (trees, boosting rounds, epochs), so
that a tuning pruner can read a score after each stage and stop a bad trial early.

No stage trains from scratch, so a pruned trial saves the time it did not spend, and the last stage
gives the model that one fit with the full count gives:

- scikit-learn forests and gradient boosting, mmp's MLP: `warm_start`, the count raised per stage;
- CatBoost: each stage is the user's own fit, stopped by a callback and resumed from its snapshot;
- LightGBM, XGBoost: one fit, watched by a training callback that lends the estimator the booster
  grown so far at each stage's round. (Going on with `init_model` / `xgb_model` instead re-reads
  the data and re-predicts every earlier tree at each stage: 2-3x one fit for 10 stages, and a new
  random stream per stage.)

Preprocessing is fitted once, on the first stage. The estimator's params are the user's again when
staging ends, however it ends. Heavy libraries are never imported here: an estimator of theirs is
recognised only when its library is already loaded.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from typing import Any, Callable


def progress_param(estimator: Any) -> str | None:
    """The constructor parameter that counts the estimator's training progress (n_estimators,
    max_iter, max_epochs, iterations, ...) when mmp can fit it in stages, else None."""
    found = _family(estimator)
    return found[1] if found else None


def stage_counts(total: int, steps: int) -> list[int]:
    """The progress count reached after each stage: `steps` even shares of `total` (10 in 5: 2, 4, 6,
    8, 10), fewer stages when the total is smaller than `steps`."""
    return sorted({-(-total * i // steps) for i in range(1, steps + 1)})


def staged_fit(model: Any, X: Any, y: Any, steps: int, on_step: Callable[[int, Any], None]) -> bool:
    """Fit `model` (an unfitted scikit-learn Pipeline: preprocessing steps then the estimator as the
    last step) on X, y in `steps` stages of training progress, calling on_step(step, model) after
    each stage with the pipeline fitted so far (usable for predict/predict_proba). on_step may
    raise (e.g. optuna.TrialPruned) to stop early; the exception propagates. Returns False, having
    fitted nothing, when the estimator cannot be fitted in stages (the caller then fits it whole).

    `step` is the stage's number, 1, 2, ...: the same for every trial whatever its count, so that a
    pruner compares trials at the same share of their training. When the estimator's own early
    stopping ends training, the stage it ended in is the last one reported."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    found = _family(estimator)
    if found is None:
        return False
    family, param = found
    stages = family(estimator, param)
    try:
        targets = stage_counts(stages.total(), steps)
        features = _fit_preprocessing(model, X, y)
        stages.run(features, y, targets, lambda step: on_step(step, model))
    finally:
        stages.restore()
    return True


def _fit_preprocessing(model: Any, X: Any, y: Any) -> Any:
    """Fit the pipeline's steps before the estimator, once; the features they give the estimator."""
    if not hasattr(model, "steps") or len(model.steps) == 1:
        return X
    head = model[:-1]
    features = head.fit_transform(X, y)
    model.steps[:-1] = head.steps  # a pipeline with `memory` fits clones: keep the fitted ones
    return features


class _Stages:
    """Trains one estimator stage by stage, and gives it back its user's params at the end."""

    default_total = 100

    def __init__(self, estimator: Any, param: str):
        self.estimator, self.param = estimator, param
        self.user = estimator.get_params(deep=False)

    def total(self) -> int:
        value = self.user.get(self.param)
        return self.default_total if value is None else int(value)

    def run(self, X: Any, y: Any, targets: list[int], report: Callable[[int], None]) -> None:
        """Train to each count of `targets` in turn, calling report(step) with the estimator there."""
        for step, target in enumerate(targets, start=1):
            reached = self.fit_until(X, y, target)
            report(step)
            if reached < target:
                return

    def fit_until(self, X: Any, y: Any, target: int) -> int:
        """Train on to `target` in all; the count reached (less when the estimator stopped itself)."""
        raise NotImplementedError

    def restore(self) -> None:
        # Only what staging changed: LightGBM's set_params(objective=None), say, would also drop the
        # objective it chose when fitting.
        now = self.estimator.get_params(deep=False)
        self.estimator.set_params(**{k: v for k, v in self.user.items() if now.get(k) is not v})


class _WarmStart(_Stages):
    """scikit-learn ensembles and mmp's MLP: warm_start keeps what is fitted and the count is the total."""

    started = False

    def fit_until(self, X: Any, y: Any, target: int) -> int:
        # the first stage starts afresh, even on an estimator fitted before
        self.estimator.set_params(warm_start=self.started, **{self.param: target})
        self.started = True
        with warnings.catch_warnings():
            # forests warn that balanced class weights suit warm starts on other data; this is the same data
            warnings.filterwarnings("ignore", message=".*not recommended for warm_start")
            self.estimator.fit(X, y)
        return _warm_started()[type(self.estimator)][1](self.estimator)


class _CatBoostStop:
    """A CatBoost training callback: stop once `target` trees are grown; note how far training got."""

    def __init__(self, target: int):
        self.target, self.reached = target, 0

    def after_iteration(self, info: Any) -> bool:
        self.reached = info.iteration
        return info.iteration < self.target


class _CatBoost(_Stages):
    """Every stage is a fit with the user's own params (so the same automatic learning rate), stopped
    by a callback at the stage's count and resumed from the snapshot the last stage left."""

    default_total = 1000  # CatBoost's own default

    def __init__(self, estimator: Any, param: str):
        super().__init__(estimator, param)
        self.folder = tempfile.mkdtemp(prefix="mmp-catboost-")
        self.files_switched_on = self.user.get("allow_writing_files") is False
        if self.files_switched_on:  # snapshots are files: allow them, in our folder
            estimator.set_params(allow_writing_files=True, train_dir=self.folder)

    def fit_until(self, X: Any, y: Any, target: int) -> int:
        stop = _CatBoostStop(target)
        self.estimator.fit(X, y, callbacks=[stop], save_snapshot=True,
                           snapshot_file=f"{self.folder}/progress.snapshot")
        return stop.reached

    def restore(self) -> None:
        if self.files_switched_on:  # CatBoost refuses set_params once fitted; get_params copies _init_params
            self.estimator._init_params = dict(self.user)
            self.estimator._canonized_params = None
        shutil.rmtree(self.folder, ignore_errors=True)


class _Watched(_Stages):
    """One fit with the user's params; a training callback calls `after_round(booster, rounds)`."""

    def fit_watched(self, X: Any, y: Any, after_round: Callable[[Any, int], None]) -> None:
        raise NotImplementedError

    def lend(self, booster: Any) -> None:
        """Make the estimator predict with the booster being trained, as if fitted with its rounds."""
        raise NotImplementedError

    def run(self, X: Any, y: Any, targets: list[int], report: Callable[[int], None]) -> None:
        pending = list(enumerate(targets, start=1))

        def after_round(booster: Any, rounds: int) -> None:
            if pending and rounds == pending[0][1]:
                self.lend(booster)
                report(pending.pop(0)[0])

        self.fit_watched(X, y, after_round)
        if pending:  # training stopped itself before this stage's count
            report(pending[0][0])


class _LightGBM(_Watched):
    def fit_watched(self, X: Any, y: Any, after_round: Callable[[Any, int], None]) -> None:
        def callback(env: Any) -> None:
            after_round(env.model, env.iteration - env.begin_iteration + 1)

        self.estimator.fit(X, y, callbacks=[callback])

    def lend(self, booster: Any) -> None:
        # what LGBMModel.fit sets once training returns; everything else predict reads is set before
        self.estimator._Booster, self.estimator.fitted_ = booster, True


class _XGBoost(_Watched):
    def total(self) -> int:
        return int(self.estimator.get_num_boosting_rounds())

    def fit_watched(self, X: Any, y: Any, after_round: Callable[[Any, int], None]) -> None:
        from xgboost.callback import TrainingCallback  # loaded already: the estimator is an XGBoost one

        class AfterRound(TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                after_round(model, epoch + 1)
                return False

        # callbacks is a constructor param here; restore() puts the user's back
        self.estimator.set_params(callbacks=[*(self.user.get("callbacks") or []), AfterRound()])
        self.estimator.fit(X, y)

    def lend(self, booster: Any) -> None:
        self.estimator._Booster = booster  # what XGBModel.fit sets once training returns


def _warm_started() -> dict[type, tuple[str, Callable[[Any], int]]]:
    """Estimator class -> (its count param, how many trees/iterations/epochs its last fit reached)."""
    from sklearn import ensemble

    from mmp.models.mlp import MLPClassifier, MLPRegressor

    forests = (ensemble.RandomForestClassifier, ensemble.RandomForestRegressor,
               ensemble.ExtraTreesClassifier, ensemble.ExtraTreesRegressor)
    return {**{c: ("n_estimators", lambda e: len(e.estimators_)) for c in forests},
            **{c: ("n_estimators", lambda e: e.n_estimators_)
               for c in (ensemble.GradientBoostingClassifier, ensemble.GradientBoostingRegressor)},
            **{c: ("max_iter", lambda e: e.n_iter_)
               for c in (ensemble.HistGradientBoostingClassifier, ensemble.HistGradientBoostingRegressor)},
            **{c: ("max_epochs", lambda e: e.n_epochs_) for c in (MLPClassifier, MLPRegressor)}}


# The other names LightGBM reads as the count (and prefers to n_estimators); a user who wrote one has it obeyed.
_LIGHTGBM_COUNTS = ("num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees", "num_round",
                    "num_rounds", "nrounds", "num_boost_round", "max_iter")


def _family(estimator: Any) -> tuple[type[_Stages], str] | None:
    """How to stage this estimator and the param that counts its progress, or None."""
    warm = _warm_started().get(type(estimator))
    if warm:
        return _WarmStart, warm[0]
    lightgbm, xgboost, catboost = (sys.modules.get(name) for name in ("lightgbm", "xgboost", "catboost"))
    if lightgbm and isinstance(estimator, (lightgbm.LGBMClassifier, lightgbm.LGBMRegressor)):
        params = estimator.get_params(deep=False)
        return _LightGBM, next((k for k in _LIGHTGBM_COUNTS if params.get(k) is not None), "n_estimators")
    if xgboost and isinstance(estimator, (xgboost.XGBClassifier, xgboost.XGBRegressor)):
        if isinstance(estimator, (xgboost.XGBRFClassifier, xgboost.XGBRFRegressor)):
            return None  # a random forest is one round of n_estimators trees
        return _XGBoost, "n_estimators"
    if catboost and isinstance(estimator, (catboost.CatBoostClassifier, catboost.CatBoostRegressor)):
        from mmp.config.estimators import SYNONYMS

        params = estimator.get_params()
        counts = next(names for names in SYNONYMS["catboost"] if "iterations" in names)
        return _CatBoost, next((k for k in counts if k in params), "iterations")
    return None
