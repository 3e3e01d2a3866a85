"""What the recipe checks need to know of a model or step class, as plain data that can be cached.

Importing `sklearn.linear_model` costs most of a second (scikit-learn's package import pulls in
scipy.stats and pandas), while checking a recipe needs a few facts only: the constructor's parameter
names, the kind of estimator, which methods the class has, and each parameter's declared
constraints. `ClassFacts` holds exactly that; `mmp.config.facts_cache` keeps it between runs.

The constraints are kept in a portable form for one purpose: to say quickly that a value is fine.
A value the portable form rejects, or cannot judge, is checked by scikit-learn itself on the real
class, so every message a user reads is still scikit-learn's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# The methods the checks ask about (fit/predict: a model; predict_proba/decision_function: calibration).
METHODS = ("fit", "predict", "predict_proba", "decision_function", "transform", "forecast")

# One value of each type a composed config holds, to learn a type-only constraint's verdict per type.
SAMPLES = {"none": None, "bool": True, "int": 1, "float": 0.5, "str": "a", "list": [1], "dict": {"a": 1}}
KIND_OF_TYPE = {type(None): "none", bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}
# scikit-learn constraints (sklearn.utils._param_validation) whose verdict on such a value depends on its type alone,
# and those that hold when any of their `_constraints` holds.
BY_TYPE = ("_InstancesOf", "_NoneConstraint", "_Callables", "_ArrayLikes", "_SparseMatrices", "HasMethods",
           "_IterablesNotString", "_PandasNAConstraint")
ANY_OF = ("_RandomStates", "_Booleans", "_VerboseHelper", "MissingValues", "_CVObjects")
# Number types an Interval or Options constraint names -> the plain types that are instances of them.
TYPES = {"int": (int,), "real": (int, float), "float": (float,), "str": (str,), "bool": (bool,)}


class Unportable(Exception):
    """A constraint the portable form cannot express: values for that parameter go to scikit-learn."""


@dataclass(frozen=True)
class ClassFacts:
    """A class as the checks see it. `cls` is the live class when it was at hand (not cached)."""

    class_path: str
    name: str
    module: str
    params: frozenset[str]
    open_ended: bool  # the constructor takes **kwargs
    kind: str | None  # estimator_kind's answer
    methods: frozenset[str]
    lineage: tuple[tuple[str, str], ...]  # (module, name) along the MRO
    # param -> portable constraints, "no_validation", or None (unportable); None: the class declares none
    constraints: dict[str, Any] | None
    cls: type | None = field(default=None, compare=False, repr=False)

    def has(self, method: str) -> bool:
        return method in self.methods

    def accepts(self, key: str, value: Any) -> bool:
        """True when scikit-learn's constraint check (and mmp's no-bool-for-a-number rule) surely
        passes `value` for `key`; False when it fails or the portable form cannot tell."""
        if self.constraints is None or key not in self.constraints or self.constraints[key] == "no_validation":
            return True
        rules = self.constraints[key]
        try:
            if type(value) is bool:  # bool counts as int to scikit-learn: fine only where a boolean is a real choice
                return any(_holds(rule, value) and not rule["number"] for rule in rules)
            return any(_holds(rule, value) for rule in rules)
        except Exception:  # None (unportable) or a malformed rule: scikit-learn decides
            return False

    def to_json(self) -> dict[str, Any]:
        return {"class_path": self.class_path, "name": self.name, "module": self.module,
                "params": sorted(self.params), "open_ended": self.open_ended, "kind": self.kind,
                "methods": sorted(self.methods), "lineage": [list(pair) for pair in self.lineage],
                "constraints": self.constraints}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClassFacts:
        """Rebuild facts written by `to_json`; a missing key raises (the cache takes it as a miss)."""
        constraints = data["constraints"]
        if constraints is not None and not isinstance(constraints, dict):
            raise ValueError("constraints must be a mapping")
        kind = None if data["kind"] is None else str(data["kind"])
        return cls(str(data["class_path"]), str(data["name"]), str(data["module"]),
                   frozenset(map(str, data["params"])), bool(data["open_ended"]), kind,
                   frozenset(map(str, data["methods"])), tuple((str(m), str(n)) for m, n in data["lineage"]),
                   constraints)


def _holds(rule: dict[str, Any], value: Any) -> bool:
    """Whether a portable constraint is satisfied by `value` exactly as scikit-learn's would be."""
    kind = rule["is"]
    if kind == "interval":
        if not isinstance(value, TYPES[rule["type"]]) or (isinstance(value, float) and math.isnan(value)):
            return False
        left = -math.inf if rule["left"] is None else rule["left"]
        right = math.inf if rule["right"] is None else rule["right"]
        closed = rule["closed"]
        if value < left if closed in ("left", "both") else value <= left:
            return False
        return not (value > right if closed in ("right", "both") else value >= right)
    if kind == "options":
        return isinstance(value, TYPES[rule["type"]]) and value in rule["values"]
    if kind == "types":
        return KIND_OF_TYPE.get(type(value)) in rule["kinds"]
    if kind == "nan":
        return isinstance(value, float) and math.isnan(value)
    if kind == "any":
        return any(_holds(sub, value) for sub in rule["of"])
    raise ValueError(f"unknown constraint form {kind!r}")


