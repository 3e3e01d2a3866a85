"""Check a whole resolved config at once, before any work starts.

Every problem is collected before anything is raised (as torchtune's `tune validate` does), so
a user fixes a recipe in one round: schema problems from the typed spec, then what only code
can check: the model class imports, its params are real, it suits the task, metrics and steps
exist, split ratios add up, and (with data at hand) that every named column is there.
"""

from __future__ import annotations

from typing import Any, Callable

from mmp.config.catalogue import METRICS, STEPS, step_options
from mmp.config.class_facts import ClassFacts
from mmp.config.estimators import KIND_FOR_TASK, ImportProblem, check_params, class_facts
from mmp.config.monitoring_checks import monitoring_problems
from mmp.config.spec import TASKS, RunSpec
from mmp.config.sql_checks import sql_problems
from mmp.config.tune_checks import tune_problems
from mmp.errors import ConfigError, Problem, allowed_text

Origin = Callable[[str], "str | None"]


def _no_origin(path: str) -> None:
    return None


def schema_problems(config: dict[str, Any], origin: Origin = _no_origin, spec: type = RunSpec) -> list[Problem]:
    """The typed spec's complaints about `config`, one Problem per field."""
    from pydantic import ValidationError

    try:
        spec.model_validate(config)
    except ValidationError as exc:
        return [_problem_from_pydantic(err, config, spec, origin) for err in exc.errors()]
    return []


def _problem_from_pydantic(err: dict, config: dict, spec: type, origin: Origin) -> Problem:
    path = ".".join(str(p) for p in err["loc"])
    kind, given = err["type"], err.get("input")
    if kind == "extra_forbidden" and len(err["loc"]) == 1 and err["loc"][0] in ("env", "recipe"):
        group = err["loc"][0]
        return Problem(path, f"the {group} file's keys landed under '{group}:' instead of the root",
                       "make '# @package _global_' the first line of that file", origin(path))
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        return Problem(path, f"unknown key '{key}'", allowed_text(_allowed_keys(spec, err["loc"][:-1]), key), origin(path))
    if kind == "missing":
        return Problem(path, "required key is missing", None, origin(path))
    if kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        return Problem(path, f"{given!r} is not allowed", f"allowed: {allowed}", origin(path))
    return Problem(path, f"{err['msg'].lower()}, got {type(given).__name__} {given!r}", None, origin(path))


