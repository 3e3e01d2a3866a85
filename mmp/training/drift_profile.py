"""The drift reference a tabular model carries: its training split's features and its predictions for them.

Built at train time when `monitoring.enabled` (mmp.models.drift.build_profile) and logged inside the
model as `artifacts/drift_profile.json`, so batch inference, `mmp monitor` and the server compare
later data with exactly the rows the model learned from. Timeseries and causal models carry none.
"""

from __future__ import annotations

from typing import Any

from mmp.training.pipeline import TrainState

PROFILED_TASKS = ("classification", "regression", "clustering")


def reference_profile(state: TrainState) -> dict[str, Any] | None:
    """The training split's drift profile, or None when monitoring is off, the task is not tabular
    or there are no training rows."""
    from mmp.models.drift import build_profile
    from mmp.models.tabular import prediction_frame

    spec = state.pipeline.spec
    train = state.inputs.get("train")
    if not spec.monitoring.enabled or spec.task not in PROFILED_TASKS or train is None or not len(train):
        return None
    predicted = state.predictions.get("train")
    if predicted is None:
        predicted = prediction_frame(state.model, train, spec.task, state.classes)
    columns = {name: train[name] for name in state.features}
    labels = ["prediction"] if spec.task in ("classification", "clustering") else []
    return build_profile(columns, state.numeric, {name: predicted[name] for name in predicted.columns}, labels)
