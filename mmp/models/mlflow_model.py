"""The MLflow face of a TabularModel: a pyfunc whose only artifact is the pickled TabularModel.

Keeping the model itself a plain object (not an MLflow class) lets the BentoML service unpickle it
without importing MLflow, while `mlflow.pyfunc.load_model`, `mlflow models serve` and
`spark_udf` load it the standard way.
"""

from __future__ import annotations

import pandas as pd
from mlflow.pyfunc import PythonModel


class MlflowModel(PythonModel):
    """Loads the pickled TabularModel artifact and predicts with it."""

    # Inputs are checked by TabularModel; MLflow's type-hint wrapper would add a layer and a warning.
    _skip_type_hint_validation = True

    def load_context(self, context):
        import cloudpickle

        from_artifacts = context.artifacts["model"]
        with open(from_artifacts, "rb") as f:
            self.model = cloudpickle.load(f)

    def predict(self, context, model_input, params=None):
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return self.model.predict_frame(model_input)
