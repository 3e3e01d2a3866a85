"""The logged causal model: preprocessing + an EconML learner, with mmp's prediction contract.

It answers as `TabularModel` does (`task`, `features`, `numeric`, `classes`, `predict_frame`,
`predict_columns`, inputs checked by `model_input`), so batch inference, `mlflow models serve` and the
BentoML service use it unchanged. The treatment is not an input: the model answers "what would
treating this row change", for rows not yet treated.

One treated arm (0/1): `prediction`, the estimated effect of treating each row (CATE: outcome if
treated minus outcome if not), and for learners whose outcome models can say it, `outcome_control`
and `outcome_treated`. Several arms: `prediction_<arm>`, each arm's effect against the control;
`prediction`, the largest of them; `best_arm`, that arm, or the control when no arm's effect is
positive (then `prediction` is the least harmful arm's effect, at most 0); `outcome_<arm>` for every
arm, control included, where the learner can say it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mmp.models.tabular import model_input


class CausalModel:
    """A fitted ColumnTransformer and a fitted EconML learner over its output; `arms` control first."""

    classes = None

    def __init__(self, preprocessor: Any, learner: Any, features: list[str], numeric: list[str],
                 arms: list | None = None):
        self.preprocessor = preprocessor
        self.learner = learner
        self.task = "causal"
        self.features = list(features)
        self.numeric = list(numeric)
        self.arms = list(arms) if arms is not None else [0, 1]  # the learner knows them as codes 0..k-1

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predict a pandas frame holding (at least) the feature columns."""
        inputs = model_input(frame, self.features, self.numeric)
        return pd.DataFrame(self._columns(inputs), index=inputs.index)

    def predict_columns(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """The same predictions as arrays, without building an output frame (a server's hot path)."""
        return self._columns(model_input(frame, self.features, self.numeric))

    def _columns(self, inputs: pd.DataFrame) -> dict[str, np.ndarray]:
        X = np.asarray(self.preprocessor.transform(inputs), dtype="float64")
        # One pass gives every arm's effect against the control; effect(X, T0, T1) per arm would repeat it.
        effects = np.asarray(self.learner.const_marginal_effect(X), dtype="float64").reshape(len(X), -1)
        outcomes = potential_outcomes(self.learner, X, len(self.arms))
        if len(self.arms) == 2:
            columns = {"prediction": effects[:, 0]}
            if outcomes:
                columns.update(outcome_control=outcomes[0], outcome_treated=outcomes[1])
            return columns
        best = effects.argmax(axis=1)
        prediction = effects[np.arange(len(X)), best]
        labels = np.asarray(self.arms)  # int64 or str: plain Python values through tolist() (JSON)
        columns = {"prediction": prediction, "best_arm": np.where(prediction > 0, labels[best + 1], labels[0])}
        columns.update({f"prediction_{arm}": effects[:, j] for j, arm in enumerate(self.arms[1:])})
        columns.update({f"outcome_{arm}": outcome for arm, outcome in zip(self.arms, outcomes)})
        return columns


def potential_outcomes(learner: Any, X: np.ndarray, arms: int) -> list[np.ndarray]:
    """Each arm's predicted outcome (control first) from the learner's own outcome models: one per arm
    (T- and X-learners), or one over features + arm indicators (S-learner); [] for other learners."""
    models = getattr(learner, "models", None)
    name = type(learner).__name__
    if isinstance(models, list) and len(models) == arms and name in ("TLearner", "XLearner"):
        return [np.asarray(m.predict(X), dtype="float64").reshape(len(X)) for m in models]
    overall = getattr(learner, "overall_model", None)
    if overall is not None and name == "SLearner":
        # EconML's SLearner learns from [X, one indicator per arm, control first].
        return [np.asarray(overall.predict(np.hstack([X, np.tile(np.eye(arms)[j], (len(X), 1))])),
                           dtype="float64").reshape(len(X)) for j in range(arms)]
    return []
