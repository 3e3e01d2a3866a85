"""The calibrate stage (classification, when the recipe has `calibration:`): fit scikit-learn's
CalibratedClassifierCV over the fitted classifier and make it the pipeline's last step, so that
evaluation, the logged model, batch inference and serving all give calibrated probabilities.

Where it learns the calibration: the held-out `data.split.calibration` rows, which the classifier
never saw (it is frozen: `FrozenEstimator`), or k-fold cross-validation on the training split
(`calibration.cv: k`, k clones each calibrated on its left-out fold). The uncalibrated pipeline stays
in the state, so that evaluation can report Brier score and log loss before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmp.config.spec import RunSpec
from mmp.errors import UserError
from mmp.training.pipeline import TrainState


@dataclass
class Calibrate:
    """CalibratedClassifierCV (sigmoid or isotonic) on held-out rows or by k-fold on train."""

    spec: RunSpec
    name: str = "calibrate"
    opens_run: bool = True

    def describe(self) -> str:
        calibration = self.spec.calibration
        if calibration.cv:
            return f"{calibration.method}, {calibration.cv}-fold cross-validation on train"
        return (f"{calibration.method} on the calibration split ({self.spec.data.split.calibration:g} of the rows, "
                "carved from train, never fitted on)")

    def run(self, state: TrainState) -> str:
        from sklearn.base import clone
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator
        from sklearn.model_selection import StratifiedKFold
        from sklearn.pipeline import Pipeline as SkPipeline

        from mmp.training.seeding import seed_everything

        calibration, seed = self.spec.calibration, self.spec.data.split.seed
        fitted = state.model
        transform, estimator = fitted[:-1], fitted.steps[-1][1]
        part = "train" if calibration.cv else "calibration"
        X = transform.transform(state.inputs[part])
        codes = class_codes(state.classes, state.targets[part], part)
        if calibration.cv:
            folds = StratifiedKFold(n_splits=calibration.cv, shuffle=True, random_state=seed % 2**32)
            calibrated = CalibratedClassifierCV(clone(estimator), method=calibration.method, cv=folds)
        else:
            calibrated = CalibratedClassifierCV(FrozenEstimator(estimator), method=calibration.method)
        seed_everything(seed)
        try:
            calibrated.fit(X, codes)
        except ValueError as exc:  # e.g. more folds than a class has rows
            where = "calibration.cv" if calibration.cv else "data.split.calibration"
            raise UserError(f"{where}: cannot calibrate on the {len(codes)} {part} rows: {exc}") from exc
        state.uncalibrated = fitted
        state.model = SkPipeline(fitted.steps[:-1] + [(fitted.steps[-1][0], calibrated)])
        how = f"{calibration.cv}-fold on {len(codes)} train rows" if calibration.cv else f"on {len(codes)} held-out rows"
        return f"{calibration.method} {how}"


def class_codes(classes: list, labels: Any, part: str) -> Any:
    """The class codes 0..k-1 (as the classifier learned them in the fit stage) of `labels`."""
    import numpy as np

    index = {label: code for code, label in enumerate(classes)}
    codes = [index.get(value.item() if hasattr(value, "item") else value, -1) for value in labels]
    unknown = sorted({str(v) for v, code in zip(labels, codes) if code < 0})
    if unknown:
        raise UserError(f"data.split: the {part} rows hold class(es) the training rows lack: {', '.join(unknown)}; "
                        "use a stratified split or more data")
    return np.asarray(codes, dtype="int64")
