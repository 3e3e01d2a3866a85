"""Preprocessing steps a recipe can name, and how they compile into one scikit-learn transformer.

`preprocess:` is an ordered list of steps; each step applies to its `columns` (default: the
columns of the dtype it is meant for). Columns that share the same sequence of steps become one
branch `Pipeline` of a `ColumnTransformer`, so the whole thing is a single fit/transform object.
"""

from __future__ import annotations

from mmp.config.catalogue import STEPS, step_columns, step_options


def build_preprocessor(steps: list, features: list[str], numeric: set[str], model_accepts_nan: bool):
    """One ColumnTransformer for the recipe's ordered steps.

    Each column gets the steps that name it, in recipe order; columns sharing a sequence share
    one branch Pipeline. Numeric columns with no `impute` step get a median imputer first when
    the model cannot take missing values, so a missing value at prediction time never crashes.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    from mmp.config.estimators import import_class

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
