"""Causal (uplift) recipes: which learners mmp trains, what their base learners must be, and the checks.

A causal learner (PyWhy EconML) is built from base learners: outcome regressors, a propensity
classifier, a final CATE regressor. A recipe gives each as a `model.params` value of the same shape
as `model:` itself, `{class_path: ..., params: {...}}`, and mmp instantiates it; a role left out gets
mmp's default (`DEFAULT_BASE`) where EconML has none (or only its slow model search, 'auto').
"""

from __future__ import annotations

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
    "econml.dml.NonParamDML": "double machine learning, any regressor as the CATE model (model_y, model_t, model_final)",
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

# Settings mmp fixes because the treatment is one binary column and outcomes are fitted by regressors.
FIXED_PARAMS = {"discrete_treatment": True, "discrete_outcome": False}


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
                        "name the column that holds 0 (control) or 1 (treated), e.g. treatment: treated",
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
                                    "the treatment is one 0/1 column and outcomes are fitted with regressors "
                                    "(a 0/1 outcome works: they estimate its probability); remove the key",
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
    """With the data at hand: the treatment column exists and holds 0 and 1 (both), the outcome is numeric."""
    import polars as pl

    from mmp.io.readers import is_numeric

    data = spec.data
    if data.treatment not in frame.columns:
        return [Problem("data.treatment", f"column not in the data: {data.treatment}",
                        f"available: {', '.join(frame.columns)}", origin("data.treatment"))]
    problems = []
    if data.target in frame.columns and not is_numeric(frame.schema[data.target]):
        problems.append(Problem("data.target", f"the outcome '{data.target}' holds {frame.schema[data.target]}, not "
                                "numbers", "a causal outcome is a number (a 0/1 conversion is fine)", origin("data.target")))
    column = frame[data.treatment]
    values = column.drop_nulls().unique().sort().to_list()
    values = [int(v) for v in values] if column.dtype == pl.Boolean else values
    if not is_numeric(column.dtype) or not set(values) <= {0, 1}:
        shown = ", ".join(repr(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        problems.append(Problem("data.treatment", f"column '{data.treatment}' holds {shown}; a treatment is binary",
                                "allowed values: 0 (control) and 1 (treated); several arms are not supported",
                                origin("data.treatment")))
    elif set(values) != {0, 1}:
        arm = "treated" if values == [1] else "control"
        problems.append(Problem("data.treatment", f"every row of '{data.treatment}' is {arm}",
                                "a causal model needs treated (1) and control (0) rows", origin("data.treatment")))
    return problems
