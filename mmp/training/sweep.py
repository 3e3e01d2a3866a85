"""Sweeps (`mmp train -m ...`): every job is a child run of one parent run per experiment, and the
parent is tagged with the best child by the recipe's primary metric.

The parent is tagged `mmp.sweeper` with Hydra's sweeper (basic, optuna). mmp's Optuna sweeper
(hydra_plugins/mmp_optuna_sweeper) gives each job its trial number in MMP_TRIAL_NUMBER (tagged on
the child run) and leaves `search_space.yaml` and `optimization_results.yaml` in the sweep dir,
which are logged on the parent under `sweep/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Written by hydra_plugins/mmp_optuna_sweeper/sweeper.py.
TRIAL_VAR = "MMP_TRIAL_NUMBER"
SWEEP_FILES = ("search_space.yaml", "optimization_results.yaml")


@dataclass
class Sweep:
    """The parent runs of one sweep and the results of its jobs (Hydra's basic launcher runs them here)."""

    parents: dict[tuple[str, str], str] = field(default_factory=dict)
    children: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    sweep_dir: Path | None = None
    trial_tagged: set[str] = field(default_factory=set)  # child runs tagged with their trial number
    run_opened: bool = False  # the running job got as far as opening its child run

    def describe_job(self) -> str:
        """`#2: model.params.C=10` for the running Hydra job."""
        from hydra.core.hydra_config import HydraConfig

        job = HydraConfig.get().job
        return f"#{job.num}: {' '.join(HydraConfig.get().overrides.task)}"

    def parent_for(self, pipeline: Any, experiment_id: str) -> str:
        """The parent run of this sweep in the job's experiment, created on first use."""
        import mlflow
        from hydra.core.hydra_config import HydraConfig

        self.run_opened = True
        key = (mlflow.get_tracking_uri(), experiment_id)
        if key not in self.parents:
            hydra = HydraConfig.get()
            client = mlflow.MlflowClient()
            run = client.create_run(
                experiment_id, run_name=f"{pipeline.spec.name}-sweep",
                tags={"mmp.sweep": "parent", "mmp.recipe": pipeline.recipe, "mmp.primary_metric": pipeline.primary_metric,
                      "mmp.sweeper": str(hydra.runtime.choices.get("hydra/sweeper", "basic"))},
            )
            self.parents[key] = run.info.run_id
            self.sweep_dir = Path(str(hydra.sweep.dir))
            self._log_sweep_files(client, run.info.run_id, SWEEP_FILES[:1])
        return self.parents[key]

    def tag_trial(self) -> None:
        """Tag the job's child run, finished or failed, with its Optuna trial number (when it has one)."""
        import mlflow
        from hydra.core.hydra_config import HydraConfig

        opened, self.run_opened = self.run_opened, False
        number = HydraConfig.get().job.env_set.get(TRIAL_VAR) if HydraConfig.initialized() else None
        if not opened or number is None:
            return
        run = mlflow.last_active_run()  # the job's child run, unless it failed before its run started
        if run is None or run.info.run_id in self.trial_tagged \
                or run.data.tags.get("mlflow.parentRunId") not in self.parents.values():
            return
        mlflow.MlflowClient().set_tag(run.info.run_id, "mmp.trial_number", str(number))
        self.trial_tagged.add(run.info.run_id)

    def _log_sweep_files(self, client: Any, run_id: str, names: tuple[str, ...]) -> None:
        for name in names:
            if self.sweep_dir is not None and (self.sweep_dir / name).is_file():
                client.log_artifact(run_id, str(self.sweep_dir / name), "sweep")

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
            self._log_sweep_files(client, parent, SWEEP_FILES[1:])
            client.set_terminated(parent, "FAILED" if failed else "FINISHED")
        return lines

