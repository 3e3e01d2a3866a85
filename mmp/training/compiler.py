"""compile(composed config) -> Pipeline: check everything at once, then pick the stages for the task.

The checks are the configuration stage's (`mmp.config.checks`); choosing stage objects is this
stage's, so a new task or tuner adds its stages here instead of branching inside one train function.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from mmp.config.checks import check
from mmp.training.pipeline import Pipeline

Origin = Callable[[str], "str | None"]

# Tasks with their own stages (a backtest, a forecaster fit; a treatment-aware learner): name -> builder.
TASK_STAGES = {
    "timeseries": "mmp.training.forecasting:forecast_stages",
    "causal": "mmp.training.causal:causal_stages",
}


def compile(cfg: Any, recipe: str = "?", env: str = "?", origin: Origin = lambda path: None) -> Pipeline:
    """Check a composed config (OmegaConf) and turn it into a `Pipeline` of stage objects."""
    from omegaconf import OmegaConf

    from mmp.masking import masked_container
    from mmp.training.calibrate import Calibrate
    from mmp.training.log import Log
    from mmp.training.stages import Evaluate, Fit, FitQuantiles, Load, Preprocess, Split
    from mmp.training.tune import Tune

    spec = check(OmegaConf.to_container(cfg, resolve=True), origin)
    pipeline = Pipeline(spec=spec, recipe=recipe, env=env, config=masked_container(cfg), origin=origin)
    if spec.task in TASK_STAGES:
        module, name = TASK_STAGES[spec.task].split(":")
        pipeline.stages = tuple(getattr(importlib.import_module(module), name)(spec, pipeline))
        return pipeline
    pipeline.stages = (
        Load(spec),
        Split(spec),
        # A study opens its own parent run (or joins another process's), so preprocessing stays outside it.
        Preprocess(spec, opens_run=not spec.tune.enabled),
        *((Tune(spec, spec.tune.metric or pipeline.primary_metric),) if spec.tune.enabled else ()),
        FitQuantiles(spec) if spec.quantiles else Fit(spec),
        *((Calibrate(spec),) if spec.calibration is not None else ()),
        Evaluate(spec, pipeline.metrics, pipeline.primary_metric, pipeline.higher_is_better),
        Log(spec, pipeline.tracking_uri, pipeline.experiment),
    )
    return pipeline


def compile_job(request: Any, cfg: Any) -> Pipeline:
    """Inside a Hydra job: compile the composed config, naming files and overrides in errors."""
    from hydra.core.hydra_config import HydraConfig

    from mmp.config.model_presets import apply_model_preset

    choices = dict(HydraConfig.get().runtime.choices)
    cfg = apply_model_preset(cfg, choices, request)
    recipe = str(request.recipe_file) if request.recipe_file else str(choices.get("recipe"))
    env = str(request.env_file) if request.env_file else str(choices.get("env"))
    pipeline = compile(cfg, recipe=recipe, env=env, origin=lambda path: request.origin(path, choices))
    pipeline.preset = choices.get("model")  # tagged on the run: which `model=NAME` replaced the recipe's model
    return pipeline
