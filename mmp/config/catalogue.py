"""What a recipe can name, and what `mmp list` prints.

The vocabulary of recipes lives here, in the configuration stage, so the compiler can check a
recipe without importing training code: preprocessing step types (name -> transformer class),
metrics per task (name -> direction), and the listings of models, recipes and envs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator


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


@dataclass(frozen=True)
class Metric:
    summary: str
    greater_is_better: bool


METRICS: dict[str, dict[str, Metric]] = {
    "classification": {
        "accuracy": Metric("share of correct labels", True),
        "precision": Metric("precision (binary: positive class; multi-class: macro average)", True),
        "recall": Metric("recall (binary: positive class; multi-class: macro average)", True),
        "f1": Metric("F1 score (binary: positive class; multi-class: macro average)", True),
        "roc_auc": Metric("area under the ROC curve (multi-class: one-vs-rest, macro)", True),
        "log_loss": Metric("cross-entropy of the predicted probabilities", False),
        "brier": Metric("Brier score: mean squared error of the predicted probabilities", False),
    },
    "regression": {
        "rmse": Metric("root mean squared error", False),
        "mae": Metric("mean absolute error", False),
        "r2": Metric("coefficient of determination", True),
        "mape": Metric("mean absolute percentage error", False),
    },
    "clustering": {
        "silhouette": Metric("mean silhouette coefficient", True),
        "davies_bouldin": Metric("Davies-Bouldin index", False),
    },
    "timeseries": {  # per series, then averaged over series (and backtest windows)
        "mase": Metric("mean absolute scaled error: MAE over the in-sample seasonal-naive MAE (< 1 beats it)", False),
        "mae": Metric("mean absolute error", False),
        "rmse": Metric("root mean squared error", False),
        "smape": Metric("symmetric mean absolute percentage error, in [0, 2]", False),
        "mape": Metric("mean absolute percentage error (undefined where the actual is 0)", False),
    },
    "causal": {  # the ATE and its confidence interval are always reported beside these
        "auuc": Metric("area under the uplift curve, normalised; random targeting scores 0.5", True),
        "qini": Metric("Qini coefficient: area between the Qini curve and random targeting", True),
    },
}

DEFAULT_METRICS = {
    "classification": ["accuracy", "f1", "roc_auc", "log_loss"],
    "regression": ["rmse", "mae", "r2"],
    "clustering": ["silhouette", "davies_bouldin"],
    "timeseries": ["mase", "mae", "rmse", "smape"],
    "causal": ["auuc", "qini"],
}


@dataclass(frozen=True)
class QuantileLoss:
    """How a regressor fits one quantile: the params that select its quantile loss, and the one that takes q."""

    params: dict[str, Any]
    quantile_param: str

    def for_quantile(self, q: float) -> dict[str, Any]:
        return {**self.params, self.quantile_param: q}


# Regressors that `quantiles:` can use (one fitted model per quantile): class path -> its quantile loss.
QUANTILE_LOSSES: dict[str, QuantileLoss] = {
    "sklearn.ensemble.GradientBoostingRegressor": QuantileLoss({"loss": "quantile"}, "alpha"),
    "sklearn.ensemble.HistGradientBoostingRegressor": QuantileLoss({"loss": "quantile"}, "quantile"),
    "sklearn.linear_model.QuantileRegressor": QuantileLoss({}, "quantile"),
    "lightgbm.LGBMRegressor": QuantileLoss({"objective": "quantile"}, "alpha"),
    "xgboost.XGBRegressor": QuantileLoss({"objective": "reg:quantileerror"}, "quantile_alpha"),
}


def quantile_loss(cls: Any) -> QuantileLoss | None:
    """The quantile loss of `cls` (a class or its ClassFacts), or of the listed class it derives from;
    None when it has none."""
    from mmp.config.class_facts import ClassFacts

    by_name = {(path.split(".")[0], path.rpartition(".")[2]): loss for path, loss in QUANTILE_LOSSES.items()}
    lineage = cls.lineage if isinstance(cls, ClassFacts) else [(k.__module__, k.__name__) for k in cls.__mro__]
    for module, name in lineage:
        loss = by_name.get((module.split(".")[0], name))
        if loss is not None:
            return loss
    return None


def _table(rows: list[tuple[str, ...]]) -> Iterator[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        yield "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()


def models() -> Iterator[str]:
    """Every model class a recipe can name, with the presets (`model=NAME`) that use it."""
    from mmp.config.estimators import KIND_FOR_TASK, catalogue
    from mmp.config.model_presets import preset_classes, preset_files

    presets: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for name, path in preset_files(Path(os.environ.get("MMP_CONF_DIR") or "conf")).items():
        for task, class_path in preset_classes(path).items():
            if name not in presets.setdefault(class_path, []):
                presets[class_path].append(name)
            kinds.setdefault(class_path, KIND_FOR_TASK.get(task, "?"))
    rows = [(path, kind, source, ", ".join(presets.pop(path, []))) for path, kind, source in catalogue()]
    rows += [(path, kinds[path], "preset", ", ".join(names)) for path, names in sorted(presets.items())]
    rows += [(path, kind, source, "") for path, kind, source in task_models()]
    yield from _table([("CLASS PATH", "KIND", "SOURCE", "PRESET")] + rows)
    yield ""
    yield "task: timeseries also takes any regressor above: mlforecast turns it into a multi-series forecaster"
    yield "over forecast.lags, rolling_windows, date_features and differences."


# The tasks whose models are not scikit-learn estimators: task -> (registry "module:NAME", kind, extra).
TASK_MODELS = {
    "timeseries": ("mmp.config.forecast_checks:FORECASTERS", "forecaster", "forecast-extras"),
    "causal": ("mmp.config.causal_checks:CAUSAL_LEARNERS", "causal learner", "causal-extras"),
}


def task_models() -> list[tuple[str, str, str]]:
    """(class path, kind, how to get it) for the forecasters and causal learners a recipe can name."""
    import importlib

    rows = []
    for registry, kind, extra in TASK_MODELS.values():
        module, name = registry.split(":")
        rows += [(path, kind, f"mmp[{extra}]") for path in getattr(importlib.import_module(module), name)]
    return rows


def preprocessors() -> Iterator[str]:
    rows = [("TYPE", "DEFAULT COLUMNS", "CLASS", "WHAT IT DOES")]
    rows += [(name, s.default_columns, s.class_path, s.summary) for name, s in STEPS.items()]
    yield from _table(rows)


def metrics() -> Iterator[str]:
    rows = [("TASK", "METRIC", "BETTER", "DEFAULT", "WHAT IT MEASURES")]
    for task, by_name in METRICS.items():
        for name, metric in by_name.items():
            rows.append((task, name, "higher" if metric.greater_is_better else "lower",
                         "yes" if name in DEFAULT_METRICS[task] else "", metric.summary))
    yield from _table(rows)


def _yaml_files(folder: Path) -> list[Path]:
    """YAML files below `folder`, skipping hidden entries (a ConfigMap's ..data and ..2024_... dirs)."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, f) for f in sorted(files) if f.endswith((".yaml", ".yml")) and not f.startswith(".")]
    return found


def recipes() -> Iterator[str]:
    import yaml

    folder = Path(os.environ.get("MMP_RECIPES_DIR") or "recipes")
    rows = [("RECIPE", "TASK", "MODEL")]
    for path in _yaml_files(folder):
        try:
            recipe = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            recipe = {"task": "(unreadable yaml)"}
        model = recipe.get("model") if isinstance(recipe.get("model"), dict) else {}
        option = path.relative_to(folder).with_suffix("").as_posix()
        rows.append((option, str(recipe.get("task", "?")), str(model.get("class_path", "?"))))
    yield from _table(rows)


def envs() -> Iterator[str]:
    folder = Path(os.environ.get("MMP_CONF_DIR") or "conf") / "env"
    for path in _yaml_files(folder):
        yield path.relative_to(folder).with_suffix("").as_posix()


LISTINGS: dict[str, Callable[[], Iterator[str]]] = {
    "models": models, "preprocessors": preprocessors, "metrics": metrics, "recipes": recipes, "envs": envs,
}
