"""The Optuna sweeper: ask Optuna for trials, launch them in batches through Hydra's launcher, tell
Optuna each job's return value (the recipe's primary metric). A job that fails, or returns no
value, is told as FAIL with its error and the study goes on; only a sweep in which every trial
failed fails, with the first trial's error.

mmp's side (`mmp/training/sweep.py`) reads what this writes: each job's trial number in the
environment variable MMP_TRIAL_NUMBER (through `hydra.job.env_set`), and `search_space.yaml` and
`optimization_results.yaml` in the sweep dir, which it logs on the sweep's MLflow parent run.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

TRIAL_VAR = "MMP_TRIAL_NUMBER"
SEARCH_SPACE_FILE = "search_space.yaml"
RESULTS_FILE = "optimization_results.yaml"
DIRECTIONS = ("maximize", "minimize")
SAMPLERS = ("tpe", "random")


class OptunaSweeper(Sweeper):
    """`hydra/sweeper=optuna`: an Optuna study over sweep expressions, one Hydra job per trial."""

    def __init__(self, sampler: Any, direction: Optional[str], storage: Optional[str], study_name: Optional[str],
                 n_trials: int, n_jobs: int, params: Optional[Any] = None) -> None:
        self.sampler = OmegaConf.to_container(sampler) if OmegaConf.is_config(sampler) else dict(sampler or {})
        self.direction = direction
        self.storage = storage
        self.study_name = study_name
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.params = dict(params or {})
        self.metric = ""
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        from mmp.errors import ConfigError

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)
        self.metric, better = objective(config)
        problems = self._problems(better)
        if problems:
            raise ConfigError(problems)
        self.direction = self.direction or ("maximize" if better else "minimize")
        if self.sampler.get("seed") is None:  # a sweep repeats itself, as the recipe's split does
            self.sampler["seed"] = OmegaConf.select(config, "data.split.seed", default=None)

    def _problems(self, better: Optional[bool]) -> list:
        from mmp.config.catalogue import METRICS
        from mmp.errors import Problem, allowed_text

        problems = []
        if self.direction is not None and self.direction not in DIRECTIONS:
            allowed = allowed_text(DIRECTIONS, str(self.direction)) + "; null: from the recipe's primary metric"
            problems.append(Problem("hydra.sweeper.direction", f"'{self.direction}' is not a direction", allowed))
        elif self.direction is None and better is None:  # the job would fail to compile; say why up front
            task = OmegaConf.select(self.config, "task", default=None)
            known = METRICS.get(task)
            problems.append(Problem("evaluate.primary_metric", f"'{self.metric}' is not a {task} metric",
                                    allowed_text(known, self.metric)) if known else
                            Problem("task", f"'{task}' is not a task", allowed_text(METRICS, str(task))))
        for key in ("n_trials", "n_jobs"):
            if getattr(self, key) < 1:
                problems.append(Problem(f"hydra.sweeper.{key}", f"must be at least 1, got {getattr(self, key)}"))
        if self.sampler.get("name") not in SAMPLERS:
            problems.append(Problem("hydra.sweeper.sampler.name", f"unknown sampler '{self.sampler.get('name')}'",
                                    "choose one with hydra/sweeper/sampler=tpe or =random"))
        return problems

    def sweep(self, arguments: list[str]) -> None:
        from hydra_plugins.mmp_optuna_sweeper.search_space import read_search_space

        assert self.config is not None and self.hydra_context is not None and self.launcher is not None
        space = read_search_space(self.params, arguments, self.hydra_context.config_loader)
        study = self._study()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's basic sweeper does
        OmegaConf.save(OmegaConf.create(self._summary(study, space)), sweep_dir / SEARCH_SPACE_FILE)
        earlier = len(study.get_trials(deepcopy=False))
        _say(f"study '{study.study_name}'{f' (resumed after {earlier} trials)' if earlier else ''}: "
             f"{self.n_trials} trials of {self.sampler['name'].upper()} "
             f"(seed {self.sampler.get('seed')}), {self.direction} {self.metric}, {self.n_jobs} per batch; "
             + "; ".join(f"{name} {p.expression}" for name, p in space.params.items()))

        failures: list[BaseException] = []
        launched = 0
        while launched < self.n_trials:
            trials = [study.ask(space.distributions) for _ in range(min(self.n_jobs, self.n_trials - launched))]
            batch = [[*space.overrides(t.params), f"++hydra.job.env_set.{TRIAL_VAR}={t.number}"] for t in trials]
            try:
                self.validate_batch_is_legal(batch)  # a value that cannot be composed is the user's error: stop
                returns = self.launcher.launch(batch, initial_job_idx=launched)
            except BaseException:  # Ctrl-C, SIGTERM, a config error: these trials did not run
                for trial in trials:
                    study.tell(trial, state=_fail_state())
                raise
            for trial, ret in zip(trials, returns):
                self._tell(study, trial, ret, failures)
            launched += len(trials)

        if len(failures) == launched:
            raise failures[0]  # no trial completed: the sweep fails as its first job did
        best = study.best_trial
        results = {"name": "optuna", "best_params": best.params, "best_value": best.value,
                   "best_trial": best.number, "study_name": study.study_name, "direction": self.direction,
                   "metric": self.metric, "trials": {"complete": launched - len(failures), "failed": len(failures)}}
        OmegaConf.save(OmegaConf.create(results), sweep_dir / RESULTS_FILE)
        shown = " ".join(space.params[k].override(v) if k in space.params else f"{k}={v}" for k, v in best.params.items())
        _say(f"{launched - len(failures)} of {launched} trials complete; best trial {best.number}: "
             f"{self.metric} {best.value:.4g} with {shown} ({sweep_dir / RESULTS_FILE})")

    def _study(self) -> Any:
        import optuna

        from mmp.errors import UserError
        from mmp.masking import scrub

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is printed here instead
        options = {k: v for k, v in self.sampler.items() if k != "name"}
        make_sampler = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}[self.sampler["name"]]
        sampler = make_sampler(**options)
        try:
            study = optuna.create_study(storage=self.storage, study_name=self.study_name, sampler=sampler,
                                        direction=self.direction, load_if_exists=True)
        except Exception as exc:
            if self.storage is None:
                raise
            first_line = (str(exc).strip().splitlines() or [""])[0]  # drivers add lines of advice
            raise UserError(f"hydra.sweeper.storage: cannot open a study in {scrub(self.storage)} "
                            f"({type(exc).__name__}: {scrub(first_line)})") from exc
        if study.direction.name.lower() != self.direction:
            raise UserError(f"hydra.sweeper.study_name: study '{study.study_name}' in {scrub(str(self.storage))} "
                            f"is to {study.direction.name.lower()}, not to {self.direction}; pick another study_name")
        done = len(study.get_trials(deepcopy=False))
        if done and options.get("seed") is not None:  # a resumed study: do not draw the first sweep's values again
            study.sampler = make_sampler(**{**options, "seed": options["seed"] + done})
        return study

    def _summary(self, study: Any, space: Any) -> dict[str, Any]:
        """What `search_space.yaml` holds: the study's settings and the search, no trial's values."""
        from mmp.masking import scrub

        return {"sweeper": "optuna", "study_name": study.study_name,
                "storage": scrub(self.storage) if self.storage else None, "direction": self.direction,
                "metric": self.metric, "n_trials": self.n_trials, "n_jobs": self.n_jobs, "sampler": dict(self.sampler),
                "params": space.summary()}

    def _tell(self, study: Any, trial: Any, ret: Any, failures: list[BaseException]) -> None:
        """Tell Optuna one job's result: its value, or FAIL with the job's error."""
        from hydra.core.utils import JobStatus

        from mmp.masking import scrub

        try:
            if ret.status == JobStatus.FAILED:
                with contextlib.redirect_stderr(io.StringIO()):  # Hydra's own "Error executing job" line
                    ret.return_value  # raises the job's error
            value = ret.return_value
            if value is None:
                raise ValueError(f"the job returned no {self.metric or 'metric'} value")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"the job's {self.metric} is {value}")
        except Exception as exc:
            reason = scrub(_reason(exc))
            trial.set_user_attr("fail_reason", reason)
            study.tell(trial, state=_fail_state())
            failures.append(exc)
            _say(f"trial {trial.number} failed: {reason}")
            return
        study.tell(trial, value)
        _say(f"trial {trial.number}: {self.metric} {value:.4g}")


def objective(config: DictConfig) -> tuple[str, Optional[bool]]:
    """The metric each job returns (the recipe's primary metric: evaluate.primary_metric, else the
    first of evaluate.metrics or of the task's defaults) and whether higher is better (None: unknown)."""
    from mmp.config.catalogue import DEFAULT_METRICS, METRICS

    task = OmegaConf.select(config, "task", default=None)
    metrics = OmegaConf.select(config, "evaluate.metrics", default=None) or DEFAULT_METRICS.get(task, [])
    metric = OmegaConf.select(config, "evaluate.primary_metric", default=None) or (metrics[0] if metrics else "")
    known = METRICS.get(task, {}).get(metric)
    return str(metric), (known.greater_is_better if known else None)


def _fail_state() -> Any:
    from optuna.trial import TrialState

    return TrialState.FAIL


def _reason(exc: BaseException) -> str:
    """`ValueError: ...` for the error that made a job fail (past wrappers that say nothing)."""
    while not str(exc) and exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _say(line: str) -> None:
    """A progress line on stderr (stdout carries only the run ids)."""
    print(f"optuna: {line}", file=sys.stderr, flush=True)
