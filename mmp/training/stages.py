"""The stages of a supervised or clustering pipeline: load -> split -> preprocess -> fit -> evaluate.

Each stage carries its settings from the spec, says what it will do (`describe`, printed by
`mmp compile`) and does it (`run`, called by `mmp train`). Logging to MLflow is `mmp.training.log`.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from mmp import __version__
from mmp.config.catalogue import STEPS, describe_step, step_options
from mmp.config.data_checks import column_problems, feature_columns
from mmp.config.spec import RunSpec
from mmp.errors import ConfigError
from mmp.training.pipeline import TrainState
from mmp.training.split import SPLITS


@dataclass
class Load:
    """Read the data, check its columns against the recipe, drop rows with no target."""

    spec: RunSpec
    name: str = "load"
    opens_run: bool = False

    def describe(self) -> str:
        from mmp.training.source import database_label, is_query, source_label

        data = self.spec.data
        features = ", ".join(data.features) if data.features is not None else "every other column"
        source = source_label(self.spec) or "(no source: pass -d URI)"
        if is_query(self.spec):
            source = f"query {source} on {database_label(self.spec)}"
        return f"{source}; entity {data.entity_columns or '-'}; target {data.target or '-'}; features: {features}"

    def run(self, state: TrainState) -> str:
        from mmp.io.readers import is_numeric
        from mmp.training.source import load_data, source_label

        spec = self.spec
        frame, state.query = load_data(spec)
        problems = column_problems(spec, frame, origin=state.pipeline.origin)
        if problems:
            raise ConfigError(problems, source=f"data at {source_label(spec)}")
        if spec.data.target:
            dropped = frame[spec.data.target].null_count()
            frame = frame.filter(frame[spec.data.target].is_not_null())
            if dropped:
                state.pipeline.progress.note(f"dropped {dropped} rows with no '{spec.data.target}'")
        state.frame = frame
        state.features = feature_columns(spec, frame.columns)
        state.numeric = [c for c in state.features if is_numeric(frame.schema[c])]
        return f"{frame.height} rows x {frame.width} columns from {source_label(spec)}"


@dataclass
class Split:
    """Cut the rows into train / validation / test, and calibration rows out of train when asked
    (random, stratified or temporal; seeded)."""

    spec: RunSpec
    name: str = "split"
    opens_run: bool = False

    def describe(self) -> str:
        split = self.spec.data.split
        by = f" by {split.time_column}" if split.strategy == "temporal" else ""
        calibration = f"calibration {split.calibration:g} / " if split.calibration else ""
        return (f"{split.strategy}{by}: train {split.train:g} / {calibration}validation {split.validation:g} / "
                f"test {split.test:g}, seed {split.seed}")

    def run(self, state: TrainState) -> str:
        from mmp.training.split import split

        state.parts = split(state.frame, self.spec.data.split, self.spec.data.target)
        sizes = state.sizes
        return f"{self.spec.data.split.strategy}: " + " / ".join(f"{n} {sizes[n]}" for n in SPLITS if n in sizes)


@dataclass
class Preprocess:
    """Build the recipe's steps into one ColumnTransformer (fitted with the model, on train only)."""

    spec: RunSpec
    name: str = "preprocess"
    opens_run: bool = True  # from here on the work belongs to an MLflow run

    def describe(self) -> str:
        steps = [describe_step(s.type, step_options(STEPS[s.type], s.options), s.columns) for s in self.spec.preprocess]
        return " -> ".join(steps) if steps else "none (features go to the model as they are)"

    def run(self, state: TrainState) -> str:
        from mmp.config.estimators import import_class
        from mmp.models.tabular import model_input
        from mmp.training.preprocess import build_preprocessor

        accepts_nan = _accepts_nan(import_class(self.spec.model.class_path)(**self.spec.model.params))
        state.preprocessor = build_preprocessor(self.spec.preprocess, state.features, set(state.numeric), accepts_nan)
        state.inputs = {name: model_input(part.to_pandas(), state.features, state.numeric)
                        for name, part in state.parts.items()}
        target = self.spec.data.target
        state.targets = {name: part[target].to_numpy() for name, part in state.parts.items()} if target else {}
        branches = len(state.preprocessor.transformers)
        return f"{len(self.spec.preprocess)} step(s) over {len(state.features)} features in {branches} column group(s)"


def _accepts_nan(estimator: Any) -> bool:
    try:
        return bool(estimator.__sklearn_tags__().input_tags.allow_nan)
    except Exception:  # an estimator without scikit-learn tags: be safe, impute
        return False


