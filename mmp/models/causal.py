"""The logged causal model: preprocessing + an EconML learner, with mmp's prediction contract.

It answers as `TabularModel` does (`task`, `features`, `numeric`, `classes`, `predict_frame`,
`predict_columns`, inputs checked by `model_input`), so batch inference, `mlflow models serve` and the
BentoML service use it unchanged. Output: `prediction`, the estimated effect of treating each row
(CATE: outcome if treated minus outcome if not), and for learners whose outcome models can say it,
`outcome_control` and `outcome_treated`. The treatment is not an input: the model answers "what
would treating this row change", for rows not yet treated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mmp.models.tabular import model_input


class CausalModel:
    """A fitted ColumnTransformer and a fitted EconML learner over its output (binary treatment)."""

    classes = None

    def __init__(self, preprocessor: Any, learner: Any, features: list[str], numeric: list[str]):
        self.preprocessor = preprocessor
        self.learner = learner
        self.task = "causal"
        self.features = list(features)
        self.numeric = list(numeric)

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predict a pandas frame holding (at least) the feature columns."""
        inputs = model_input(frame, self.features, self.numeric)
        return pd.DataFrame(self._columns(inputs), index=inputs.index)

    def predict_columns(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """The same predictions as arrays, without building an output frame (a server's hot path)."""
        return self._columns(model_input(frame, self.features, self.numeric))

    def _columns(self, inputs: pd.DataFrame) -> dict[str, np.ndarray]:
        X = np.asarray(self.preprocessor.transform(inputs), dtype="float64")
        columns = {"prediction": np.asarray(self.learner.effect(X), dtype="float64").reshape(len(X))}
        columns.update(potential_outcomes(self.learner, X))
        return columns


def potential_outcomes(learner: Any, X: np.ndarray) -> dict[str, np.ndarray]:
    """`outcome_control`, `outcome_treated` from the learner's own outcome models: one per arm (T- and
    X-learners), or one over features + treatment indicators (S-learner); {} for other learners."""
    models = getattr(learner, "models", None)
    if isinstance(models, list) and len(models) == 2 and type(learner).__name__ in ("TLearner", "XLearner"):
        control, treated = (np.asarray(m.predict(X), dtype="float64").reshape(len(X)) for m in models)
        return {"outcome_control": control, "outcome_treated": treated}
    overall = getattr(learner, "overall_model", None)
    if overall is not None and type(learner).__name__ == "SLearner":
        # EconML's SLearner learns from [X, control indicator, treated indicator].
        ones, zeros = np.ones((len(X), 1)), np.zeros((len(X), 1))
        control = overall.predict(np.hstack([X, ones, zeros]))
        treated = overall.predict(np.hstack([X, zeros, ones]))
        return {"outcome_control": np.asarray(control, dtype="float64").reshape(len(X)),
                "outcome_treated": np.asarray(treated, dtype="float64").reshape(len(X))}
    return {}