def _allowed_keys(spec: type, loc: tuple) -> list[str]:
    """The field names of the model found at `loc` inside `spec`."""
    import typing

    from pydantic import BaseModel

    model = spec
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        candidates += [a for c in candidates for a in typing.get_args(c)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def recipe_problems(config: dict[str, Any], origin: Origin = _no_origin) -> list[Problem]:
    """What the schema cannot see: model class, params, task fit, metrics, steps, split ratios."""
    problems: list[Problem] = []
    task = config.get("task") if config.get("task") in TASKS else None
    problems += _model_problems(config.get("model"), task, origin)
    problems += _metric_problems(config.get("evaluate"), task, origin)
    problems += _step_problems(config.get("preprocess"), origin)
    problems += _data_problems(config.get("data"), task, origin)
    problems += sql_problems(config, origin)
    problems += _calibration_problems(config, task, origin)
    problems += _quantile_problems(config, task, origin)
    problems += tune_problems(config, task, _model_class(config), origin)
    problems += _task_section_problems(config, task, origin)
    problems += monitoring_problems(config, origin)
    return problems


# Tasks whose model is not one scikit-learn estimator: each checks its own models and sections.
TASK_CHECKS = {
    "timeseries": "mmp.config.forecast_checks:forecast_problems",
    "causal": "mmp.config.causal_checks:causal_problems",
}


def _task_section_problems(config: dict[str, Any], task: str | None, origin: Origin) -> list[Problem]:
    """A section or key that belongs to another task, then the task's own checks."""
    import importlib

    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    problems = []
    owned = (("forecast", config.get("forecast"), "timeseries"), ("data.time_column", data.get("time_column"), "timeseries"),
             ("data.treatment", data.get("treatment"), "causal"), ("data.control", data.get("control"), "causal"))
    for path, value, owner in owned:
        if task and value is not None and task != owner:
            problems.append(Problem(path, f"'{path}' belongs to {owner} recipes; the task is {task}",
                                    f"remove it, or set task: {owner}", origin(path)))
    if task in TASK_CHECKS:
        module, name = TASK_CHECKS[task].split(":")
        problems += getattr(importlib.import_module(module), name)(config, origin)
    return problems


def _model_problems(model: Any, task: str | None, origin: Origin) -> list[Problem]:
    if not isinstance(model, dict) or not isinstance(model.get("class_path"), str):
        return []  # the schema reports it
    path = "model.class_path"
    try:
        facts = class_facts(model["class_path"])
    except ImportProblem as exc:
        return [Problem(path, str(exc), None, origin(path))]
    problems = []
    params = model.get("params") or {}
    if isinstance(params, dict):
        problems += check_params(facts, params, "model.params", origin)
    if task in TASK_CHECKS:
        return problems  # the task's own checks say which classes it takes
    kind = facts.kind
    if task and kind and kind != KIND_FOR_TASK[task]:
        problems.append(Problem(
            path, f"{facts.name} is {_a(kind)} but the task is {task}",
            f"use a {KIND_FOR_TASK[task]} (see 'mmp list models') or change 'task'", origin(path),
        ))
    if task and not (facts.has("fit") and facts.has("predict")):
        problems.append(Problem(path, f"{facts.name} has no fit/predict: a logged model must predict new rows",
                                "use a scikit-learn style estimator with predict (see 'mmp list models')", origin(path)))
    return problems


def _a(kind: str) -> str:
    """'a classifier', 'an outlier detector'."""
    words = kind.replace("_", " ")
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def _metric_problems(evaluate: Any, task: str | None, origin: Origin) -> list[Problem]:
    if not task or not isinstance(evaluate, dict):
        return []
    known = METRICS[task]
    problems = []
    metrics = evaluate.get("metrics")
    for i, name in enumerate(metrics if isinstance(metrics, list) else []):
        if isinstance(name, str) and name not in known:
            path = f"evaluate.metrics.{i}"
            problems.append(Problem(path, f"'{name}' is not a {task} metric", allowed_text(known, name), origin(path)))
    primary = evaluate.get("primary_metric")
    if isinstance(primary, str):
        allowed = [m for m in metrics if isinstance(m, str)] if isinstance(metrics, list) and metrics else list(known)
        if primary not in allowed:
            path = "evaluate.primary_metric"
            problems.append(Problem(path, f"'{primary}' is not among the evaluated metrics", allowed_text(allowed, primary), origin(path)))
    return problems


def _step_problems(steps: Any, origin: Origin) -> list[Problem]:
    if not isinstance(steps, list):
        return []
    problems = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("type"), str):
            continue  # the schema reports it
        path = f"preprocess.{i}"
        name = step["type"]
        if name not in STEPS:
            problems.append(Problem(f"{path}.type", f"unknown step type '{name}'", allowed_text(STEPS, name), origin(path)))
            continue
        options = {k: v for k, v in step.items() if k not in ("type", "columns")}
        try:
            facts = class_facts(STEPS[name].class_path)
        except ImportProblem as exc:  # pragma: no cover - scikit-learn is a base dependency
            problems.append(Problem(f"{path}.type", str(exc), None, origin(path)))
            continue
        problems += check_params(facts, step_options(STEPS[name], options), path, origin)
    return problems


def _data_problems(data: Any, task: str | None, origin: Origin) -> list[Problem]:
    if not isinstance(data, dict):
        return []
    problems = []
    split = data.get("split") if isinstance(data.get("split"), dict) else {}
    named = (("train", 0.7), ("calibration", 0.0), ("validation", 0.15), ("test", 0.15))
    ratios = {k: split.get(k, d) for k, d in named if k != "calibration" or split.get("calibration")}
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in ratios.values()):
        for key, value in ratios.items():
            may_be_zero = key in ("validation", "calibration")
            if not ((value >= 0 if may_be_zero else value > 0) and value < 1):
                path = f"data.split.{key}"
                interval = "[0, 1)" if may_be_zero else "(0, 1)"
                problems.append(Problem(path, f"ratio {value} is outside {interval}", None, origin(path)))
        total = sum(ratios.values())
        if abs(total - 1.0) > 1e-6:
            problems.append(Problem(
                "data.split", f"{' + '.join(ratios)} = {total:g}", "the ratios must add up to 1", origin("data.split"),
            ))
    strategy = split.get("strategy")
    if strategy == "temporal" and not split.get("time_column") and task != "timeseries":  # series: data.time_column
        problems.append(Problem("data.split.time_column", "a temporal split needs the column to sort by", None, origin("data.split")))
    if strategy == "stratified" and task and task != "classification":
        problems.append(Problem("data.split.strategy", f"stratified splits need class labels; the task is {task}",
                                "use random or temporal", origin("data.split.strategy")))
    target = data.get("target")
    if task in ("classification", "regression", "timeseries", "causal") and not target:
        problems.append(Problem("data.target", f"a {task} recipe needs a target column", None, origin("data.target")))
    if task == "clustering" and target:  # it would be read, then never used: say so instead
        problems.append(Problem("data.target", "clustering learns without a target; remove data.target (or set it to null)",
                                None, origin("data.target")))
    features = data.get("features") if isinstance(data.get("features"), list) else []
    entities = data.get("entity_columns") if isinstance(data.get("entity_columns"), list) else []
    if target and target in features:
        problems.append(Problem("data.features", f"the target '{target}' is also listed as a feature", None, origin("data.features")))
    for column in sorted(set(entities) & set(features)):
        problems.append(Problem("data.features", f"entity column '{column}' is also listed as a feature", None, origin("data.features")))
    return problems