@dataclass
class Fit:
    """Fit preprocessing + estimator as one scikit-learn Pipeline on the train split."""

    spec: RunSpec
    name: str = "fit"
    opens_run: bool = True

    def describe(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.spec.model.params.items())
        tuned = f" with the best {', '.join(self.spec.tune.params)} of the study" if self.spec.tune.enabled else ""
        return f"{self.spec.model.class_path}({params}){tuned}"

    def run(self, state: TrainState) -> str:
        from sklearn.pipeline import Pipeline as SkPipeline

        from mmp.config.estimators import import_class
        from mmp.training.seeding import seed_everything

        spec = self.spec
        seed_everything(spec.data.split.seed)
        estimator = self.estimator(import_class(spec.model.class_path), state.best_params)
        model = SkPipeline([("preprocess", state.preprocessor), ("model", estimator)])
        train, target, rows = self.training_rows(state)
        if spec.task == "clustering":
            model.fit(train)
        elif spec.task == "classification":
            state.classes, codes = class_codes(target)
            model.fit(train, codes)
        else:
            model.fit(train, target)
        state.model = model
        tuned = f" with the best params ({', '.join(f'{k}={v!r}' for k, v in state.best_params.items())})" \
            if state.best_params else ""
        return f"{spec.model.class_path}{tuned} on {len(train)} rows ({rows}), {len(state.features)} features"

    def training_rows(self, state: TrainState) -> tuple[Any, Any, str]:
        """The rows the model learns from: train, or train + validation when a tuned model is refit on both."""
        import numpy as np
        import pandas as pd

        train, target = state.inputs["train"], state.targets.get("train")
        if self.spec.tune.enabled and self.spec.tune.refit == "train+validation" and len(state.inputs["validation"]):
            both = pd.concat([train, state.inputs["validation"]])  # tuning needs a target: there is one
            return both, np.concatenate([target, state.targets["validation"]]), "train + validation"
        return train, target, "train"

    def estimator(self, cls: type, tuned: dict[str, Any] | None = None) -> Any:
        """The unfitted estimator: the recipe's class with its params (and the tuned ones over them)."""
        return cls(**{**self.spec.model.params, **(tuned or {})})


@dataclass
class FitQuantiles(Fit):
    """Quantile regression: one clone of the recipe's regressor per quantile, with its quantile loss."""

    def describe(self) -> str:
        from mmp.config.catalogue import quantile_loss
        from mmp.config.estimators import class_facts

        loss = quantile_loss(class_facts(self.spec.model.class_path))  # the plan needs no scikit-learn import
        told = ", ".join(f"{k}={v!r}" for k, v in loss.for_quantile("q").items()).replace("'q'", "q")
        quantiles = sorted(self.spec.quantiles)
        point = "the 0.5 model" if 0.5 in quantiles else "one more model with its own loss"
        return (f"{super().describe()} per quantile {', '.join(f'{q:g}' for q in quantiles)} ({told}); "
                f"prediction: {point}")

    def estimator(self, cls: type, tuned: dict[str, Any] | None = None) -> Any:
        from mmp.config.catalogue import quantile_loss
        from mmp.models.quantile import MultiQuantileRegressor

        loss = quantile_loss(cls)
        return MultiQuantileRegressor(cls(**self.spec.model.params), tuple(self.spec.quantiles), dict(loss.params),
                                      loss.quantile_param)


