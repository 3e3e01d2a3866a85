"""Sweeps (`mmp train -m ...`): every job is a child run of one parent run per experiment, and the
parent is tagged with the best child by the recipe's primary metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sweep:
    """The parent runs of one sweep and the results of its jobs (Hydra's basic launcher runs them here)."""

    parents: dict[tuple[str, str], str] = field(default_factory=dict)
    children: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)

    def describe_job(self) -> str:
        """`#2: model.params.C=10` for the running Hydra job."""
        from hydra.core.hydra_config import HydraConfig

        job = HydraConfig.get().job
        return f"#{job.num}: {' '.join(HydraConfig.get().overrides.task)}"

    def parent_for(self, pipeline: Any, experiment_id: str) -> str:
        """The parent run of this sweep in the job's experiment, created on first use."""
        import mlflow

        key = (mlflow.get_tracking_uri(), experiment_id)
        if key not in self.parents:
            run = mlflow.MlflowClient().create_run(
                experiment_id, run_name=f"{pipeline.spec.name}-sweep",
                tags={"mmp.sweep": "parent", "mmp.recipe": pipeline.recipe, "mmp.primary_metric": pipeline.primary_metric},
            )
            self.parents[key] = run.info.run_id
        return self.parents[key]

    def add(self, pipeline: Any, result: Any) -> None:
        parent = self.parents[(result.tracking_uri, result.experiment_id)]
        self.children.setdefault(parent, []).append((pipeline, result))

    def finish(self, failed: bool = False) -> list[str]:
        """Tag each parent with its best child and end it; return the summary lines."""
        import mlflow

        client = mlflow.MlflowClient()
        lines = []
        for (uri, _), parent in self.parents.items():
            mlflow.set_tracking_uri(uri)
            done = [(p, r) for p, r in self.children.get(parent, []) if r.primary is not None]
            if done:
                pipeline, best = (max if done[0][0].higher_is_better else min)(done, key=lambda pr: pr[1].primary)
                client.set_tag(parent, "mmp.best_run_id", best.run_id)
                client.set_tag(parent, "mmp.best_metric", best.primary_key)
                client.log_metric(parent, f"best_{best.primary_key}", best.primary)
                lines.append(f"sweep {parent}: {len(done)} runs; best {best.run_id} ({best.primary_key} {best.primary:.4g})")
            client.set_terminated(parent, "FAILED" if failed else "FINISHED")
        return lines