def _model_class(config: dict[str, Any]) -> ClassFacts | None:
    """The recipe's model class (as the checks see it), or None when it does not import (`_model_problems` says why)."""
    model = config.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("class_path"), str):
        return None
    try:
        return class_facts(model["class_path"])
    except ImportProblem:
        return None


def _calibration_problems(config: dict[str, Any], task: str | None, origin: Origin) -> list[Problem]:
    """Calibration suits classifiers only, and needs either held-out rows or cross-validation, not both."""
    calibration = config.get("calibration")
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    split = data.get("split") if isinstance(data.get("split"), dict) else {}
    held_out = split.get("calibration") or 0
    held_out = held_out if isinstance(held_out, (int, float)) and not isinstance(held_out, bool) else 0
    if calibration is None:
        if held_out > 0:
            path = "data.split.calibration"
            return [Problem(path, f"{held_out:g} of the rows are held out for calibration, but the recipe has no "
                            "'calibration' section", "add calibration: {method: sigmoid} or set data.split.calibration: 0",
                            origin(path))]
        return []
    if not isinstance(calibration, dict):
        return []  # the schema reports it
    problems = []
    if task and task != "classification":
        problems.append(Problem("calibration", f"calibration applies to classifier probabilities; the task is {task}",
                                "remove 'calibration' (or set it to null)", origin("calibration")))
        return problems
    cv = calibration.get("cv")
    if isinstance(cv, int) and not isinstance(cv, bool):
        if cv < 2:
            problems.append(Problem("calibration.cv", f"{cv} fold{'s' if cv != 1 else ''} cannot cross-validate",
                                    "allowed: an integer >= 2, or null to use the data.split.calibration rows",
                                    origin("calibration.cv")))
        elif held_out > 0:
            problems.append(Problem("calibration.cv", f"calibration.cv: {cv} and data.split.calibration: {held_out:g} "
                                    "both say where to calibrate", "keep one: k-fold cross-validation on train (cv) or "
                                    "held-out rows (data.split.calibration, with cv: null)", origin("calibration.cv")))
    elif cv is None and held_out <= 0:
        path = "data.split.calibration"
        problems.append(Problem(path, "calibration needs rows it was not trained on",
                                "hold some out of train with data.split.calibration (e.g. 0.15, lowering train to "
                                "match) or cross-validate with calibration.cv (e.g. 5)", origin(path)))
    cls = _model_class(config)
    if cls is not None and not (cls.has("predict_proba") or cls.has("decision_function")):
        path = "model.class_path"
        problems.append(Problem(path, f"{cls.name} has neither predict_proba nor decision_function: nothing to calibrate",
                                "use a classifier that scores its classes", origin(path)))
    return problems


def _quantile_problems(config: dict[str, Any], task: str | None, origin: Origin) -> list[Problem]:
    """Quantiles suit regression only, lie in (0, 1), appear once, and need a model with a quantile loss."""
    from mmp.config.catalogue import QUANTILE_LOSSES, quantile_loss

    quantiles = config.get("quantiles")
    if quantiles is None or not isinstance(quantiles, list):
        return []  # none asked, or the schema reports it
    if task and task != "regression":
        return [Problem("quantiles", f"quantiles apply to regression; the task is {task}",
                        "remove 'quantiles' (or set it to null)", origin("quantiles"))]
    if not quantiles:
        return [Problem("quantiles", "the list is empty", "give at least one quantile, e.g. [0.05, 0.5, 0.95], or null",
                        origin("quantiles"))]
    problems, seen = [], set()
    for i, q in enumerate(quantiles):
        if not isinstance(q, (int, float)) or isinstance(q, bool):
            continue  # the schema reports it
        path = f"quantiles.{i}"
        if not 0 < q < 1:
            problems.append(Problem(path, f"{q} is outside (0, 1)", "a quantile is a probability, e.g. 0.05 or 0.95", origin(path)))
        elif round(q, 6) != q:
            problems.append(Problem(path, f"{q} has more than 6 decimals", "round it, e.g. 0.025", origin(path)))
        elif q in seen:
            problems.append(Problem(path, f"{q:g} is listed twice", "list each quantile once", origin(path)))
        seen.add(q)
    cls = _model_class(config)
    if cls is not None and quantile_loss(cls) is None:
        path = "model.class_path"
        problems.append(Problem(path, f"{cls.name} has no quantile loss, so it cannot fit quantiles",
                                f"allowed with quantiles: {', '.join(QUANTILE_LOSSES)}", origin(path)))
    return problems


def check(config: dict[str, Any], origin: Origin = _no_origin) -> RunSpec:
    """The typed spec for `config`, or a ConfigError listing every problem found."""
    problems = schema_problems(config, origin) + recipe_problems(config, origin)
    if problems:
        raise ConfigError(problems)
    return RunSpec.model_validate(config)