@dataclass
class Evaluate:
    """Every recipe metric on every split; the primary metric on validation (else test)."""

    spec: RunSpec
    metrics: list[str]
    primary_metric: str
    higher_is_better: bool
    name: str = "evaluate"
    opens_run: bool = True

    def describe(self) -> str:
        better = "higher" if self.higher_is_better else "lower"
        extra = ""
        if self.spec.calibration is not None:
            extra = "; brier and log_loss before (_uncalibrated) and after calibration"
        if self.spec.quantiles and len(self.spec.quantiles) > 1:
            extra = "; pinball loss per quantile, coverage and width of the outermost pair"
        elif self.spec.quantiles:
            extra = "; pinball loss of the quantile"
        return (f"{', '.join(self.metrics)} on validation and test; primary {self.primary_metric} "
                f"({better} is better){extra}")

    def run(self, state: TrainState) -> str:
        from mmp.models.tabular import prediction_frame
        from mmp.training.metrics import compute

        task = self.spec.task
        for name, X in state.inputs.items():
            if len(X) == 0 or name == "calibration":  # calibration rows are the calibrator's training data
                continue
            predicted = prediction_frame(state.model, X, task, state.classes)
            state.predictions[name] = predicted
            labels = predicted["prediction"].to_numpy()
            values = compute(
                task, self.metrics, y_true=state.targets.get(name), y_pred=labels,
                proba=probability_matrix(predicted, state.classes) if task == "classification" else None,
                classes=state.classes, X=state.model[:-1].transform(X) if task == "clustering" else None,
                labels=labels if task == "clustering" else None,
            )
            values.update(self._quantile_metrics(state.targets.get(name), predicted))
            if state.uncalibrated is not None and name != "train":
                values.update(self._calibration_metrics(state, name, X, predicted))
            state.metrics.update({f"{name}_{metric}": value for metric, value in values.items()})
        refit_on_validation = self.spec.tune.enabled and self.spec.tune.refit == "train+validation"
        scored = "validation" if state.sizes["validation"] and not refit_on_validation else "test"
        state.primary_key = f"{scored}_{self.primary_metric}"
        shown = [f"{split} " + ", ".join(f"{k[len(split) + 1:]} {v:.4g}" for k, v in state.metrics.items()
                                         if k.startswith(split + "_"))
                 for split in ("validation", "test") if state.sizes.get(split)]
        return "; ".join(shown) or "no metric is defined on these splits"

    def _quantile_metrics(self, y_true: Any, predicted: Any) -> dict[str, float]:
        from mmp.models.tabular import quantile_column
        from mmp.training.metrics import quantile_metrics

        if not self.spec.quantiles or y_true is None:
            return {}
        names = {q: quantile_column(q) for q in self.spec.quantiles}
        return quantile_metrics(y_true, {q: (c[len("prediction_"):], predicted[c].to_numpy()) for q, c in names.items()})

    def _calibration_metrics(self, state: TrainState, name: str, X: Any, predicted: Any) -> dict[str, float]:
        """Brier score and log loss of the calibrated model, and of the uncalibrated one (`_uncalibrated`)."""
        from mmp.models.tabular import prediction_frame
        from mmp.training.metrics import probability_metrics

        before = prediction_frame(state.uncalibrated, X, self.spec.task, state.classes)
        state.uncalibrated_predictions[name] = before
        y, out = state.targets[name], {}
        for suffix, frame in (("", predicted), ("_uncalibrated", before)):
            proba = probability_matrix(frame, state.classes)
            if proba is not None:  # a classifier with only decision_function has no probabilities before
                out.update({f"{metric}{suffix}": value for metric, value in probability_metrics(y, proba, state.classes).items()})
        return out


def class_codes(target: Any) -> tuple[list, Any]:
    """The sorted class labels and `target` as codes 0..k-1: every classifier learns codes (xgboost
    insists) and the logged model maps them back to labels."""
    import numpy as np

    labels, codes = np.unique(target, return_inverse=True)
    return [label.item() if hasattr(label, "item") else label for label in labels], codes


def probability_matrix(predicted: Any, classes: list | None):
    """The (rows, classes) probability matrix back from the prediction columns (a frame or a dict of arrays)."""
    import numpy as np

    if "probability" in predicted:
        positive = np.asarray(predicted["probability"])
        return np.column_stack([1 - positive, positive])
    columns = [f"probability_{c}" for c in classes or []]
    if not columns or not all(c in predicted for c in columns):
        return None
    return np.column_stack([np.asarray(predicted[c]) for c in columns])


def run_tags(state: TrainState) -> dict[str, str]:
    """The tags a training run starts with: what was trained, on which data, by which mmp."""
    from mmp.training.source import source_label

    pipeline = state.pipeline
    spec = pipeline.spec
    tags = {
        "mmp.recipe": pipeline.recipe,
        "mmp.env": pipeline.env,
        "mmp.task": spec.task,
        "mmp.model_class": spec.model.class_path,
        "mmp.version": __version__,
        "mmp.data_source": source_label(spec, limit=1000),
        "mmp.data_fingerprint": fingerprint(state.frame, state.query),
        "mmp.primary_metric": pipeline.primary_metric,
        "mlflow.runName": f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}",
    }
    if spec.environment.name:
        tags["mmp.environment"] = spec.environment.name
    if state.parts.get("test") is not None:  # `mmp promote`'s gate compares runs tested on the same rows
        tags["mmp.test_fingerprint"] = fingerprint(state.parts["test"])
    if pipeline.preset:
        tags["mmp.model_preset"] = str(pipeline.preset)
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def fingerprint(frame: Any, query: str | None = None) -> str:
    """A short, stable hash of a dataset's columns, types and values (and of the rendered query and
    the row count, when the rows came from a query)."""
    digest = hashlib.sha256(repr(list(frame.schema.items())).encode())
    digest.update(frame.hash_rows(seed=42).to_numpy().tobytes())
    if query is not None:
        digest.update(f"{frame.height}\n{query}".encode())
    return digest.hexdigest()[:16]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
