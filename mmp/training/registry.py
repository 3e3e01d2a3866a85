"""The model lifecycle in the MLflow registry: `mmp promote` (register a run's model, gate it
against the alias's current holder, move the alias) and `mmp models` (what is registered)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from mmp.config.catalogue import METRICS
from mmp.config.spec import EnvSpec, PromotionGateSpec
from mmp.errors import UserError

FORCED_TAG = "mmp.promoted_with_force"  # a version tag: its promotion skipped the gate
TEST_FINGERPRINT_TAG = "mmp.test_fingerprint"


@dataclass
class Promotion:
    """What `mmp promote` did."""

    name: str
    name_from: str
    version: str
    alias: str
    registered: bool
    previous: str | None  # the version that held the alias before, if any
    gate: str  # one line on what the gate said

    def lines(self) -> list[str]:
        registered = "registered now" if self.registered else "already registered"
        was = f"before: version {self.previous}" if self.previous else "no version held it before"
        return [f"model name: {self.name} ({self.name_from})",
                f"version {self.version} of {self.name} ({registered})",
                f"gate: {self.gate}",
                f"alias {self.alias} -> {self.name} version {self.version} ({was})"]


def promote_command(request: Any, run_id: str, alias: str, name: str | None, force: bool) -> str:
    """`mmp promote`: compose the env, connect to its tracking store, promote; returns what to print."""
    from mmp.config.env import compose_env
    from mmp.io import tracking

    env = compose_env(request, prog="mmp promote")
    tracking.connect(env.mlflow.tracking_uri)
    return "\n".join(promote(env, run_id, alias, name, force).lines())


def promote(env: EnvSpec, run_id: str, alias: str, name: str | None = None, force: bool = False) -> Promotion:
    """Register `runs:/<run_id>/model` under the model name (if not yet) and point `alias` at it,
    unless the env's gate refuses (UserError naming both numbers)."""
    import mlflow

    client = mlflow.MlflowClient()
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", alias) or re.fullmatch(r"v\d+", alias):
        raise UserError(f"--alias: '{alias}' is not a valid alias; use letters, digits, - and _ "
                        "(not v<number>), e.g. champion")
    run = _run(client, run_id)
    name, name_from = _model_name(name, env, run)
    holder = _alias_holder(client, name, alias)
    if holder is not None and holder.run_id == run_id:
        return Promotion(name, name_from, holder.version, alias, False, holder.version,
                         "not needed: this run's version already holds the alias")
    if force:
        gate = "skipped (--force); recorded in the version's tag " + FORCED_TAG
    elif not env.registry.gate.enabled:
        gate = "off (registry.gate.enabled=false)"
    elif holder is None:
        gate = f"passed: no version holds '{alias}' yet"
    else:
        holder_run = _run(client, holder.run_id, f"{name}@{alias} (version {holder.version})'s run")
        gate = check_gate(env.registry.gate, run, holder_run, f"version {holder.version}")
    version, registered = _version_of(client, name, run_id)
    if force:
        client.set_model_version_tag(name, version, FORCED_TAG, f"{alias} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}")
    client.set_registered_model_alias(name, alias, version)
    return Promotion(name, name_from, version, alias, registered, holder.version if holder else None, gate)


def check_gate(gate: PromotionGateSpec, candidate: Any, holder: Any, holder_label: str) -> str:
    """The gate's verdict as one line, or a UserError naming both runs' numbers (or fingerprints)."""
    if gate.same_test_data:
        mine, theirs = (r.data.tags.get(TEST_FINGERPRINT_TAG) for r in (candidate, holder))
        if mine is None or mine != theirs:
            raise UserError(
                f"registry.gate.same_test_data: run {candidate.info.run_id} was tested on rows with fingerprint "
                f"{mine or '(none)'}, the alias holder ({holder_label}, run {holder.info.run_id}) on {theirs or '(none)'}; "
                "their metrics are not comparable. Retrain on the same data and split, set "
                "registry.gate.same_test_data=false, or pass --force")
    metric = gate.metric or candidate.data.tags.get("mmp.primary_metric")
    if not metric:
        raise UserError(f"registry.gate.metric: run {candidate.info.run_id} has no mmp.primary_metric tag; "
                        "name the metric to compare, e.g. registry.gate.metric=accuracy")
    task = candidate.data.tags.get("mmp.task", "")
    bare = metric.split("_", 1)[1] if metric.startswith(("test_", "validation_")) else metric
    known = METRICS.get(task, {})
    if bare not in known:
        raise UserError(f"registry.gate.metric: '{metric}' is not a metric of task '{task}'; "
                        f"allowed: {', '.join(known) or '(none)'}")
    key = metric if metric != bare else f"test_{metric}"
    new, old = candidate.data.metrics.get(key), holder.data.metrics.get(key)
    if new is None or old is None:
        missing = candidate if new is None else holder
        raise UserError(f"registry.gate.metric: run {missing.info.run_id} has no metric {key}; "
                        "pick a metric both runs logged (registry.gate.metric) or pass --force")
    higher = known[bare].greater_is_better
    gain = new - old if higher else old - new
    direction = "higher" if higher else "lower"
    if gain <= 0 or gain < gate.min_improvement:
        need = f" by at least {gate.min_improvement:g}" if gate.min_improvement else ""
        raise UserError(f"registry.gate: candidate run {candidate.info.run_id} has {key} {new:.6g}, the alias holder "
                        f"({holder_label}, run {holder.info.run_id}) has {old:.6g}; {direction} is better and the "
                        f"candidate must beat it{need}. Not promoted (--force skips the gate)")
    return f"passed: {key} {new:.6g} vs {old:.6g} ({holder_label}; {direction} is better)"


