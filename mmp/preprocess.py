"""Preprocessing steps a recipe can name, and how they compile into one scikit-learn transformer.

`preprocess:` is an ordered list of steps; each step applies to its `columns` (default: the
columns of the dtype it is meant for). Columns that share the same sequence of steps become one
branch `Pipeline` of a `ColumnTransformer`, so the whole thing is a single fit/transform object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepType:
    """A step a recipe can name: the transformer class, the columns it takes by default, its defaults."""

    class_path: str
    default_columns: str  # "numeric" or "categorical"
    summary: str
    defaults: dict[str, Any] = field(default_factory=dict)


STEPS: dict[str, StepType] = {
    "impute": StepType(
        "sklearn.impute.SimpleImputer", "numeric",
        "fill missing values (strategy: mean | median | most_frequent | constant; add_indicator)",
        {"strategy": "mean"},
    ),
    "standard_scale": StepType("sklearn.preprocessing.StandardScaler", "numeric", "zero mean, unit variance"),
    "minmax_scale": StepType("sklearn.preprocessing.MinMaxScaler", "numeric", "scale into feature_range"),
    "robust_scale": StepType("sklearn.preprocessing.RobustScaler", "numeric", "scale by median and IQR"),
    "one_hot": StepType(
        "sklearn.preprocessing.OneHotEncoder", "categorical",
        "one column per category; unseen categories encode as all zeros",
        {"handle_unknown": "ignore", "sparse_output": False},
    ),
    "ordinal": StepType(
        "sklearn.preprocessing.OrdinalEncoder", "categorical",
        "one integer per category; unseen and missing become unknown_value (-1)",
        {"handle_unknown": "use_encoded_value", "unknown_value": -1, "encoded_missing_value": -1},
    ),
    "target_encode": StepType(
        "sklearn.preprocessing.TargetEncoder", "categorical", "replace a category by its (cross-fitted) target mean"
    ),
    "kbins": StepType(
        "sklearn.preprocessing.KBinsDiscretizer", "numeric", "bin values (n_bins, strategy: uniform | quantile | kmeans)",
        {"n_bins": 5, "encode": "ordinal", "strategy": "quantile"},
    ),
    "polynomial": StepType(
        "sklearn.preprocessing.PolynomialFeatures", "numeric", "polynomial and interaction terms (degree)",
        {"degree": 2, "include_bias": False},
    ),
}


def step_options(step_type: StepType, options: dict[str, Any]) -> dict[str, Any]:
    """The transformer's keyword arguments: the step type's defaults, then the recipe's options."""
    return {**step_type.defaults, **options}


def describe_step(name: str, options: dict[str, Any], columns: list[str] | None) -> str:
    """`impute(strategy=median) on numeric columns` — one step as `mmp compile` prints it."""
    step_type = STEPS[name]
    opts = ", ".join(f"{k}={v}" for k, v in options.items())
    where = ", ".join(columns) if columns is not None else f"{step_type.default_columns} columns"
    return f"{name}({opts}) on {where}"


def step_columns(name: str, options: dict[str, Any], columns: list[str] | None,
                 features: list[str], numeric: set[str]) -> list[str]:
    """The feature columns a step applies to: its `columns`, else those of its default dtype."""
    if columns is not None:
        return list(columns)
    step_type = STEPS[name]
    if name == "impute" and step_options(step_type, options).get("strategy") in ("most_frequent", "constant"):
        return list(features)
    if step_type.default_columns == "numeric":
        return [c for c in features if c in numeric]
    return [c for c in features if c not in numeric]


ENCODERS = ("one_hot", "ordinal", "target_encode")


def build_preprocessor(steps: list, features: list[str], numeric: set[str], model_accepts_nan: bool):
    """One ColumnTransformer for the recipe's ordered steps.

    Each column gets the steps that name it, in recipe order; columns sharing a sequence share
    one branch Pipeline. Numeric columns with no `impute` step get a median imputer first when
    the model cannot take missing values, so a missing value at prediction time never crashes.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    from mmp.estimators import import_class

    sequences: dict[str, list[int]] = {c: [] for c in features}
    imputed: set[str] = set()
    for i, step in enumerate(steps):
        for column in step_columns(step.type, step.options, step.columns, features, numeric):
            sequences[column].append(i)
            if step.type == "impute":
                imputed.add(column)
    branches: dict[tuple[bool, tuple[int, ...]], list[str]] = {}
    for column in features:
        guard = not model_accepts_nan and column in numeric and column not in imputed
        branches.setdefault((guard, tuple(sequences[column])), []).append(column)

    transformers = []
    for n, ((guard, sequence), columns) in enumerate(branches.items()):
        parts = []
        if guard:
            parts.append(("missing_guard", SimpleImputer(strategy="median", keep_empty_features=True)))
        for i in sequence:
            step = steps[i]
            cls = import_class(STEPS[step.type].class_path)
            parts.append((f"{i}_{step.type}", cls(**step_options(STEPS[step.type], step.options))))
        transformer = Pipeline(parts) if parts else "passthrough"
        transformers.append((f"columns_{n}", transformer, columns))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False).set_output(transform="default")
