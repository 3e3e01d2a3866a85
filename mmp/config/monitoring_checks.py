"""`monitoring:` (drift thresholds) beyond its types: each warn limit at most its alert limit, and
per-feature limits only for the model's features (named in the recipe, else found in the data)."""

from __future__ import annotations

from typing import Any, Callable

from mmp.errors import Problem, allowed_text

Origin = Callable[[str], "str | None"]
PROFILED_TASKS = ("classification", "regression", "clustering")  # the tasks whose models carry a drift profile


def _no_origin(path: str) -> None:
    return None


def monitoring_problems(config: dict[str, Any], origin: Origin = _no_origin) -> list[Problem]:
    """Warn above alert anywhere in `monitoring:`; `monitoring.features` names that the recipe's
    `data.features` list does not hold (when it lists them)."""
    monitoring = config.get("monitoring")
    if not isinstance(monitoring, dict):
        return []
    problems = []
    limits = [(key, monitoring.get(key)) for key in ("data_drift", "prediction_drift")]
    features = monitoring.get("features") if isinstance(monitoring.get("features"), dict) else {}
    limits += [(f"features.{name}", value) for name, value in features.items()]
    for key, value in limits:
        if not isinstance(value, dict):
            continue
        warn, alert = value.get("warn", 0.1), value.get("alert", 0.25)
        if isinstance(warn, (int, float)) and isinstance(alert, (int, float)) and warn > alert:
            path = f"monitoring.{key}"
            problems.append(Problem(path, f"warn ({warn:g}) is above alert ({alert:g})",
                                    "warn must be at most alert (defaults: warn 0.1, alert 0.25)", origin(path)))
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    if config.get("task") in PROFILED_TASKS and isinstance(data.get("features"), list):
        problems += feature_problems(features, [str(f) for f in data["features"]], origin)
    return problems


def feature_problems(limits: dict[str, Any], features: list[str], origin: Origin = _no_origin) -> list[Problem]:
    """A Problem for each `monitoring.features` name that is not one of the model's `features`."""
    problems = []
    for name in limits:
        if name not in features:
            path = f"monitoring.features.{name}"
            problems.append(Problem(path, f"'{name}' is not one of the model's features",
                                    allowed_text(features, name), origin(path)))
    return problems
