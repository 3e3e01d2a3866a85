"""One tuning search: open (or join) the study and its MLflow parent run, run trials as child
runs until the study has all its trials, then (in exactly one process) hand the best params on."""

from __future__ import annotations

import os
import time
import traceback
import warnings
from typing import Any

from mmp.config.spec import RunSpec
from mmp.errors import Terminated, UserError
from mmp.training.pipeline import TrainState
from mmp.training.study import READY_ATTR, Study, open_study, wait_until_ready
from mmp.training.tune import STAGES, elapsed_over, shown_storage, suggest, tune_seed


class Search:
    """The study of one `mmp train` process, its parent run and its trials."""

    def __init__(self, spec: RunSpec, metric: str, direction: str, state: TrainState):
        self.spec, self.tune, self.metric, self.direction, self.state = spec, spec.tune, metric, direction, state
        self.scored_on = f"cv_{metric}" if self.tune.cv else f"validation_{metric}"
        self.counts = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
        self.client: Any = None
        self.study: Study | None = None

    def run(self) -> str:
        import mlflow
        import optuna

        from mmp.training.stages import class_codes

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # mmp prints one line per trial itself
        state = self.state
        self.client = mlflow.MlflowClient()
        if self.spec.task == "classification":
            state.classes, state.train_codes = class_codes(state.targets["train"])
        self.study = self._open()
        parent = self._parent_run()
        progress = state.pipeline.progress
        progress.note(f"study '{self.study.name}' ({'created' if self.study.created else 'joined'}), "
                      f"parent run {parent}")
        try:
            self._trials(parent)
            self.study.wait_for_running(progress)
            done = self.study.optuna_study.get_trials(deepcopy=False)
            best = self.study.optuna_study.best_trial
            if not self.study.claim_refit():
                state.run_id, state.done = parent, True
                return self._summary_line(best) + "; another process refits the best"
            self._log_summary(parent, done, best)
        except (Terminated, KeyboardInterrupt):
            self._kill_own_runs(parent)
            raise
        except Exception as exc:
            if self.study.created or isinstance(exc, UserError):
                self.client.set_tag(parent, "mmp.failure", str(exc)[:5000])
                self.client.set_terminated(parent, "FAILED")
            raise
        state.run_id = parent
        state.best_params = dict(best.params)
        return self._summary_line(best)

    # --- the study and its parent run -------------------------------------------------------

    def _open(self) -> Study:
        import optuna

        tune = self.tune
        seed = tune_seed(self.spec)
        name = tune.study or (self.spec.name if tune.storage is None else
                              f"{self.spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        sampler = self._sampler(seed)
        # Early rounds say little about a slow learner: no pruning in the first stages (or the first fold).
        warmup = 1 if tune.cv else STAGES // 3
        pruner = {"median": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup),
                  "hyperband": optuna.pruners.HyperbandPruner(min_resource=1, max_resource=STAGES),
                  "none": optuna.pruners.NopPruner()}[tune.pruner]
        space = {"params": {k: v.model_dump() for k, v in tune.params.items()}, "metric": self.scored_on,
                 "model": self.spec.model.class_path}
        study = open_study(tune.storage, name, self.direction, sampler, pruner, tune.n_trials, space,
                           shown_storage(tune.storage))
        if not study.created:  # processes joining one study must not draw the same params as the first
            study.optuna_study.sampler = self._sampler(seed + 1 + os.getpid())
        return study

    def _sampler(self, seed: int) -> Any:
        import optuna

        if self.tune.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def _parent_run(self) -> str:
        from mmp.io import tracking
        from mmp.training.stages import run_tags

        study, state = self.study, self.state
        if not study.created:
            return wait_until_ready(study)
        tags = {**run_tags(state), **tracking.owner_tags(), "mmp.tune": "parent", "mmp.study": study.name,
                "mmp.tune_metric": self.scored_on}
        if state.sweep_parent:
            tags["mlflow.parentRunId"] = state.sweep_parent
        run = self.client.create_run(state.experiment_id, tags=tags)
        study.optuna_study.set_user_attr(READY_ATTR, run.info.run_id)
        return run.info.run_id

    def _kill_own_runs(self, parent: str) -> None:
        """Asked to stop: every run this process left RUNNING (a trial caught between its run's creation
        and its end, the parent it created) becomes KILLED, as a plain train's run does."""
        from mmp.io.tracking import OWNER_HOST, OWNER_PID, owner_tags

        mine = owner_tags()
        query = (f"attributes.status = 'RUNNING' and tags.`{OWNER_PID}` = '{mine[OWNER_PID]}' "
                 f"and tags.`{OWNER_HOST}` = '{mine[OWNER_HOST]}'")
        for run in self.client.search_runs([self.state.experiment_id], filter_string=query, max_results=1000):
            if run.info.run_id == parent or run.data.tags.get("mlflow.parentRunId") == parent:
                self.client.set_terminated(run.info.run_id, "KILLED")

    # --- trials ---------------------------------------------------------------------------

    def _trials(self, parent: str) -> None:
        started = time.monotonic()
        progress = self.state.pipeline.progress
        while not elapsed_over(started, self.tune.timeout):
            trial = self.study.claim()
            if trial is None:
                break
            with self.study.heartbeat(trial), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                state, value, error = self._trial(trial, parent, caught)
            self.counts[state] += 1
            shown = f"{value:.4g}" if value is not None else error
            progress.note(f"trial {trial.number}: {state.lower()} {shown}")
        if not any(t.state.name == "COMPLETE" for t in self.study.optuna_study.get_trials(deepcopy=False)):
            self._no_complete_trial()

    def _trial(self, trial: Any, parent: str, caught: list) -> tuple[str, float | None, str]:
        """Run one trial as a child run; tell Optuna how it ended."""
        from mmp.io import tracking

        study = self.study.optuna_study
        run = self.client.create_run(self.state.experiment_id, tags={
            "mlflow.parentRunId": parent, "mlflow.runName": f"{self.spec.name}-trial-{trial.number}",
            "mmp.trial_number": str(trial.number), "mmp.study": self.study.name, **tracking.owner_tags()})
        run_id = run.info.run_id
        reports: list[tuple[int, float]] = []
        try:
            return self._scored_trial(trial, study, run_id, reports)
        finally:  # a library's warnings, once per trial run instead of on every fit
            messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
            if messages:
                self.client.log_text(run_id, "\n".join(messages), "trial/warnings.txt")

    def _scored_trial(self, trial: Any, study: Any, run_id: str, reports: list) -> tuple[str, float | None, str]:
        import optuna
        from optuna.trial import TrialState

        try:
            params = {name: suggest(trial, name, space) for name, space in self.tune.params.items()}
            value = self._objective(trial, params, reports)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            self._end_child(run_id, trial, reports, None, "PRUNED", f"pruned at step {reports[-1][0] if reports else 0}")
            return "PRUNED", None, f"at step {reports[-1][0] if reports else 0}"
        except (Terminated, KeyboardInterrupt):
            study.tell(trial, state=TrialState.FAIL)
            self._end_child(run_id, trial, reports, None, "FAIL", "stopped (SIGTERM or Ctrl-C)", status="KILLED")
            raise
        except Exception as exc:  # a trial's failure is the trial's, not the study's
            error = f"{type(exc).__name__}: {exc}".strip()[:2000]
            trial.set_user_attr("error", error)
            study.tell(trial, state=TrialState.FAIL)
            self._end_child(run_id, trial, reports, None, "FAIL", error,
                            detail="".join(traceback.format_exception(exc))[-20000:])
            return "FAIL", None, error.splitlines()[0][:200]
        try:
            study.tell(trial, value)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):  # told first by another process
            reason = f"trial {trial.number} was finished by another process; this run of it is not counted"
            self._end_child(run_id, trial, reports, value, "FAIL", reason)
            return "FAIL", None, reason
        self._end_child(run_id, trial, reports, value, "COMPLETE", "")
        return "COMPLETE", value, ""

    def _end_child(self, run_id: str, trial: Any, reports: list, value: float | None, state: str, reason: str,
                   status: str | None = None, detail: str = "") -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        metrics = [Metric(self.scored_on, v, now, step) for step, v in reports]
        if value is not None and (not reports or reports[-1][1] != value):
            metrics.append(Metric(self.scored_on, value, now, len(reports)))
        params = [Param(k, str(v)[:6000]) for k, v in trial.params.items()]
        tags = [RunTag("mmp.trial_state", state)] + ([RunTag("mmp.trial_reason", reason[:5000])] if reason else [])
        self.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        if detail:
            self.client.log_text(run_id, detail, "trial/traceback.txt")
        status = status or {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}[state]
        self.client.set_terminated(run_id, status)

    def _objective(self, trial: Any, params: dict[str, Any], reports: list) -> float:
        from mmp.training.scoring import cross_validate, holdout

        fixed = dict(self.spec.model.params)
        if self.tune.cv:
            return cross_validate(self.state, self.spec, {**fixed, **params}, self.metric, self.tune.cv, trial, reports)
        return holdout(self.state, self.spec, {**fixed, **params}, self.metric, trial, reports,
                       stages=STAGES if self.tune.pruner != "none" else 0)

    def _no_complete_trial(self) -> None:
        trials = self.study.optuna_study.get_trials(deepcopy=False)
        if not trials:
            raise UserError(f"tune: study '{self.study.name}' ran no trial (the timeout passed before the first)")
        errors = [t.user_attrs.get("error") for t in trials if t.user_attrs.get("error")]
        first = f"; the first error: {errors[0].splitlines()[0][:500]}" if errors else ""
        raise UserError(f"tune: none of the {len(trials)} trial(s) completed "
                        f"({sum(1 for t in trials if t.state.name == 'FAIL')} failed, "
                        f"{sum(1 for t in trials if t.state.name == 'PRUNED')} pruned){first}")

    # --- the study's summary on the parent run ----------------------------------------------------

    def _summary_line(self, best: Any) -> str:
        mine = ", ".join(f"{n} {s.lower()}" for s, n in self.counts.items() if n)
        return (f"{mine or 'no trial'} here; best trial {best.number}: {self.scored_on} {best.value:.4g} "
                f"with {', '.join(f'{k}={v!r}' for k, v in best.params.items())}")

    def _log_summary(self, parent: str, trials: list, best: Any) -> None:
        from mmp.training.tune_report import log_study

        log_study(self.client, parent, self.study.optuna_study, trials, best, self.scored_on)
