"""The compiled pipeline: an ordered list of stage objects that describe themselves and run.

`compile()` picks the stages for the recipe's task; `mmp compile` prints `plan()`, which is each
stage's `describe()`; `mmp train` is `pipeline.run()`, which calls each stage's `run(state)` in
the same order. What is printed is what runs, and a new task swaps stage implementations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from mmp.config.catalogue import DEFAULT_METRICS, METRICS
from mmp.config.spec import RunSpec


class Stage(Protocol):
    """One step of a training pipeline: its name, its settings in words, and the work itself."""

    name: str
    opens_run: bool  # the MLflow run starts before the first stage that says so

    def describe(self) -> str: ...

    def run(self, state: "TrainState") -> str:
        """Do the work on `state`; return the progress line's detail."""
        ...


@dataclass
class TrainState:
    """What flows from stage to stage during one `mmp train`."""

    pipeline: "Pipeline"
    frame: Any = None  # the loaded data (polars)
    query: str | None = None  # the rendered SQL query the data came from, if it did
    features: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    parts: dict[str, Any] = field(default_factory=dict)  # split name -> polars frame
    inputs: dict[str, Any] = field(default_factory=dict)  # split name -> model input (pandas)
    targets: dict[str, Any] = field(default_factory=dict)  # split name -> target values
    preprocessor: Any = None
    model: Any = None  # the fitted scikit-learn Pipeline (preprocessing + estimator)
    uncalibrated: Any = None  # with calibration: the pipeline before it (model's last step is then calibrated)
    classes: list | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    predictions: dict[str, Any] = field(default_factory=dict)
    uncalibrated_predictions: dict[str, Any] = field(default_factory=dict)
    primary_key: str = ""
    run_id: str | None = None  # set before the run opens: resume that run (a tuning study's parent)
    experiment_id: str | None = None
    sweep: Any = None  # the `-m` sweep this job belongs to
    best_params: dict[str, Any] = field(default_factory=dict)  # tuned params the fit stage uses
    train_codes: Any = None  # classification: train targets as class codes 0..k-1
    done: bool = False  # nothing left for this process (another process of a shared study refits)
    plot_worker: Any = None  # the forked process drawing this run's plots (mmp.training.plot_worker), if any

    @property
    def sweep_parent(self) -> str | None:
        """The `-m` sweep's parent run in this experiment (created on first use), else None."""
        return self.sweep.parent_for(self.pipeline, self.experiment_id) if self.sweep is not None else None

    @property
    def sizes(self) -> dict[str, int]:
        return {name: part.height for name, part in self.parts.items()}


@dataclass
class TrainResult:
    """What a training run produced: its id and metrics, and the value a sweeper optimises."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    primary_key: str = ""

    @property
    def primary(self) -> float | None:
        return self.metrics.get(self.primary_key)


class Progress:
    """One line per stage on stderr, with row counts and timings; silent with -q."""

    def __init__(self, quiet: bool = False):
        from rich.console import Console

        self.console = Console(stderr=True, quiet=quiet, highlight=False, soft_wrap=True)

    def stage(self, name: str, detail: str, seconds: float) -> None:
        self.console.print(f"[green]✓[/] {name:<10} {detail} [dim]({seconds:.2f} s)[/]")

    def note(self, text: str) -> None:
        self.console.print(f"  [dim]{text}[/]")


@dataclass
class Pipeline:
    """What `mmp train` runs, built by `compile()` from a checked config."""

    spec: RunSpec
    recipe: str
    env: str
    config: dict[str, Any] = field(repr=False)  # the resolved config, secrets masked
    stages: tuple[Stage, ...] = ()
    origin: Callable[[str], "str | None"] = field(default=lambda path: None, repr=False)  # key path -> its file
    progress: Any = field(default=None, repr=False)
    preset: str | None = None  # the model preset chosen with `model=NAME`, if any

    @property
    def metrics(self) -> list[str]:
        return list(self.spec.evaluate.metrics or DEFAULT_METRICS[self.spec.task])

    @property
    def primary_metric(self) -> str:
        return self.spec.evaluate.primary_metric or self.metrics[0]

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.spec.task][self.primary_metric].greater_is_better

    @property
    def tracking_uri(self) -> str:
        from mmp.io.tracking import configured_uri

        return configured_uri(self.spec.mlflow.tracking_uri)

    @property
    def experiment(self) -> str:
        return self.spec.mlflow.experiment or self.spec.name

    def plan(self) -> str:
        """The stages as `mmp compile` prints them."""
        width = max(len(s.name) for s in self.stages)
        lines = [f"pipeline {self.spec.name} ({self.spec.task}) — recipe {self.recipe}, env {self.env}"]
        lines += [f"  {i}. {s.name:<{width}}  {s.describe()}" for i, s in enumerate(self.stages, 1)]
        return "\n".join(lines)

    def run(self, quiet: bool = False, sweep: Any = None) -> TrainResult:
        """Run every stage in order and log to MLflow. Bad data is a UserError (exit 2) found before
        any MLflow run exists; a failure after the run started marks it FAILED."""
        from mmp.training.plot_worker import PlotWorker

        # Forked before MLflow is imported: it imports matplotlib on another core meanwhile.
        worker = PlotWorker.start() if any(getattr(s, "draws_plots", False) for s in self.stages) else None
        try:
            return self._run(quiet, sweep, worker)
        finally:
            if worker is not None:
                worker.close()

    def _run(self, quiet: bool, sweep: Any, worker: Any) -> TrainResult:
        import mlflow

        from mmp.io import tracking
        from mmp.masking import scrub
        from mmp.training.stages import run_tags

        self.progress = Progress(quiet)
        if sweep is not None:
            self.progress.console.print(f"[bold]job {sweep.describe_job()}[/]")
        started = time.perf_counter()
        uri = tracking.connect(self.spec.mlflow.tracking_uri)
        experiment_id = tracking.experiment_id(self.experiment, self.spec.mlflow.tracking_uri)
        self.progress.stage("tracking", f"{scrub(self.tracking_uri)} -> experiment '{self.experiment}'",
                            time.perf_counter() - started)
        state = TrainState(pipeline=self, experiment_id=experiment_id, sweep=sweep, plot_worker=worker)
        pending = list(self.stages)
        while pending and not pending[0].opens_run:
            self._run_stage(pending.pop(0), state)
        if state.done:  # a process of a shared study that does not refit: its trials are logged
            return TrainResult(state.run_id or "", experiment_id, uri, {}, "")
        from mmp.errors import Terminated

        if state.run_id:  # resume the run a stage opened (a study's parent), now owned by this process
            opened = mlflow.start_run(run_id=state.run_id)
            mlflow.set_tags(tracking.owner_tags())
        else:
            opened = mlflow.start_run(experiment_id=experiment_id, tags={**run_tags(state), **tracking.owner_tags()},
                                      parent_run_id=state.sweep_parent)
        with opened as run:
            state.run_id = run.info.run_id
            try:
                for stage in pending:
                    self._run_stage(stage, state)
            except (Terminated, KeyboardInterrupt):
                mlflow.end_run("KILLED")  # asked to stop (SIGTERM, Ctrl-C): not a failure of the run
                raise
        result = TrainResult(run.info.run_id, experiment_id, uri, state.metrics, state.primary_key)
        if sweep is not None:
            sweep.add(self, result)
        return result

    def _run_stage(self, stage: Stage, state: TrainState) -> None:
        started = time.perf_counter()
        detail = stage.run(state)
        self.progress.stage(stage.name, detail, time.perf_counter() - started)
