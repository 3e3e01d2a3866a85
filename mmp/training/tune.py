"""The tune stage: an Optuna study over the recipe's search space, one MLflow child run per trial.

Each trial fits preprocessing + the model with the trial's params on train and scores the tuning
metric on validation (or by k-fold cross-validation on train). Estimators that train in rounds
(boosting, forests, torch epochs) are fitted in stages and report after each one, so the pruner
stops a bad trial early; with cross-validation every fold reports. A trial that raises is told to
Optuna as FAILED with its error and the study goes on. The best params then go to the fit stage,
which refits them and logs the model on the study's parent run (`--run-id PARENT` serves it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mmp.config.catalogue import METRICS
from mmp.config.spec import RunSpec
from mmp.training.pipeline import TrainState

STAGES = 10  # progress reports per trial for estimators fitted in stages


@dataclass
class Tune:
    """Search `tune.params` with Optuna, then hand the best params to the fit stage."""

    spec: RunSpec
    metric: str
    name: str = "tune"
    opens_run: bool = False  # it opens (or joins) the study's parent run itself

    @property
    def direction(self) -> str:
        if self.spec.tune.direction:
            return self.spec.tune.direction
        return "maximize" if METRICS[self.spec.task][self.metric].greater_is_better else "minimize"

    def describe(self) -> str:
        tune = self.spec.tune
        budget = " and ".join(x for x in (f"{tune.n_trials} trials" if tune.n_trials else "",
                                          f"{tune.timeout:g} s per process" if tune.timeout else "") if x)
        seed = tune_seed(self.spec)
        scored = f"{tune.cv}-fold CV on train" if tune.cv else "validation"
        space = ", ".join(f"{name} {_describe_space(p)}" for name, p in tune.params.items())
        shared = ""
        if tune.storage:  # without a name to join, each run keeps a study of its own in the storage
            shared = (f"; study '{tune.study}' shared through {shown_storage(tune.storage)}" if tune.study
                      else f"; a study of its own in {shown_storage(tune.storage)}")
        return (f"{budget} of {tune.sampler.upper() if tune.sampler == 'tpe' else tune.sampler} (seed {seed}), "
                f"{tune.pruner} pruner; {self.direction} {self.metric} on {scored} over {space}; "
                f"refit the best on {tune.refit}{shared}")

    def run(self, state: TrainState) -> str:
        from mmp.training.trials import Search

        search = Search(self.spec, self.metric, self.direction, state)
        return search.run()


def _describe_space(space: Any) -> str:
    if space.type == "categorical":
        return "in {" + ", ".join(repr(c) for c in space.choices or []) + "}"
    extra = (" log" if space.log else "") + (f" step {space.step:g}" if space.step else "")
    return f"{space.type} {space.low:g}..{space.high:g}{extra}"


def tune_seed(spec: RunSpec) -> int:
    """The sampler's seed: tune.seed, else the split's seed."""
    return spec.tune.seed if spec.tune.seed is not None else spec.data.split.seed


def shown_storage(url: str | None) -> str:
    """The study storage as it may be printed: its password masked."""
    from mmp.masking import scrub

    return scrub(url or "memory")


def suggest(trial: Any, name: str, space: Any) -> Any:
    """The trial's value for one parameter of the search space."""
    if space.type == "categorical":
        return trial.suggest_categorical(name, space.choices)
    if space.type == "int":
        return trial.suggest_int(name, int(space.low), int(space.high), step=int(space.step or 1), log=space.log)
    return trial.suggest_float(name, float(space.low), float(space.high), step=space.step, log=space.log)


def elapsed_over(started: float, timeout: float | None) -> bool:
    return timeout is not None and time.monotonic() - started >= timeout
