"""Staged fitting for tuning: each stage trains the estimator further, the last equals one whole fit."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, make_classification
from sklearn.ensemble import (ExtraTreesRegressor, GradientBoostingClassifier, GradientBoostingRegressor,
                              HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier)
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted

from mmp.models.mlp import MLPClassifier, MLPRegressor
from mmp.models.quantile import MultiQuantileRegressor
from mmp.training.progress import progress_param, stage_counts, staged_fit


@lru_cache
def data(task: str) -> tuple[np.ndarray, ...]:
    """(X_train, X_test, y_train, y_test); classification targets are codes 0..k-1."""
    X, y = {"binary": lambda: load_breast_cancer(return_X_y=True),
            "regression": lambda: load_diabetes(return_X_y=True),
            "multiclass": lambda: load_iris(return_X_y=True)}[task]()
    return tuple(train_test_split(X, y, test_size=0.3, random_state=0))


def pipeline(estimator: Any) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", estimator)])


def trained(estimator: Any) -> int:
    """How many trees, rounds or epochs the estimator holds."""
    if hasattr(estimator, "get_booster"):
        return estimator.get_booster().num_boosted_rounds()
    for attr in ("tree_count_", "n_epochs_", "n_iter_", "n_estimators_"):
        if hasattr(estimator, attr):
            return int(getattr(estimator, attr))
    return len(estimator.estimators_)


def outputs(model: Any, X: np.ndarray, task: str) -> np.ndarray:
    return model.predict(X) if task == "regression" else model.predict_proba(X)


@dataclass
class Case:
    make: Callable[[], Any]
    task: str
    full: int
    fresh_fit_per_stage: bool = True  # a stage predicts as a fresh fit with its count (not CatBoost:
    # its automatic learning rate depends on the count)


def lgbm(kind: str, **params: Any) -> Callable[[], Any]:
    return lambda: getattr(pytest.importorskip("lightgbm"), kind)(verbose=-1, **params)


def xgb(kind: str, **params: Any) -> Callable[[], Any]:
    return lambda: getattr(pytest.importorskip("xgboost"), kind)(**params)


def catboost(kind: str, **params: Any) -> Callable[[], Any]:
    return lambda: getattr(pytest.importorskip("catboost"), kind)(verbose=0, random_seed=0, **params)


CASES = {
    "random_forest": Case(lambda: RandomForestClassifier(n_estimators=10, random_state=0), "binary", 10),
    "extra_trees": Case(lambda: ExtraTreesRegressor(n_estimators=10, max_features=0.5, random_state=0),
                        "regression", 10),
    "gradient_boosting": Case(lambda: GradientBoostingClassifier(n_estimators=20, subsample=0.8, random_state=0),
                              "binary", 20),
    "hist_gradient_boosting": Case(lambda: HistGradientBoostingRegressor(max_iter=20, max_features=0.5, random_state=0),
                                   "regression", 20),
    "lightgbm": Case(lgbm("LGBMClassifier", n_estimators=20), "binary", 20),
    "lightgbm_multiclass": Case(lgbm("LGBMClassifier", n_estimators=20), "multiclass", 20),
    "lightgbm_bagging": Case(lgbm("LGBMRegressor", n_estimators=20, subsample=0.7, subsample_freq=1,
                                  colsample_bytree=0.7, random_state=0), "regression", 20),
    "lightgbm_dart": Case(lgbm("LGBMClassifier", n_estimators=20, boosting_type="dart", random_state=0), "binary", 20),
    "xgboost": Case(xgb("XGBRegressor", n_estimators=20, max_depth=3), "regression", 20),
    "xgboost_subsample": Case(xgb("XGBClassifier", n_estimators=20, max_depth=3, subsample=0.7,
                                  colsample_bytree=0.7, random_state=0), "binary", 20),
    "catboost": Case(catboost("CatBoostClassifier", iterations=20, allow_writing_files=False), "binary", 20,
                     fresh_fit_per_stage=False),
    "catboost_bagging": Case(catboost("CatBoostRegressor", iterations=20, bootstrap_type="Bernoulli", subsample=0.6,
                                      rsm=0.5), "regression", 20, fresh_fit_per_stage=False),
    "mlp": Case(lambda: MLPClassifier(hidden_layer_sizes=(16,), max_epochs=10, dropout=0.1, patience=100,
                                      random_state=0), "binary", 10),
    "mlp_regressor": Case(lambda: MLPRegressor(hidden_layer_sizes=(16,), max_epochs=10, patience=100,
                                               random_state=0), "regression", 10),
}


@pytest.fixture(autouse=True)
def _scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # CatBoost writes catboost_info/ into the working directory


@pytest.mark.parametrize("name", CASES)
def test_each_stage_trains_further_and_the_last_predicts_as_one_fit(name):
    case = CASES[name]
    X, X_test, y, _ = data(case.task)
    estimator = case.make()
    user = estimator.get_params()
    model, seen = pipeline(estimator), []

    assert staged_fit(model, X, y, steps=5, on_step=lambda step, m: seen.append((step, trained(m[-1]))))

    share = case.full // 5
    assert seen == [(i, i * share) for i in range(1, 6)]
    assert model[-1] is estimator and estimator.get_params() == user
    whole = pipeline(case.make()).fit(X, y)
    np.testing.assert_allclose(outputs(model, X_test, case.task), outputs(whole, X_test, case.task),
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.fresh_fit_per_stage])
def test_each_stage_predicts_as_a_fresh_fit_with_that_count(name):
    case = CASES[name]
    X, X_test, y, _ = data(case.task)
    estimator = case.make()
    param = progress_param(estimator)
    staged = []

    staged_fit(pipeline(estimator), X, y, 4, lambda step, m: staged.append(outputs(m, X_test, case.task)))

    counts = stage_counts(case.full, 4)
    assert len(staged) == len(counts) == 4
    for count, got in zip(counts, staged):
        fresh = pipeline(case.make().set_params(**{param: count})).fit(X, y)
        np.testing.assert_allclose(got, outputs(fresh, X_test, case.task), rtol=1e-6, atol=1e-9, err_msg=f"at {count}")


@pytest.mark.parametrize("name", ["random_forest", "hist_gradient_boosting", "lightgbm", "xgboost", "catboost", "mlp"])
def test_raising_in_on_step_stops_training_at_that_stage(name):
    case = CASES[name]
    X, X_test, y, _ = data(case.task)
    estimator = case.make()
    user = estimator.get_params()

    def prune(step: int, model: Any) -> None:
        model.predict(X_test)  # the pipeline is usable at every stage
        if step == 2:
            raise RuntimeError("pruned")

    with pytest.raises(RuntimeError, match="pruned"):
        staged_fit(pipeline(estimator), X, y, steps=5, on_step=prune)
    assert trained(estimator) == 2 * case.full // 5 < case.full
    assert estimator.get_params() == user


@pytest.mark.parametrize("estimator", [LogisticRegression(), SVC(),
                                       CalibratedClassifierCV(RandomForestClassifier(n_estimators=5)),
                                       MultiQuantileRegressor(GradientBoostingRegressor(n_estimators=5))],
                         ids=lambda e: type(e).__name__)
def test_an_estimator_that_cannot_be_staged_is_left_unfitted(estimator):
    X, _, y, _ = data("binary")
    model, user, calls = pipeline(estimator), estimator.get_params(), []

    assert staged_fit(model, X, y, steps=5, on_step=lambda *args: calls.append(args)) is False

    assert calls == [] and estimator.get_params() == user
    assert progress_param(estimator) is None
    for part in (model, model[0]):
        with pytest.raises(NotFittedError):
            check_is_fitted(part)


def test_progress_param_names_the_count_the_user_sets():
    assert progress_param(RandomForestClassifier()) == "n_estimators"
    assert progress_param(GradientBoostingRegressor()) == "n_estimators"
    assert progress_param(HistGradientBoostingClassifier()) == "max_iter"
    assert progress_param(MLPRegressor()) == "max_epochs"
    assert progress_param(LogisticRegression()) is None  # warm_start + max_iter, but not a count to stage


def test_progress_param_for_boosting_libraries():
    lightgbm = pytest.importorskip("lightgbm")
    xgboost = pytest.importorskip("xgboost")
    catboost = pytest.importorskip("catboost")
    assert progress_param(lightgbm.LGBMRegressor()) == "n_estimators"
    assert progress_param(lightgbm.LGBMRegressor(num_iterations=50)) == "num_iterations"
    assert progress_param(lightgbm.LGBMRegressor(boosting_type="dart")) == "n_estimators"
    assert progress_param(xgboost.XGBClassifier()) == "n_estimators"
    assert progress_param(xgboost.XGBRFClassifier()) is None
    assert progress_param(catboost.CatBoostRegressor()) == "iterations"
    assert progress_param(catboost.CatBoostRegressor(n_estimators=10)) == "n_estimators"


def test_stages_split_the_count_evenly_and_are_fewer_when_the_count_is_small():
    assert stage_counts(10, 5) == [2, 4, 6, 8, 10]
    assert stage_counts(10, 3) == [4, 7, 10]
    assert stage_counts(3, 5) == [1, 2, 3]
    X, _, y, _ = data("binary")
    seen = []
    staged_fit(pipeline(RandomForestClassifier(n_estimators=3)), X, y, 5,
               lambda step, m: seen.append((step, trained(m[-1]))))
    assert seen == [(1, 1), (2, 2), (3, 3)]


class CountingScaler(StandardScaler):
    fits = 0

    def fit(self, X, y=None, sample_weight=None):
        CountingScaler.fits += 1
        return super().fit(X, y, sample_weight)


@pytest.mark.parametrize("cached", [False, True], ids=["plain", "with_memory"])
def test_preprocessing_is_fitted_once_and_reused(cached, tmp_path):
    X, X_test, y, _ = data("binary")
    model = Pipeline([("scale", CountingScaler()), ("model", HistGradientBoostingClassifier(max_iter=10))],
                     memory=str(tmp_path / "cache") if cached else None)  # with memory, the pipeline fits clones
    CountingScaler.fits = 0
    staged_fit(model, X, y, 5, lambda step, m: m.predict_proba(X_test))
    assert CountingScaler.fits == 1
    check_is_fitted(model[0])


def test_an_estimator_fitted_before_is_staged_afresh():
    X, X_test, y, _ = data("binary")
    estimator = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    model = pipeline(estimator)
    staged_fit(model, X, y, 2, lambda step, m: None)
    whole = pipeline(RandomForestClassifier(n_estimators=10, random_state=0)).fit(X, y)
    assert len(estimator.estimators_) == 10
    np.testing.assert_array_equal(model.predict_proba(X_test), whole.predict_proba(X_test))


@pytest.mark.parametrize("estimator", [
    HistGradientBoostingClassifier(max_iter=500, early_stopping=True, n_iter_no_change=3, learning_rate=0.3,
                                   random_state=0),
    MLPClassifier(hidden_layer_sizes=(16,), max_epochs=500, patience=3, learning_rate=0.01, random_state=0),
], ids=lambda e: type(e).__name__)
def test_the_estimators_own_early_stopping_ends_staging_where_one_fit_stops(estimator):
    X, X_test, y, _ = data("binary")
    whole = pipeline(clone(estimator)).fit(X, y)
    model, steps = pipeline(estimator), []

    staged_fit(model, X, y, 50, lambda step, m: steps.append(step))

    assert trained(estimator) == trained(whole[-1]) < 500
    assert len(steps) == -(-trained(estimator) // 10)  # stages of 10: the last one is where it stopped
    np.testing.assert_allclose(model.predict_proba(X_test), whole.predict_proba(X_test), atol=1e-9)


def test_lightgbm_rounds_add_up_across_stages():
    lightgbm = pytest.importorskip("lightgbm")
    X, _, y, _ = data("multiclass")
    estimator = lightgbm.LGBMClassifier(n_estimators=23, verbose=-1)
    staged_fit(pipeline(estimator), X, y, 4, lambda step, m: None)
    assert estimator.booster_.current_iteration() == 23
    assert estimator.booster_.num_trees() == 23 * 3  # one tree per class per round
    assert estimator.n_estimators == 23


def test_catboost_with_files_off_leaves_no_files(tmp_path, monkeypatch):
    catboost = pytest.importorskip("catboost")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    X, _, y, _ = data("binary")
    estimator = catboost.CatBoostClassifier(iterations=10, verbose=0, allow_writing_files=False)
    staged_fit(pipeline(estimator), X, y, 2, lambda step, m: None)
    assert estimator.get_params() == {"iterations": 10, "verbose": 0, "allow_writing_files": False}
    assert list(scratch.iterdir()) == [] and not (tmp_path / "catboost_info").exists()


def test_a_warm_started_mlp_pickles_without_its_training_state():
    X, X_test, y, _ = data("binary")
    model = pipeline(MLPClassifier(hidden_layer_sizes=(8,), max_epochs=4, random_state=0))
    staged_fit(model, X, y, 2, lambda step, m: None)
    loaded = pickle.loads(pickle.dumps(model))
    assert "_run" not in vars(loaded[-1])
    np.testing.assert_array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))


def test_hist_gradient_boosting_keeps_early_stopping_auto_and_stops_as_one_fit():
    """'auto' turns early stopping on above 10,000 rows; staging keeps the setting and its outcome."""
    X, y = make_classification(12000, 10, n_informative=5, flip_y=0.2, random_state=0)
    estimator = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.5, random_state=0)
    whole = pipeline(clone(estimator)).fit(X, y)[-1]
    steps = []
    staged_fit(pipeline(estimator), X, y, 30, lambda step, m: steps.append(step))
    assert estimator.early_stopping == "auto" and estimator.do_early_stopping_
    assert estimator.n_iter_ == whole.n_iter_ < 300 and len(steps) == -(-whole.n_iter_ // 10)


def test_an_mlp_pickled_before_warm_start_existed_loads_with_it_off():
    X, X_test, y, _ = data("binary")
    old = MLPClassifier(hidden_layer_sizes=(8,), max_epochs=3, random_state=0).fit(X, y)
    del old.__dict__["warm_start"]
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded.get_params()["warm_start"] is False
    np.testing.assert_array_equal(loaded.predict_proba(X_test), old.predict_proba(X_test))