def _run(client: Any, run_id: str, what: str = "--run-id") -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        import mlflow

        hint = "" if what == "--run-id" else "; pass --force to promote without the gate"
        raise UserError(f"{what}: no run '{run_id}' at tracking URI {mlflow.get_tracking_uri()}{hint}") from exc


def _model_name(name: str | None, env: EnvSpec, run: Any) -> tuple[str, str]:
    """(name, where it came from): --name, else mlflow.registered_model_name, else the recipe's name."""
    if name:
        return name, "--name"
    if env.mlflow.registered_model_name:
        return env.mlflow.registered_model_name, "mlflow.registered_model_name"
    recipe = run.data.params.get("name") or run.data.tags.get("mmp.recipe", "")
    recipe = re.sub(r"[^A-Za-z0-9_.-]+", "-", recipe).strip("-")
    if not recipe:
        raise UserError(f"run {run.info.run_id} names no recipe: pass --name NAME or set mlflow.registered_model_name")
    return recipe, "the run's recipe name; --name or mlflow.registered_model_name choose another"


def _alias_holder(client: Any, name: str, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:  # no such model or no such alias yet
        return None


def _version_of(client: Any, name: str, run_id: str) -> tuple[str, bool]:
    """(version, whether it was registered now) of the run's model under `name`."""
    import mlflow
    from mlflow.exceptions import MlflowException

    for version in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
        return str(version.version), False
    try:
        return str(mlflow.register_model(f"runs:/{run_id}/model", name).version), True
    except MlflowException as exc:  # a run without a model (a sweep's or a study's parent)
        raise UserError(f"--run-id: run {run_id} has no model to register at runs:/{run_id}/model "
                        f"({str(exc).strip().splitlines()[0]})") from exc


def models_command(request: Any, name: str | None) -> str:
    """`mmp models`: compose the env, connect, and list what is registered; returns the table to print."""
    from mmp.config.env import compose_env
    from mmp.io import tracking

    env = compose_env(request, prog="mmp models")
    tracking.connect(env.mlflow.tracking_uri)
    return "\n".join(model_table(name))


def model_table(name: str | None = None) -> list[str]:
    """One row per registered version: model, version, aliases, run id, created, primary test metric."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from mmp.masking import scrub

    client = mlflow.MlflowClient()
    models = _all(client.search_registered_models)
    if name is not None:
        if not any(m.name == name for m in models):
            known = ", ".join(sorted(m.name for m in models)) or "(none)"
            raise UserError(f"--name: no registered model '{name}' at tracking URI "
                            f"{scrub(mlflow.get_tracking_uri())}; registered models: {known}")
        models = [m for m in models if m.name == name]
    if not models:
        return [f"no registered models at {scrub(mlflow.get_tracking_uri())}; register one with "
                "`mmp promote --run-id ID --alias champion` or set mlflow.registered_model_name when training"]
    rows = [("MODEL", "VERSION", "ALIASES", "RUN ID", "CREATED", "TEST METRIC")]
    for model in sorted(models, key=lambda m: m.name):
        aliases: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        versions = _all(client.search_model_versions, filter_string=f"name = '{model.name}'")
        for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
            metric = "-"
            try:
                run = client.get_run(version.run_id) if version.run_id else None
            except MlflowException:  # the run was deleted: the version stays listed
                run = None
            if run is not None:
                primary = run.data.tags.get("mmp.primary_metric")
                value = run.data.metrics.get(f"test_{primary}")
                metric = f"test_{primary} {value:.4g}" if value is not None else "-"
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(version.creation_timestamp / 1000))
            rows.append((model.name, str(version.version), ",".join(sorted(aliases.get(str(version.version), []))) or "-",
                         version.run_id or "-", created, metric))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _all(search: Any, **query: Any) -> list:
    """Every page of an MLflow search."""
    found, token = [], None
    while True:
        page = search(page_token=token, **query)
        found += list(page)
        token = page.token
        if not token:
            return found
