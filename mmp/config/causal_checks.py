"""Causal (uplift) recipes: which learners mmp trains, what their base learners must be, and the checks.

A causal learner (PyWhy EconML) is built from base learners: outcome regressors, a propensity
classifier, a final CATE regressor. A recipe gives each as a `model.params` value of the same shape
as `model:` itself, `{class_path: ..., params: {...}}`, and mmp instantiates it; a role left out gets
mmp's default (`DEFAULT_BASE`) where EconML has none (or only its slow model search, 'auto').
The treatment holds two arms (0/1) or several (integers or text, `data.control` naming the reference).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from mmp.errors import Problem, allowed_text

Origin = Callable[[str], "str | None"]

# Class path -> what it does, for `mmp list models` and error messages.
CAUSAL_LEARNERS: dict[str, str] = {
    "econml.metalearners.SLearner": "S-learner: one outcome model, treatment as a feature (overall_model)",
    "econml.metalearners.TLearner": "T-learner: an outcome model per arm, effect = their difference (models)",
    "econml.metalearners.XLearner": "X-learner: per-arm outcome models, imputed effects blended by propensity "
                                    "(models, cate_models, propensity_model)",
    "econml.metalearners.DomainAdaptationLearner": "propensity-weighted per-arm outcome models "
                                                   "(models, final_models, propensity_model)",
    "econml.dr.DRLearner": "doubly robust: outcome and propensity nuisances, a final CATE model "
                           "(model_regression, model_propensity, model_final)",
    "econml.dr.LinearDRLearner": "doubly robust, linear CATE with confidence intervals (model_regression, model_propensity)",
    "econml.dr.ForestDRLearner": "doubly robust, causal forest CATE (model_regression, model_propensity)",
    "econml.dml.LinearDML": "double machine learning, linear CATE with confidence intervals (model_y, model_t)",
    "econml.dml.CausalForestDML": "double machine learning, causal forest CATE (model_y, model_t)",
    "econml.dml.NonParamDML": "double machine learning, any regressor as the CATE model; one treated arm only "
                              "(model_y, model_t, model_final)",
}

# Class path -> base-learner parameter -> the kind of estimator it must be.
BASE_ROLES: dict[str, dict[str, str]] = {
    "econml.metalearners.SLearner": {"overall_model": "regressor"},
    "econml.metalearners.TLearner": {"models": "regressor"},
    "econml.metalearners.XLearner": {"models": "regressor", "cate_models": "regressor", "propensity_model": "classifier"},
    "econml.metalearners.DomainAdaptationLearner": {"models": "regressor", "final_models": "regressor",
                                                    "propensity_model": "classifier"},
    "econml.dr.DRLearner": {"model_regression": "regressor", "model_propensity": "classifier", "model_final": "regressor"},
    "econml.dr.LinearDRLearner": {"model_regression": "regressor", "model_propensity": "classifier"},
    "econml.dr.ForestDRLearner": {"model_regression": "regressor", "model_propensity": "classifier"},
    "econml.dml.LinearDML": {"model_y": "regressor", "model_t": "classifier"},
    "econml.dml.CausalForestDML": {"model_y": "regressor", "model_t": "classifier"},
    "econml.dml.NonParamDML": {"model_y": "regressor", "model_t": "classifier", "model_final": "regressor"},
}

# A base learner the recipe leaves out, where EconML has no default (or only 'auto', a slow model search).
DEFAULT_BASE: dict[str, dict[str, Any]] = {
    "regressor": {"class_path": "sklearn.ensemble.GradientBoostingRegressor", "params": {}},
    "classifier": {"class_path": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 1000}},
}

# Settings mmp fixes because the treatment is one column of arms and outcomes are fitted by regressors.
FIXED_PARAMS = {"discrete_treatment": True, "discrete_outcome": False}

# Set by mmp from the data: the arms in order, control first, so EconML measures every arm against it.
DATA_PARAMS = ("categories",)

# Learners that take one treated arm only: NonParamDML's final model fits a single treatment residual.
ONE_ARM_LEARNERS = {"econml.dml.NonParamDML"}

MIN_ARM_ROWS = 5  # per arm and split: fewer, and that arm's outcome model and metrics are noise
ARM_LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")  # several arms name output columns and MLflow metrics


def is_base_spec(value: Any) -> bool:
    """A `{class_path: ..., params: ...}` mapping: a base learner to instantiate."""
    return isinstance(value, dict) and "class_path" in value


def causal_problems(config: dict[str, Any], origin: Origin) -> list[Problem]:
    """Treatment column, learner class and base learners of a `task: causal` recipe."""
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    problems = _treatment_problems(data, config.get("preprocess"), origin)
    model = config.get("model")
    if isinstance(model, dict) and isinstance(model.get("class_path"), str):
        problems += _learner_problems(model["class_path"], model.get("params"), origin)
    return problems


def _treatment_problems(data: dict[str, Any], steps: Any, origin: Origin) -> list[Problem]:
    treatment = data.get("treatment")
    if not treatment:
        return [Problem("data.treatment", "a causal recipe needs the treatment column",
                        "name the column that holds 0 (control) or 1 (treated), or several arms, e.g. "
                        "treatment: treated",
                        origin("data.treatment"))]
    if not isinstance(treatment, str):
        return []  # the schema reports it
    problems = []
    if treatment == data.get("target"):
        problems.append(Problem("data.treatment", f"'{treatment}' is both the treatment and the target (outcome)",
                                "name two different columns", origin("data.treatment")))
    for key, what in (("features", "a feature"), ("entity_columns", "an entity column")):
        if isinstance(data.get(key), list) and treatment in data[key]:
            problems.append(Problem(f"data.{key}", f"the treatment '{treatment}' is also listed as {what}",
                                    "remove it there: a causal model predicts the effect of the treatment, which it "
                                    "is not given at prediction time", origin(f"data.{key}")))
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if isinstance(step, dict) and isinstance(step.get("columns"), list) and treatment in step["columns"]:
            path = f"preprocess.{i}.columns"
            problems.append(Problem(path, f"the treatment '{treatment}' is not a feature, so no step transforms it",
                                    "remove it from the step's columns", origin(path)))
    return problems


def _learner_problems(class_path: str, params: Any, origin: Origin) -> list[Problem]:
    from mmp.config.estimators import ImportProblem, import_class

    path = "model.class_path"
    if class_path not in CAUSAL_LEARNERS:
        try:
            cls = import_class(class_path)
        except ImportProblem:
            return []  # the generic model check says why
        return [Problem(path, f"{cls.__name__} is not a causal learner mmp can train",
                        allowed_text(CAUSAL_LEARNERS, class_path), origin(path))]
    params = params if isinstance(params, dict) else {}
    roles = BASE_ROLES[class_path]
    problems = []
    for name, wanted in FIXED_PARAMS.items():
        if name in params and params[name] != wanted:
            problems.append(Problem(f"model.params.{name}", f"{params[name]!r} is not allowed; mmp sets it to {wanted}",
                                    "the treatment is one column of arms and outcomes are fitted with regressors "
                                    "(a 0/1 outcome works: they estimate its probability); remove the key",
                                    origin(f"model.params.{name}")))
    for name in DATA_PARAMS:
        if name in params:
            problems.append(Problem(f"model.params.{name}", "mmp sets it from the data: the treatment's arms, "
                                    "control first", "name the control arm in data.control instead; remove the key",
                                    origin(f"model.params.{name}")))
    for name, value in params.items():
        specs = value if isinstance(value, list) and any(is_base_spec(v) for v in value) else [value]
        for j, spec in enumerate(specs):
            where = f"model.params.{name}" + (f".{j}" if specs is value else "")
            if is_base_spec(spec):
                problems += base_problems(spec, where, roles.get(name), origin)
            elif name in roles and spec is not None and spec != "auto":
                problems.append(Problem(where, f"{spec!r} is not a base learner",
                                        f"give a {roles[name]} as {{class_path: ..., params: {{...}}}} (or leave it out "
                                        f"for {DEFAULT_BASE[roles[name]]['class_path']})", origin(where)))
    return problems


def base_problems(spec: dict[str, Any], path: str, kind: str | None, origin: Origin) -> list[Problem]:
    """One base learner `{class_path, params}`: its keys, class, params, and kind (regressor/classifier)."""
    from mmp.config.estimators import ImportProblem, check_params, estimator_kind, import_class

    unknown = sorted(set(spec) - {"class_path", "params"})
    if unknown:
        return [Problem(f"{path}.{unknown[0]}", f"unknown key '{unknown[0]}' in a base learner",
                        "allowed: class_path, params", origin(path))]
    params = spec.get("params") or {}
    if not isinstance(spec["class_path"], str) or not isinstance(params, dict):
        return [Problem(path, "a base learner is {class_path: package.module.Class, params: {name: value}}",
                        None, origin(path))]
    try:
        cls = import_class(spec["class_path"])
    except ImportProblem as exc:
        return [Problem(f"{path}.class_path", str(exc), None, origin(f"{path}.class_path"))]
    problems = check_params(cls, params, f"{path}.params", origin)
    found = estimator_kind(cls)
    if kind and found != kind:
        shown = f"{'an' if (found or 'x')[0] in 'aeiou' else 'a'} {found}" if found else "no scikit-learn estimator"
        problems.append(Problem(f"{path}.class_path", f"{cls.__name__} is {shown}, but this role needs a {kind}",
                                f"use a {kind}, e.g. {DEFAULT_BASE[kind]['class_path']}", origin(f"{path}.class_path")))
    return problems


def treatment_data_problems(spec: Any, frame: Any, origin: Origin) -> list[Problem]:
    """With the data at hand: the treatment column exists and holds two or more arms (integers or text)
    with the control among them, the outcome is numeric, and the learner takes that many arms."""
    return treatment_arms(spec, frame, origin)[1]


def treatment_arms(spec: Any, frame: Any, origin: Origin) -> tuple[list, list[Problem]]:
    """(the treatment's arms, control first, the rest sorted; the problems that stop training)."""
    import polars as pl

    from mmp.io.readers import is_numeric

    data = spec.data
    if data.treatment not in frame.columns:
        return [], [Problem("data.treatment", f"column not in the data: {data.treatment}",
                            f"available: {', '.join(frame.columns)}", origin("data.treatment"))]
    problems = []
    if data.target in frame.columns and not is_numeric(frame.schema[data.target]):
        problems.append(Problem("data.target", f"the outcome '{data.target}' holds {frame.schema[data.target]}, not "
                                "numbers", "a causal outcome is a number (a 0/1 conversion is fine)", origin("data.target")))
    column, name = frame[data.treatment], data.treatment
    values = column.drop_nulls().unique().sort().to_list()
    shown = ", ".join(repr(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
    if column.dtype == pl.Boolean or is_numeric(column.dtype):
        if not all(float(v).is_integer() for v in values):  # NaN and 0.5 alike
            return [], problems + [Problem("data.treatment", f"column '{name}' holds {shown}; arms are labels, not "
                                           "amounts", "allowed values: integers (0 = control, 1, 2, ... = arms) or "
                                           "text, e.g. control, email, call", origin("data.treatment"))]
        values = [int(v) for v in values]
    elif column.dtype not in (pl.String, pl.Categorical, pl.Enum):
        return [], problems + [Problem("data.treatment", f"column '{name}' holds {column.dtype}",
                                       "arms are integers (0 = control) or text", origin("data.treatment"))]
    if len(values) < 2:
        arm = {0: "control", 1: "treated"}.get(values[0], repr(values[0])) if values else "missing"
        return [], problems + [Problem("data.treatment", f"every row of '{name}' is {arm}",
                                       "a causal model needs control rows and treated rows (one arm or several)",
                                       origin("data.treatment"))]
    control = control_arm(data.control, values)
    if control is None:
        if data.control is not None:
            problems.append(Problem("data.control", f"{data.control!r} is not a value of '{name}'",
                                    f"allowed: {shown}", origin("data.control")))
        else:
            problems.append(Problem("data.control", f"which arm of '{name}' is the control? It holds {shown}",
                                    f"set data.control to one of them, e.g. data.control: {values[0]}",
                                    origin("data.treatment")))
        return [], problems
    arms = [control, *(v for v in values if v != control)]
    if len(arms) > 2:
        odd = [a for a in arms if not ARM_LABEL.match(str(a))]
        if odd:
            problems.append(Problem("data.treatment", f"arm {odd[0]!r} of '{name}' cannot name an output column "
                                    "(prediction_<arm>)", "arm labels: letters, digits, _ . -", origin("data.treatment")))
        if spec.model.class_path in ONE_ARM_LEARNERS:
            learner = spec.model.class_path.rpartition(".")[2]
            problems.append(Problem("model.class_path", f"{learner} takes one treated arm; '{name}' has "
                                    f"{len(arms) - 1} ({', '.join(map(str, arms[1:]))})",
                                    allowed_text(set(CAUSAL_LEARNERS) - ONE_ARM_LEARNERS), origin("model.class_path")))
    return arms, problems


def control_arm(given: str | int | None, values: list) -> Any:
    """The value of `values` that `data.control` names (0 by default, where the arms are integers); None if none."""
    if given is None:
        return 0 if all(isinstance(v, int) for v in values) and 0 in values else None
    # `control: 0` and a text column of "0", "1", ... (or the reverse) name the same arm.
    return next((v for v in values if v == given or str(v) == str(given)), None)
