"""A finished study on its MLflow parent run: best params and value, the trial table, and
Optuna's own plots (optimisation history, parameter importances, intermediate values)."""

from __future__ import annotations

import json
import time
import warnings
from typing import Any


def trial_table(trials: list) -> str:
    """Every trial as CSV: number, state, value, duration, params, and why it failed or was pruned."""
    import csv
    import io

    names = sorted({name for t in trials for name in t.params})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["number", "state", "value", "seconds", *names, "last_step", "error"])
    for t in sorted(trials, key=lambda t: t.number):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else ""
        last_step = max(t.intermediate_values) if t.intermediate_values else ""
        writer.writerow([t.number, t.state.name, "" if t.value is None else t.value, seconds,
                         *[t.params.get(n, "") for n in names], last_step, t.user_attrs.get("error", "")])
    return out.getvalue()


def log_study(client: Any, run_id: str, study: Any, trials: list, best: Any, scored_on: str) -> None:
    """Log the study's outcome to the parent run (params `tune.best.*`, metrics `tune_*`, artifacts under tune/)."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    states = [t.state.name for t in trials]
    metrics = [Metric(f"tune_best_{scored_on}", float(best.value), now, 0)]
    metrics += [Metric(f"tune_trials_{s.lower()}", float(states.count(s)), now, 0) for s in ("COMPLETE", "PRUNED", "FAIL")]
    params = [Param(f"tune.best.{k}", str(v)[:6000]) for k, v in best.params.items()]
    tags = [RunTag("mmp.tune_best_trial", str(best.number)), RunTag("mmp.tune_trials", str(len(trials)))]
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    client.log_text(run_id, trial_table(trials), "tune/trials.csv")
    client.log_text(run_id, json.dumps({"study": study.study_name, "direction": study.direction.name.lower(),
                                        "metric": scored_on, "best_trial": best.number, "best_value": best.value,
                                        "best_params": best.params}, indent=2, default=str), "tune/best.json")
    from mmp.training.plots import close

    for name, figure in _figures(study):
        client.log_figure(run_id, figure, f"plots/tune_{name}.png")
        close(figure)


def _figures(study: Any):
    """Optuna's matplotlib plots that the study has data for."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as ovm

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    plots = [("optimization_history", ovm.plot_optimization_history)]
    if len(complete) >= 2 and len({k for t in complete for k in t.params}) >= 1:
        plots.append(("param_importances", ovm.plot_param_importances))
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        plots.append(("intermediate_values", ovm.plot_intermediate_values))
    for name, plot in plots:
        with warnings.catch_warnings():  # Optuna marks its matplotlib backend experimental
            warnings.simplefilter("ignore")
            try:
                axes = plot(study)
            except (ValueError, RuntimeError):  # e.g. importances when every trial drew the same values
                continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        yield name, figure
