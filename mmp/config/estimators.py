"""Model classes named by `model.class_path`: import them, tell their kind, check their params."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from mmp.errors import Problem, allowed_text, did_you_mean

# Top-level module -> the mmp extra that installs it.
EXTRAS = {"xgboost": "ml-extras", "lightgbm": "ml-extras", "catboost": "ml-extras", "torch": "torch-extras",
          "statsforecast": "forecast-extras", "mlforecast": "forecast-extras", "econml": "causal-extras"}
# What kind of estimator each task needs.
KIND_FOR_TASK = {"classification": "classifier", "regression": "regressor", "clustering": "clusterer"}
# Models outside scikit-learn that `mmp list models` shows: class path -> (kind, extra).
EXTRA_MODELS = {
    "xgboost.XGBClassifier": ("classifier", "ml-extras"),
    "xgboost.XGBRegressor": ("regressor", "ml-extras"),
    "lightgbm.LGBMClassifier": ("classifier", "ml-extras"),
    "lightgbm.LGBMRegressor": ("regressor", "ml-extras"),
    "catboost.CatBoostClassifier": ("classifier", "ml-extras"),
    "catboost.CatBoostRegressor": ("regressor", "ml-extras"),
    "mmp.models.mlp.MLPClassifier": ("classifier", "torch-extras"),
    "mmp.models.mlp.MLPRegressor": ("regressor", "torch-extras"),
}

# Names one library takes for the same parameter and refuses together (top-level module -> groups):
# CatBoost fails at fit time when, say, both `iterations` and `n_estimators` are given.
SYNONYMS = {"catboost": (
    ("iterations", "n_estimators", "num_boost_round", "num_trees"), ("learning_rate", "eta"),
    ("depth", "max_depth"), ("border_count", "max_bin"), ("rsm", "colsample_bylevel"),
    ("random_seed", "random_state"), ("l2_leaf_reg", "reg_lambda"), ("od_wait", "early_stopping_rounds"),
    ("custom_metric", "custom_loss"), ("max_leaves", "num_leaves"), ("min_data_in_leaf", "min_child_samples"),
    ("loss_function", "objective"), ("verbose", "logging_level", "verbose_eval", "silent"),
)}

# Class paths that moved; recipes written for an older mmp keep working.
MOVED = {"mmp.torch_models.MLPClassifier": "mmp.models.mlp.MLPClassifier",
         "mmp.torch_models.MLPRegressor": "mmp.models.mlp.MLPRegressor"}


class ImportProblem(Exception):
    """`class_path` does not name an importable class; the message says why and what to do."""


def import_class(class_path: str) -> type:
    """Import `package.module.Class`; raise ImportProblem with a hint when that fails."""
    class_path = MOVED.get(class_path, class_path)
    module_name, _, class_name = class_path.rpartition(".")
    if not module_name:
        hint = did_you_mean(class_path, [p.rpartition(".")[2] for p in known_class_paths()], cutoff=0.8)
        full = next((p for p in known_class_paths() if p.endswith("." + (hint or class_path))), None)
        raise ImportProblem(
            f"'{class_path}' is not a full class path"
            + (f"; did you mean '{full}'?" if full else "; write it as package.module.Class")
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = (exc.name or module_name).split(".")[0]
        extra = EXTRAS.get(top)
        if extra:
            raise ImportProblem(f"'{top}' is not installed; install it with: pip install 'mmp[{extra}]'") from exc
        raise ImportProblem(f"cannot import module '{module_name}' ({exc})") from exc
    except ImportError as exc:
        raise ImportProblem(f"cannot import module '{module_name}' ({exc})") from exc
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        public = [n for n, v in vars(module).items() if inspect.isclass(v) and not n.startswith("_")]
        raise ImportProblem(f"module '{module_name}' has no class '{class_name}'; {allowed_text(public, class_name)}")
    return cls


def estimator_kind(cls: type) -> str | None:
    """'classifier', 'regressor', 'clusterer' (mixture models, whose `predict` gives a component,
    count as clusterers), another kind scikit-learn names ('outlier_detector', ...), or None."""
    kind = None
    try:
        kind = getattr(cls().__sklearn_tags__(), "estimator_type", None)
    except Exception:  # a class that cannot be built without arguments, or has no tags
        pass
    kind = kind or getattr(cls, "_estimator_type", None)
    if kind is None:
        names = [base.__name__ for base in cls.__mro__]
        mixins = (("ClassifierMixin", "classifier"), ("RegressorMixin", "regressor"), ("ClusterMixin", "clusterer"),
                  ("OutlierMixin", "outlier_detector"), ("DensityMixin", "density_estimator"))
        kind = next((k for mixin, k in mixins if mixin in names), None)
    if kind == "density_estimator" and hasattr(cls, "predict"):
        return "clusterer"
    return kind


def parameter_names(cls: type) -> tuple[set[str], bool]:
    """The constructor's parameter names along the class hierarchy, and whether it takes **kwargs."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names |= {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names, False  # explicit signature: nothing further up is reachable
    return names, True


