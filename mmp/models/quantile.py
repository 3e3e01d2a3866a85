"""Quantile regression as one estimator: a clone of the recipe's regressor per quantile, each with
its quantile loss, behind scikit-learn's fit/predict.

`predict` gives the point prediction (the median's model when 0.5 is asked, else a clone fitted
with the regressor's own loss); `predict_with_quantiles` adds every quantile, sorted per row so
that they never cross. Like the rest of mmp.models this module is pickled into the logged model
by value and imports no mmp code, so loading the model needs no mmp install.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone

MEDIAN = 0.5


class MultiQuantileRegressor(RegressorMixin, BaseEstimator):
    """One clone of `estimator` per quantile, told its quantile by `loss_params` + {quantile_param: q}."""

    def __init__(self, estimator: Any = None, quantiles: tuple[float, ...] = (0.05, 0.5, 0.95),
                 loss_params: dict[str, Any] | None = None, quantile_param: str = "alpha"):
        self.estimator = estimator
        self.quantiles = quantiles
        self.loss_params = loss_params
        self.quantile_param = quantile_param

    def fit(self, X: Any, y: Any) -> "MultiQuantileRegressor":
        self.quantiles_ = sorted(float(q) for q in self.quantiles)
        fixed = dict(self.loss_params or {})
        self.estimators_ = [clone(self.estimator).set_params(**fixed, **{self.quantile_param: q}).fit(X, y)
                            for q in self.quantiles_]
        if MEDIAN in self.quantiles_:
            self.point_estimator_ = self.estimators_[self.quantiles_.index(MEDIAN)]
        else:  # no median asked: the point prediction is the regressor with its own loss
            self.point_estimator_ = clone(self.estimator).fit(X, y)
        if hasattr(self.point_estimator_, "n_features_in_"):
            self.n_features_in_ = self.point_estimator_.n_features_in_
        return self

    def predict_with_quantiles(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """(point prediction, a (rows, quantiles) matrix in ascending quantile order, sorted per row)."""
        matrix = np.column_stack([np.asarray(m.predict(X), dtype="float64") for m in self.estimators_])
        matrix.sort(axis=1)  # rearrangement: a row's quantiles never cross
        if MEDIAN in self.quantiles_:
            return matrix[:, self.quantiles_.index(MEDIAN)].copy(), matrix
        return np.asarray(self.point_estimator_.predict(X), dtype="float64"), matrix

    def predict_quantiles(self, X: Any) -> np.ndarray:
        return self.predict_with_quantiles(X)[1]

    def predict(self, X: Any) -> np.ndarray:
        if MEDIAN in self.quantiles_:
            return self.predict_with_quantiles(X)[0]
        return np.asarray(self.point_estimator_.predict(X), dtype="float64")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "estimators_")
