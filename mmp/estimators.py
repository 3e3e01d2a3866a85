"""Model classes named by `model.class_path`: import them, tell their kind, check their params."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from mmp.errors import Problem, allowed_text, did_you_mean

# Top-level module -> the mmp extra that installs it.
EXTRAS = {"xgboost": "ml-extras", "lightgbm": "ml-extras", "torch": "torch-extras"}
# What kind of estimator each task needs.
KIND_FOR_TASK = {"classification": "classifier", "regression": "regressor", "clustering": "clusterer"}
# Models outside scikit-learn that `mmp list models` shows: class path -> (kind, extra).
EXTRA_MODELS = {
    "xgboost.XGBClassifier": ("classifier", "ml-extras"),
    "xgboost.XGBRegressor": ("regressor", "ml-extras"),
    "lightgbm.LGBMClassifier": ("classifier", "ml-extras"),
    "lightgbm.LGBMRegressor": ("regressor", "ml-extras"),
    "mmp.torch_models.MLPClassifier": ("classifier", "torch-extras"),
    "mmp.torch_models.MLPRegressor": ("regressor", "torch-extras"),
}


class ImportProblem(Exception):
    """`class_path` does not name an importable class; the message says why and what to do."""


def import_class(class_path: str) -> type:
    """Import `package.module.Class`; raise ImportProblem with a hint when that fails."""
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
    """'classifier', 'regressor', 'clusterer', or None when the class does not say."""
    try:
        tags = cls().__sklearn_tags__()
        kind = getattr(tags, "estimator_type", None)
        if kind in ("classifier", "regressor", "clusterer"):
            return kind
    except Exception:  # a class that cannot be built without arguments, or has no tags
        pass
    kind = getattr(cls, "_estimator_type", None)
    if kind in ("classifier", "regressor", "clusterer"):
        return kind
    names = [base.__name__ for base in cls.__mro__]
    for mixin, kind in (("ClassifierMixin", "classifier"), ("RegressorMixin", "regressor"), ("ClusterMixin", "clusterer")):
        if mixin in names:
            return kind
    return None


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
    constraints = getattr(cls, "_parameter_constraints", None)
    if isinstance(constraints, dict):
        try:
            from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints
        except ImportError:  # a scikit-learn without the constraint API: names were still checked
            return problems
        for key, value in params.items():
            if key not in constraints:
                continue
            try:
                validate_parameter_constraints({key: constraints[key]}, {key: value}, caller_name=cls.__name__)
            except InvalidParameterError as exc:
                problems.append(Problem(f"{path}.{key}", str(exc).rstrip("."), None, origin(f"{path}.{key}")))
    return problems


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
        "sklearn.cluster.AgglomerativeClustering", "sklearn.cluster.DBSCAN", "sklearn.mixture.GaussianMixture",
    ]
    return common + list(EXTRA_MODELS)


def catalogue() -> list[tuple[str, str, str]]:
    """(class path, kind, how to get it) for every model a recipe can name, for `mmp list models`."""
    from sklearn.utils import all_estimators

    rows = []
    for type_filter, kind in (("classifier", "classifier"), ("regressor", "regressor"), ("cluster", "clusterer")):
        for _, cls in all_estimators(type_filter=type_filter):
            public_module = ".".join(p for p in cls.__module__.split(".") if not p.startswith("_"))
            rows.append((f"{public_module}.{cls.__name__}", kind, "built in"))
    for class_path, (kind, extra) in EXTRA_MODELS.items():
        rows.append((class_path, kind, f"mmp[{extra}]"))
    return sorted(set(rows))
