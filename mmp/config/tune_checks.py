"""Check a recipe's `tune:` section before any trial runs: every search-space problem at once.

Each tuned parameter must be a real parameter of the model class, its range must make sense to
Optuna (low < high, log needs low > 0, step fits the range) and every value the search can pick
must pass the same constructor check as `model.params` (a bound the constructor rejects is
reported here, not in trial 7). The metric, folds, split and shared storage are checked too.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from mmp.config.catalogue import DEFAULT_METRICS, METRICS
from mmp.config.class_facts import ClassFacts
from mmp.config.estimators import check_params, parameter_names
from mmp.errors import Problem, allowed_text

Origin = Callable[[str], "str | None"]

PARAM_TYPES = ("int", "float", "categorical")
# What each type may say besides `type` (Optuna's suggest_int / suggest_float / suggest_categorical).
TYPE_KEYS = {"int": {"low", "high", "step", "log"}, "float": {"low", "high", "step", "log"},
             "categorical": {"choices"}}
# SQLAlchemy dialects Optuna's RDBStorage runs on, and the module each needs.
STORAGE_DRIVERS = {"sqlite": "sqlite3", "postgresql": "psycopg", "postgresql+psycopg": "psycopg",
                   "postgresql+psycopg2": "psycopg2", "mysql+pymysql": "pymysql", "mysql": "MySQLdb"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def tune_problems(config: dict[str, Any], task: str | None, model_class: ClassFacts | None,
                  origin: Origin) -> list[Problem]:
    """Every problem with the recipe's `tune` section (the schema has checked its types)."""
    tune = config.get("tune")
    if not isinstance(tune, dict):
        return []
    enabled = tune.get("n_trials") is not None or tune.get("timeout") is not None
    params = tune.get("params") if isinstance(tune.get("params"), dict) else {}
    problems = []
    for name, space in params.items():
        if isinstance(space, dict):
            problems += _space_problems(f"tune.params.{name}", name, space, model_class, origin)
    if not enabled:
        return problems  # a search space kept for later (a model preset's) is checked, nothing runs
    if not params:
        problems.append(Problem("tune.params", "tuning is on (n_trials or timeout is set) but there is nothing to search",
                                "add tune.params.NAME: {type: float, low: ..., high: ...} or pick a model preset "
                                "with a default search space (model=NAME, see 'mmp list models')", origin("tune.params")))
    problems += _setting_problems(config, tune, task, origin)
    return problems


def _space_problems(path: str, name: str, space: dict[str, Any], model_class: ClassFacts | None,
                    origin: Origin) -> list[Problem]:
    kind = space.get("type")
    if kind not in PARAM_TYPES:
        return []  # the schema reports a missing or unknown type
    problems = []
    given = {k for k, v in space.items() if k != "type" and v not in (None, False)}
    for key in sorted(given - TYPE_KEYS[kind]):
        problems.append(Problem(f"{path}.{key}", f"'{key}' does not apply to a {kind} parameter",
                                f"a {kind} parameter takes: {', '.join(sorted(TYPE_KEYS[kind]))}", origin(path)))
    values = _categorical_problems(path, space, origin, problems) if kind == "categorical" \
        else _range_problems(path, kind, space, origin, problems)
    if model_class is not None:
        problems += _constructor_problems(path, name, values, model_class, origin)
    return problems


def _categorical_problems(path: str, space: dict, origin: Origin, problems: list) -> list[tuple[str, Any]]:
    choices = space.get("choices")
    if not isinstance(choices, list) or not choices:
        problems.append(Problem(f"{path}.choices", "a categorical parameter needs a non-empty list of choices",
                                "e.g. choices: [l1, l2]", origin(path)))
        return []
    out = []
    for i, choice in enumerate(choices):
        if choice is not None and not isinstance(choice, (bool, int, float, str)):
            problems.append(Problem(f"{path}.choices.{i}", f"{choice!r} is a {type(choice).__name__}",
                                    "Optuna's choices are null, booleans, numbers or strings", origin(path)))
        elif any(type(c) is type(choice) and c == choice for c in choices[:i]):
            problems.append(Problem(f"{path}.choices.{i}", f"{choice!r} is listed twice", "list each choice once", origin(path)))
        else:
            out.append((f"{path}.choices.{i}", choice))
    return out


def _range_problems(path: str, kind: str, space: dict, origin: Origin, problems: list) -> list[tuple[str, Any]]:
    low, high, step, log = space.get("low"), space.get("high"), space.get("step"), bool(space.get("log"))
    wanted = "an integer" if kind == "int" else "a number"
    ok = True
    for key, value in (("low", low), ("high", high)):
        if value is None:
            problems.append(Problem(f"{path}.{key}", f"a {kind} parameter needs '{key}'", f"give {wanted}", origin(path)))
            ok = False
        elif not _number(value) or (kind == "int" and not float(value).is_integer()):
            problems.append(Problem(f"{path}.{key}", f"{value!r} is not {wanted}", None, origin(path)))
            ok = False
    if not ok:
        return []
    before = len(problems)
    if low >= high:
        problems.append(Problem(path, f"low {low} is not below high {high}", "a range needs low < high (a fixed value "
                                "belongs in model.params)", origin(path)))
        return []
    if log and low <= 0:
        problems.append(Problem(f"{path}.low", f"a log scale needs low > 0, got {low}",
                                "raise low (e.g. 1e-4) or set log: false", origin(path)))
    if step is not None:
        if log:
            problems.append(Problem(f"{path}.step", "a log-scaled range cannot have a step", "drop step or log",
                                    origin(path)))
        elif not _number(step) or step <= 0 or (kind == "int" and not float(step).is_integer()):
            problems.append(Problem(f"{path}.step", f"{step!r} is not a positive {'integer' if kind == 'int' else 'number'}",
                                    None, origin(path)))
        elif step > high - low:
            problems.append(Problem(f"{path}.step", f"step {step} is larger than the range {low}..{high}",
                                    "use a step no larger than high - low", origin(path)))
    if len(problems) > before:
        return []  # the range itself is wrong: checking its bounds against the constructor adds noise
    cast = int if kind == "int" else float
    return [(f"{path}.low", cast(low)), (f"{path}.high", cast(high))]