def portable_constraints(cls: type) -> dict[str, Any] | None:
    """`cls._parameter_constraints` in portable form (None when the class declares none)."""
    declared = getattr(cls, "_parameter_constraints", None)
    if not isinstance(declared, dict):
        return None
    try:
        from sklearn.utils import _param_validation as pv
    except ImportError:  # a scikit-learn without the constraint API: only names are checked
        return None
    portable: dict[str, Any] = {}
    for key, constraints in declared.items():
        if isinstance(constraints, str) and constraints == "no_validation":
            portable[key] = "no_validation"
            continue
        try:
            portable[key] = [_portable(pv.make_constraint(c), pv) for c in constraints]
        except Exception:  # Unportable, or a constraint make_constraint itself refuses
            portable[key] = None
    return portable


def is_number(constraint: Any, pv: Any) -> bool:
    """Whether a scikit-learn constraint admits numbers (a bool given for it is refused by mmp)."""
    import numbers

    numeric = tuple(getattr(pv, name) for name in ("Interval", "_RandomStates") if hasattr(pv, name))
    if isinstance(constraint, numeric):
        return True
    return (isinstance(constraint, pv._InstancesOf) and isinstance(constraint.type, type)
            and issubclass(constraint.type, numbers.Number) and not issubclass(constraint.type, bool)
            and not _is_numpy_bool(constraint.type))


def _is_numpy_bool(kind: type) -> bool:
    import numpy as np

    return issubclass(kind, np.bool_)


def _portable(constraint: Any, pv: Any) -> dict[str, Any]:
    import numbers

    name = type(constraint).__name__
    if getattr(pv, name, None) is not type(constraint):
        raise Unportable(name)  # a subclass or a constraint from elsewhere: its verdict is its own
    number = is_number(constraint, pv)
    if name == "Interval":
        bound = lambda b: None if b is None else (int(b) if isinstance(b, numbers.Integral) else float(b))  # noqa: E731
        return {"is": "interval", "type": _type_key(constraint.type, pv), "left": bound(constraint.left),
                "right": bound(constraint.right), "closed": constraint.closed, "number": number}
    if name in ("Options", "StrOptions"):
        values = list(constraint.options)
        if not all(type(v) in (str, int, float, bool) or v is None for v in values):
            raise Unportable(f"options {values!r}")
        return {"is": "options", "type": _type_key(constraint.type, pv), "values": values, "number": number}
    if name in BY_TYPE:
        kinds = [kind for kind, sample in SAMPLES.items() if constraint.is_satisfied_by(sample)]
        return {"is": "types", "kinds": kinds, "number": number}
    if name == "_NanConstraint":
        return {"is": "nan", "number": number}
    if name in ANY_OF:
        return {"is": "any", "of": [_portable(sub, pv) for sub in constraint._constraints], "number": number}
    raise Unportable(name)


def _type_key(kind: Any, pv: Any) -> str:
    import numbers

    for candidate, key in ((bool, "bool"), (str, "str"), (int, "int"), (float, "float"), (numbers.Integral, "int"),
                           (pv.RealNotInt, "float"), (numbers.Real, "real")):
        if kind is candidate:
            return key
    raise Unportable(f"type {kind!r}")
