"""What `mmp compile`, `mmp validate` and `mmp train` do, given a composition request."""

from __future__ import annotations

import sys
from typing import Any

from mmp.config.compose import run
from mmp.config.request import Request
from mmp.training.compiler import compile_job


def compile_command(request: Request) -> None:
    """Print the resolved config (secrets masked) and the plan of the compiled pipeline."""

    def job(cfg: Any) -> None:
        from omegaconf import OmegaConf

        pipeline = compile_job(request, cfg)
        print(OmegaConf.to_yaml(OmegaConf.create(pipeline.config)), end="")
        print()
        print(pipeline.plan())

    run(request, job, prog="mmp compile")


def validate_command(request: Request, read_data: bool = True) -> None:
    """Compile, then (unless told not to) read the data and check its columns against the recipe."""

    def job(cfg: Any) -> None:
        from mmp.config.data_checks import column_problems
        from mmp.errors import ConfigError
        from mmp.training.source import is_query, load_data, source_label

        pipeline = compile_job(request, cfg)
        spec = pipeline.spec
        checked = ""
        if read_data and (spec.data.source or is_query(spec)):
            source = source_label(spec)
            frame, _ = load_data(spec)
            origin = lambda path: request.origin(path)  # noqa: E731
            problems = column_problems(spec, frame, origin=origin)
            problems = problems or task_data_problems(spec, frame, origin)
            if problems:
                raise ConfigError(problems, source=f"data at {source}")
            checked = f"; data {source}: {frame.height} rows x {frame.width} columns match"
        print(f"ok: recipe {pipeline.recipe} with env {pipeline.env} is valid{checked}")

    run(request, job, prog="mmp validate")


def task_data_problems(spec: Any, frame: Any, origin: Any) -> list:
    """What a task needs of its data beyond the columns: series without gaps or duplicate times
    (timeseries), a 0/1 treatment with both arms (causal)."""
    from mmp.errors import ConfigError

    if spec.task == "timeseries":
        from mmp.training.forecasting import series_frame

        try:
            series_frame(spec, frame, origin)
        except ConfigError as exc:
            return list(exc.problems)
    if spec.task == "causal":
        from mmp.config.causal_checks import treatment_data_problems

        return treatment_data_problems(spec, frame, origin)
    return []


def train_command(request: Request, quiet: bool = False) -> None:
    """Compile and run the pipeline (each job of a sweep); print each run id last on stdout."""
    sweep = None
    if request.multirun:
        from mmp.training.sweep import Sweep

        sweep = Sweep()

    def job(cfg: Any) -> float | None:
        try:
            result = compile_job(request, cfg).run(quiet=quiet, sweep=sweep)
        finally:
            if sweep is not None:
                sweep.tag_trial()
        print(result.run_id, flush=True)
        return result.primary  # what a Hydra sweeper optimises

    failed = True
    try:
        run(request, job, prog="mmp train")
        failed = False
    finally:
        if sweep is not None and sweep.parents:
            for line in sweep.finish(failed=failed):
                print(line, file=sys.stderr)
            for parent in sweep.parents.values():
                print(parent)