def _constructor_problems(path: str, name: str, values: list[tuple[str, Any]], model_class: ClassFacts,
                          origin: Origin) -> list[Problem]:
    """The model class must take `name`, and accept every bound or choice the search can give it."""
    names, open_ended = parameter_names(model_class)
    if name not in names:  # check_params says so with a did-you-mean, unless **kwargs may take it
        naming = check_params(model_class, {name: None}, "tune.params", origin)
        if naming or not open_ended:
            return naming[:1] or [Problem(path, f"'{name}' is not a parameter of {model_class.name}",
                                          allowed_text(names, name), origin(path))]
    problems = []
    for value_path, value in values:
        for problem in check_params(model_class, {name: value}, "tune.params", origin):
            problems.append(Problem(value_path, problem.message, problem.allowed, origin(path)))
    return problems


def _setting_problems(config: dict, tune: dict, task: str | None, origin: Origin) -> list[Problem]:
    problems = []
    if task in ("clustering",):
        problems.append(Problem("tune", "tuning scores trials against a target; the task is clustering",
                                "remove tune.n_trials / tune.timeout, or sweep with 'mmp train -m'", origin("tune")))
        return problems
    if task in ("timeseries", "causal"):
        problems.append(Problem("tune", f"tuning a {task} model is not supported yet",
                                "remove tune.n_trials / tune.timeout, or sweep its params with 'mmp train -m'",
                                origin("tune")))
        return problems
    if config.get("quantiles"):
        problems.append(Problem("tune", "tuning a quantile regression is not supported yet",
                                "tune the point model in one recipe, then fit its quantiles with the best params",
                                origin("tune")))
    metric = tune.get("metric")
    evaluate = config.get("evaluate") if isinstance(config.get("evaluate"), dict) else {}
    if task in METRICS:
        if isinstance(metric, str) and metric not in METRICS[task]:
            problems.append(Problem("tune.metric", f"'{metric}' is not a {task} metric",
                                    allowed_text(METRICS[task], metric), origin("tune.metric")))
        name = metric if isinstance(metric, str) else evaluate.get("primary_metric") or \
            (evaluate.get("metrics") or DEFAULT_METRICS[task])[0]
        direction = tune.get("direction")
        info = METRICS[task].get(name)
        if info is not None and direction is not None and (direction == "maximize") != info.greater_is_better:
            better = "higher" if info.greater_is_better else "lower"
            problems.append(Problem("tune.direction", f"'{direction}' contradicts {name}, which is better {better}",
                                    "remove tune.direction: it follows the metric", origin("tune.direction")))
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    split = data.get("split") if isinstance(data.get("split"), dict) else {}
    cv = tune.get("cv")
    if cv is not None:
        if _number(cv) and cv < 2:
            problems.append(Problem("tune.cv", f"{cv} fold(s) cannot cross-validate", "allowed: an integer >= 2, or null "
                                    "to score on the validation split", origin("tune.cv")))
        if split.get("strategy") == "temporal":
            problems.append(Problem("tune.cv", "k-fold cross-validation mixes past and future rows of a temporal split",
                                    "score on the validation split (tune.cv: null)", origin("tune.cv")))
    elif split.get("validation", 0.15) == 0:
        problems.append(Problem("tune", "trials are scored on the validation split, which is empty (data.split.validation: 0)",
                                "give validation rows or cross-validate on train with tune.cv: 5", origin("data.split.validation")))
    problems += _storage_problems(tune, origin)
    return problems


def _storage_problems(tune: dict, origin: Origin) -> list[Problem]:
    import importlib.util

    storage, study = tune.get("storage"), tune.get("study")
    if study is not None and storage is None:
        return [Problem("tune.study", "a study name picks a study in a shared storage, but tune.storage is not set",
                        "set tune.storage (e.g. sqlite:///optuna.db or postgresql://...) or remove tune.study",
                        origin("tune.study"))]
    if not isinstance(storage, str):
        return []
    match = re.match(r"^([A-Za-z0-9+]+)://", storage)
    dialect = match.group(1).lower() if match else None
    if dialect not in STORAGE_DRIVERS:
        from mmp.masking import scrub

        return [Problem("tune.storage", f"{scrub(storage)!r} is not a database URL Optuna can share a study in",
                        f"allowed schemes: {', '.join(STORAGE_DRIVERS)}", origin("tune.storage"))]
    module = STORAGE_DRIVERS[dialect]
    if importlib.util.find_spec(module) is None:
        return [Problem("tune.storage", f"the {dialect} driver ({module}) is not installed",
                        "install it with: pip install 'mmp[sql-extras]'" if module == "psycopg" else f"pip install {module}",
                        origin("tune.storage"))]
    return []
