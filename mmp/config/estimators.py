"""Model classes named by `model.class_path`: import them, tell their kind, check their params."""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from typing import Any, Callable

from mmp.config.class_facts import METHODS, ClassFacts, is_number, portable_constraints
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


# Top-level package -> the top-level packages that importing its classes loaded (in this process).
_PULLED_IN: dict[str, set[str]] = {}


def class_facts(class_path: str) -> ClassFacts:
    """What the checks need of the class at `class_path`: read from the class when its module is
    already imported, else from an earlier run's cache (while the installed files are unchanged),
    else by importing it (raising ImportProblem as `import_class` does) and caching the answer."""
    from mmp.config import facts_cache

    class_path = MOVED.get(class_path, class_path)
    module_name, _, class_name = class_path.rpartition(".")
    top = module_name.split(".")[0]
    live = getattr(sys.modules.get(module_name), class_name, None)
    cached = facts_cache.read(class_path)
    if cached is not None and not inspect.isclass(live):
        return cached
    if inspect.isclass(live):
        cls = live
    else:
        before = set(sys.modules)
        cls = import_class(class_path)
        _PULLED_IN.setdefault(top, set()).update(name.split(".")[0] for name in set(sys.modules) - before)
    facts = facts_of(cls, class_path)
    if cached is None and top in _PULLED_IN:  # what its import needs is known: a later run can tell it is still there
        facts_cache.write(facts, needs=_PULLED_IN[top] | {top})
    return facts


@functools.lru_cache(maxsize=256)
def facts_of(cls: type, class_path: str | None = None) -> ClassFacts:
    """`cls` as the checks see it (`class_path`: how the recipe names it; default: where it is defined)."""
    names, open_ended = parameter_names(cls)
    return ClassFacts(
        class_path=class_path or f"{cls.__module__}.{cls.__qualname__}", name=cls.__name__, module=cls.__module__,
        params=frozenset(names), open_ended=open_ended, kind=estimator_kind(cls),
        methods=frozenset(m for m in METHODS if hasattr(cls, m)),
        lineage=tuple((k.__module__, k.__name__) for k in cls.__mro__), constraints=portable_constraints(cls), cls=cls,
    )


def load_class(facts: ClassFacts) -> type:
    """The live class behind `facts` (imported now when the facts came from the cache)."""
    return facts.cls if facts.cls is not None else import_class(facts.class_path)


def estimator_kind(cls: type | ClassFacts) -> str | None:
    """'classifier', 'regressor', 'clusterer' (mixture models, whose `predict` gives a component,
    count as clusterers), another kind scikit-learn names ('outlier_detector', ...), or None."""
    if isinstance(cls, ClassFacts):
        return cls.kind
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


def parameter_names(cls: type | ClassFacts) -> tuple[set[str], bool]:
    """The constructor's parameter names along the class hierarchy, and whether it takes **kwargs."""
    if isinstance(cls, ClassFacts):
        return set(cls.params), cls.open_ended
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


def check_params(cls: type | ClassFacts, params: dict[str, Any], path: str,
                 origin: Callable[[str], str | None] = lambda path: None) -> list[Problem]:
    """Every problem with `params` for `cls`: unknown names (with a hint) and, for scikit-learn
    estimators, values outside the declared constraints."""
    facts = cls if isinstance(cls, ClassFacts) else facts_of(cls)
    problems = []
    names, open_ended = parameter_names(facts)
    for key in params:
        if key in names:
            continue
        hint = did_you_mean(key, names, cutoff=0.75 if open_ended else 0.6)
        if open_ended and not hint:
            continue  # **kwargs passes it on (e.g. an xgboost booster parameter)
        problems.append(
            Problem(f"{path}.{key}", f"'{key}' is not a parameter of {facts.name}", allowed_text(names, key),
                    origin(f"{path}.{key}"))
        )
    for group in SYNONYMS.get(facts.module.split(".")[0], ()):
        given = [key for key in group if key in params]
        if len(given) > 1:
            problems.append(Problem(f"{path}.{given[-1]}", f"{', '.join(repr(k) for k in given)} name the same "
                                    f"{facts.name} parameter", "give only one of them", origin(f"{path}.{given[-1]}")))
    if facts.constraints is None:
        return problems
    # Cached facts vouch for the values they surely accept; the rest (and all, with the class at hand)
    # go to scikit-learn's own check, so its messages are the ones users read.
    doubtful = {key: value for key, value in params.items() if facts.cls is not None or not facts.accepts(key, value)}
    if not doubtful:
        return problems
    try:
        cls = load_class(facts)
    except ImportProblem as exc:  # the cache was right about the files, but something else keeps it from importing
        return problems + [Problem(path, str(exc), None, origin(path))]
    return problems + _constraint_problems(cls, doubtful, path, origin)


def _constraint_problems(cls: type, params: dict[str, Any], path: str,
                         origin: Callable[[str], str | None]) -> list[Problem]:
    """scikit-learn's verdict on each value of `params` against `cls._parameter_constraints`."""
    constraints = getattr(cls, "_parameter_constraints", None)
    if not isinstance(constraints, dict):
        return []
    try:
        from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints
    except ImportError:  # a scikit-learn without the constraint API: names were still checked
        return []
    problems = []
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
    import numpy as np
    from sklearn.utils import _param_validation as pv

    if not isinstance(value, (bool, np.bool_)):
        return None
    made = [pv.make_constraint(c) for c in constraints]
    if any(c.is_satisfied_by(value) and not is_number(c, pv) for c in made):
        return None  # a boolean is a real choice here ("boolean", "verbose")
    if not any(is_number(c, pv) for c in made):
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