def check_params(cls: type, params: dict[str, Any], path: str,
                 origin: Callable[[str], str | None] = lambda path: None) -> list[Problem]:
    """Every problem with `params` for `cls`: unknown names (with a hint) and, for scikit-learn
    estimators, values outside the declared constraints."""
    problems = []
    names, open_ended = parameter_names(cls)
    for key in params:
        if key in names:
            continue
        hint = did_you_mean(key, names, cutoff=0.75 if open_ended else 0.6)
        if open_ended and not hint:
            continue  # **kwargs passes it on (e.g. an xgboost booster parameter)
        problems.append(
            Problem(f"{path}.{key}", f"'{key}' is not a parameter of {cls.__name__}", allowed_text(names, key),
                    origin(f"{path}.{key}"))
        )
    for group in SYNONYMS.get(cls.__module__.split(".")[0], ()):
        given = [key for key in group if key in params]
        if len(given) > 1:
            problems.append(Problem(f"{path}.{given[-1]}", f"{', '.join(repr(k) for k in given)} name the same "
                                    f"{cls.__name__} parameter", "give only one of them", origin(f"{path}.{given[-1]}")))
    constraints = getattr(cls, "_parameter_constraints", None)
    if isinstance(constraints, dict):
        try:
            from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints
        except ImportError:  # a scikit-learn without the constraint API: names were still checked
            return problems
        for key, value in params.items():
            if key not in constraints or constraints[key] == "no_validation":
                continue
            wanted = _number_wanted(constraints[key], value)
            if wanted:
                shown = str(value).lower()
                problems.append(Problem(f"{path}.{key}", f"got the boolean {shown}, but {cls.__name__} wants a number here",
                                        f"allowed: {wanted}", origin(f"{path}.{key}")))
                continue
            try:
                validate_parameter_constraints({key: constraints[key]}, {key: value}, caller_name=cls.__name__)
            except InvalidParameterError as exc:
                problems.append(Problem(f"{path}.{key}", str(exc).rstrip("."), None, origin(f"{path}.{key}")))
    return problems


def _number_wanted(constraints: list, value: Any) -> str | None:
    """What a numeric parameter allows, when `value` is a bool given for it: scikit-learn counts bool as
    int, so `C=true` would pass as C=1. None when `value` is no bool or a bool is allowed there."""
    import numbers

    import numpy as np
    from sklearn.utils import _param_validation as pv

    if not isinstance(value, (bool, np.bool_)):
        return None
    numeric = tuple(getattr(pv, name) for name in ("Interval", "_RandomStates") if hasattr(pv, name))

    def is_number(c: Any) -> bool:
        return isinstance(c, numeric) or (isinstance(c, pv._InstancesOf) and issubclass(c.type, numbers.Number)
                                          and not issubclass(c.type, (bool, np.bool_)))

    made = [pv.make_constraint(c) for c in constraints]
    if any(c.is_satisfied_by(value) and not is_number(c) for c in made):
        return None  # a boolean is a real choice here ("boolean", "verbose")
    if not any(is_number(c) for c in made):
        return None  # no number is allowed either: scikit-learn's own check says what is
    shown = [str(c) for c in made if not c.hidden]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def known_class_paths() -> list[str]:
    """The common model class paths (scikit-learn's main estimators and the extras)."""
    common = [
        "sklearn.linear_model.LogisticRegression", "sklearn.linear_model.LinearRegression",
        "sklearn.linear_model.Ridge", "sklearn.linear_model.Lasso", "sklearn.linear_model.ElasticNet",
        "sklearn.ensemble.RandomForestClassifier", "sklearn.ensemble.RandomForestRegressor",
        "sklearn.ensemble.GradientBoostingClassifier", "sklearn.ensemble.GradientBoostingRegressor",
        "sklearn.ensemble.HistGradientBoostingClassifier", "sklearn.ensemble.HistGradientBoostingRegressor",
        "sklearn.ensemble.ExtraTreesClassifier", "sklearn.ensemble.ExtraTreesRegressor",
        "sklearn.svm.SVC", "sklearn.svm.SVR", "sklearn.neighbors.KNeighborsClassifier",
        "sklearn.neighbors.KNeighborsRegressor", "sklearn.tree.DecisionTreeClassifier",
        "sklearn.tree.DecisionTreeRegressor", "sklearn.cluster.KMeans", "sklearn.cluster.MiniBatchKMeans",
        "sklearn.cluster.BisectingKMeans", "sklearn.mixture.GaussianMixture",
    ]
    return common + list(EXTRA_MODELS)


def catalogue() -> list[tuple[str, str, str]]:
    """(class path, kind, how to get it) for every model `compile` accepts for some task, for `mmp list models`."""
    import warnings

    from sklearn.utils import all_estimators

    rows = []
    with warnings.catch_warnings():  # deprecated estimators warn when built; they are still listed
        warnings.simplefilter("ignore")
        for _, cls in all_estimators():
            kind = estimator_kind(cls)
            if kind in KIND_FOR_TASK.values() and hasattr(cls, "fit") and hasattr(cls, "predict"):
                rows.append((f"{_public_module(cls)}.{cls.__name__}", kind, "built in"))
    for class_path, (kind, extra) in EXTRA_MODELS.items():
        rows.append((class_path, kind, f"mmp[{extra}]"))
    return sorted(set(rows))


def _public_module(cls: type) -> str:
    """The public module that exports `cls` (`sklearn.linear_model`, not `sklearn.linear_model._glm.glm`)."""
    parts = cls.__module__.split(".")
    public = ".".join(parts[:next((i for i, p in enumerate(parts) if p.startswith("_")), len(parts))])
    try:
        if getattr(importlib.import_module(public), cls.__name__, None) is cls:
            return public
    except ImportError:
        pass
    return cls.__module__
