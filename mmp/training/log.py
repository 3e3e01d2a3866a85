"""The last stage of training: log params, metrics, the resolved config, plots and the model to MLflow.

The model is logged as a standard MLflow pyfunc whose artifact is the pickled `TabularModel`, with
mmp's own code pickled into it by value, so loading it needs no mmp install; beside it, with
monitoring on, the training split's drift profile (`artifacts/drift_profile.json`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

from mmp import __version__
from mmp.config.spec import RECIPE_KEYS, RunSpec
from mmp.models.logged import DRIFT_ARTIFACT, MODEL_NAME
from mmp.training.pipeline import TrainState

CONFIG_ARTIFACT = "mmp/config.yaml"


@dataclass
class Log:
    """Params (the flattened recipe), metrics, tags, the model (pyfunc), the masked config, plots."""

    spec: RunSpec
    tracking_uri: str
    experiment: str
    name: str = "log"
    opens_run: bool = True
    draws_plots: ClassVar[bool] = True  # the pipeline starts a plot worker for it (mmp.training.plot_worker)

    def describe(self) -> str:
        from mmp.masking import scrub

        return (f"MLflow {scrub(self.tracking_uri)}, experiment '{self.experiment}': "
                "params, metrics, tags, model (pyfunc), resolved config, plots")

    def run(self, state: TrainState) -> str:
        import tempfile

        import mlflow

        from mmp.training import plot_worker, plots

        report = "test" if "test" in state.predictions else next(iter(state.predictions))
        drawn = (self.spec.task, state.targets.get(report), state.predictions[report], state.classes)
        options = {"uncalibrated": state.uncalibrated_predictions.get(report),
                   "importance": plots.feature_importance(state.model)}
        worker = state.plot_worker
        if worker is not None:
            worker.submit(*drawn, **options)  # it draws while this process logs
        log_record(state)
        log_model(state)
        with tempfile.TemporaryDirectory() as folder:
            if plot_worker.render(worker, folder, *drawn, **options):
                mlflow.log_artifacts(folder, "plots")
        return f"run {state.run_id} (params, metrics, tags, model, config, plots)"


def log_record(state: TrainState, extra: dict[str, Any] | None = None) -> None:
    """Log the run's params (the flattened recipe, split sizes and `extra`), metrics and masked config."""
    import mlflow
    from omegaconf import OmegaConf

    pipeline = state.pipeline
    recipe = {k: v for k, v in pipeline.config.items() if k in RECIPE_KEYS}
    params = dict(_flatten(recipe))
    params.update({f"split.{name}_rows": rows for name, rows in state.sizes.items()})
    params.update(extra or {})
    items = list(params.items())
    for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        mlflow.log_params({k: str(v)[:6000] for k, v in items[i:i + 100]})
    mlflow.log_metrics(state.metrics)
    mlflow.log_text(OmegaConf.to_yaml(OmegaConf.create(pipeline.config)), CONFIG_ARTIFACT)
    if state.query is not None:
        from mmp.masking import scrub
        from mmp.training.source import QUERY_ARTIFACT

        mlflow.log_text(scrub(state.query), QUERY_ARTIFACT)


def _flatten(node: Any, prefix: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}{key}.")
    elif isinstance(node, list) and node and any(isinstance(v, (dict, list)) for v in node):
        for i, value in enumerate(node):
            yield from _flatten(value, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), node


def log_model(state: TrainState) -> None:
    """Log the fitted pipeline as the run's pyfunc model, with signature, input example and pins."""
    from mmp.models import tabular
    from mmp.training.drift_profile import reference_profile

    spec = state.pipeline.spec
    model = tabular.TabularModel(state.model, spec.task, state.features, state.numeric, state.classes)
    log_pyfunc(state, model, state.inputs["train"].head(5), estimators(state.model), {
        "classes": state.classes, "quantiles": sorted(spec.quantiles) if spec.quantiles else None,
        "calibration": spec.calibration.method if spec.calibration else None}, reference_profile(state))


def log_pyfunc(state: TrainState, model: Any, example: Any, parts: list, metadata: dict[str, Any],
               drift_profile: dict[str, Any] | None = None) -> None:
    """Log `model` (an object with `predict_frame(frame) -> frame`, pickled as the pyfunc's artifact)
    as the run's model: signature and input example from `example`, pins for `parts` (the fitted
    estimators inside it), mmp's metadata (task, features, entity columns, ...) plus `metadata`, and
    `drift_profile` (if any) as `artifacts/drift_profile.json`, named in the metadata."""
    import json
    import tempfile

    import cloudpickle
    import mlflow
    from mlflow.models import infer_signature

    from mmp.models import mlflow_model, tabular
    from mmp.models.drift import PROFILE_FILE  # here, not at the top: drift needs numpy, `mmp compile` does not
    from mmp.models.requirements import pip_requirements

    pipeline, spec = state.pipeline, state.pipeline.spec
    with warnings.catch_warnings():  # integer outputs (cluster ids, labels) never hold missing values
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        signature = infer_signature(example, model.predict_frame(example))
    modules = list(dict.fromkeys([tabular, mlflow_model, *_own_modules([model, *parts])]))
    for module in modules:  # pickle mmp's code into the model, so loading it needs no mmp install
        cloudpickle.register_pickle_by_value(module)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            artifact = f"{tmp}/model.pkl"
            with open(artifact, "wb") as f:
                cloudpickle.dump(model, f)
            artifacts = {tabular.MODEL_ARTIFACT: artifact}
            if drift_profile is not None:
                artifacts[DRIFT_ARTIFACT] = f"{tmp}/{PROFILE_FILE}"
                with open(artifacts[DRIFT_ARTIFACT], "w") as f:
                    json.dump(drift_profile, f)
                metadata = {**metadata, "drift_profile": f"artifacts/{PROFILE_FILE}"}
            from mmp.models.requirements import pins_trusted

            with pins_trusted():
                mlflow.pyfunc.log_model(
                    name=MODEL_NAME,
                    python_model=mlflow_model.MlflowModel(),
                    artifacts=artifacts,
                    signature=signature,
                    input_example=example,
                    pip_requirements=pip_requirements(parts),
                    registered_model_name=spec.mlflow.registered_model_name,
                    metadata={"mmp": {"task": spec.task, "features": state.features, "numeric": state.numeric,
                                      "entity_columns": spec.data.entity_columns, "target": spec.data.target,
                                      "recipe": pipeline.recipe, "name": spec.name,
                                      "primary_metric": pipeline.primary_metric, "version": __version__, **metadata}},
                )
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)


def estimators(model: Any) -> list:
    """The fitted pipeline's steps and every estimator nested in them (a calibrated classifier's
    classifier, each quantile's regressor), outermost first."""
    found = [step for _, step in model.steps]
    for step in list(found):
        if hasattr(step, "get_params"):
            found += [v for v in step.get_params(deep=True).values() if hasattr(v, "get_params") and v is not step]
    return found


def _own_modules(parts: list) -> list:
    """mmp modules whose classes sit inside the fitted pipeline (the torch MLP, the quantile regressor)."""
    import sys

    names = {type(part).__module__ for part in parts}
    return [sys.modules[n] for n in sorted(names) if n.startswith("mmp.") and n in sys.modules]
