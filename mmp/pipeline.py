"""The compiled pipeline: load -> split -> preprocess -> fit -> evaluate -> log, as an inspectable object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmp.metrics import DEFAULT_METRICS, METRICS
from mmp.preprocess import describe_step, step_options, STEPS
from mmp.spec import RunSpec


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline and its settings, in words."""

    name: str
    detail: str


@dataclass
class Pipeline:
    """What `mmp train` will run, built by `compile()` from a checked config."""

    spec: RunSpec
    recipe: str
    env: str
    config: dict[str, Any] = field(repr=False)  # the resolved config, secrets masked
    stages: tuple[Stage, ...] = ()

    @property
    def metrics(self) -> list[str]:
        return list(self.spec.evaluate.metrics or DEFAULT_METRICS[self.spec.task])

    @property
    def primary_metric(self) -> str:
        return self.spec.evaluate.primary_metric or self.metrics[0]

    @property
    def tracking_uri(self) -> str:
        from mmp.tracking import configured_uri

        return configured_uri(self.spec.mlflow.tracking_uri)

    @property
    def experiment(self) -> str:
        return self.spec.mlflow.experiment or self.spec.name

    def plan(self) -> str:
        """The stages as `mmp compile` prints them."""
        width = max(len(s.name) for s in self.stages)
        lines = [f"pipeline {self.spec.name} ({self.spec.task}) — recipe {self.recipe}, env {self.env}"]
        lines += [f"  {i}. {s.name:<{width}}  {s.detail}" for i, s in enumerate(self.stages, 1)]
        return "\n".join(lines)


def build_stages(pipeline: Pipeline) -> tuple[Stage, ...]:
    """Describe each stage from the spec."""
    spec = pipeline.spec
    data, split = spec.data, spec.data.split
    features = ", ".join(data.features) if data.features is not None else "every other column"
    load = f"{data.source or '(no source: pass -d URI)'}; entity {data.entity_columns or '-'}; " \
           f"target {data.target or '-'}; features: {features}"
    ratios = f"train {split.train:g} / validation {split.validation:g} / test {split.test:g}, seed {split.seed}"
    by = f" by {split.time_column}" if split.strategy == "temporal" else ""
    steps = [describe_step(s.type, step_options(STEPS[s.type], s.options), s.columns) for s in spec.preprocess]
    params = ", ".join(f"{k}={v!r}" for k, v in spec.model.params.items())
    primary = pipeline.primary_metric
    better = "higher" if METRICS[spec.task][primary].greater_is_better else "lower"
    return (
        Stage("load", load),
        Stage("split", f"{split.strategy}{by}: {ratios}"),
        Stage("preprocess", " -> ".join(steps) if steps else "none (features go to the model as they are)"),
        Stage("fit", f"{spec.model.class_path}({params})"),
        Stage("evaluate", f"{', '.join(pipeline.metrics)} on validation and test; primary {primary} ({better} is better)"),
        Stage("log", f"MLflow {pipeline.tracking_uri}, experiment '{pipeline.experiment}': "
                     "params, metrics, tags, model (pyfunc), resolved config, plots"),
    )
