"""`mmp train`: run a compiled pipeline (load -> split -> preprocess+fit -> evaluate) and log it to MLflow."""

from __future__ import annotations

import hashlib
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from mmp import __version__
from mmp.compiler import column_problems, feature_columns
from mmp.errors import ConfigError, UserError
from mmp.logged_model import MODEL_NAME
from mmp.metrics import METRICS, compute
from mmp.pipeline import Pipeline
from mmp.split import SPLITS, split

CONFIG_ARTIFACT = "mmp/config.yaml"


@dataclass
class TrainResult:
    """What a training run produced: its id and metrics, and the value a sweeper optimises."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    primary_key: str = ""

    @property
    def primary(self) -> float | None:
        return self.metrics.get(self.primary_key)


class Progress:
    """One line per stage on stderr, with row counts and timings; silent with -q."""

    def __init__(self, quiet: bool = False):
        from rich.console import Console

        self.console = Console(stderr=True, quiet=quiet, highlight=False, soft_wrap=True)
        self.started = time.perf_counter()

    def stage(self, name: str, detail: str, since: float) -> float:
        now = time.perf_counter()
        self.console.print(f"[green]✓[/] {name:<10} {detail} [dim]({now - since:.2f} s)[/]")
        return now

    def note(self, text: str) -> None:
        self.console.print(f"  [dim]{text}[/]")


def train(pipeline: Pipeline, quiet: bool = False, sweep: Any = None) -> TrainResult:
    """Train, evaluate and log one run; return its id and metrics. Bad data is a UserError (exit 2),
    found before any run is created; a failure after that marks the run FAILED."""
    import mlflow

    from mmp import tracking
    from mmp.data import is_numeric, read_frame

    spec = pipeline.spec
    progress = Progress(quiet)
    if sweep is not None:
        progress.console.print(f"[bold]job {sweep.describe_job()}[/]")
    t = time.perf_counter()
    uri = tracking.connect(spec.mlflow.tracking_uri)
    experiment_id = tracking.experiment_id(pipeline.experiment, spec.mlflow.tracking_uri)
    t = progress.stage("tracking", f"{pipeline.tracking_uri} -> experiment '{pipeline.experiment}'", t)

    if not spec.data.source:
        raise UserError("data.source: no training data; set data.source in the recipe or pass -d URI")
    frame = read_frame(spec.data.source, spec.data.format, spec.source.storage_options)
    problems = column_problems(spec, frame)
    if problems:
        raise ConfigError(problems, source=f"data at {spec.data.source}")
    if spec.data.target:
        dropped = frame[spec.data.target].null_count()
        frame = frame.filter(frame[spec.data.target].is_not_null())
        if dropped:
            progress.note(f"dropped {dropped} rows with no '{spec.data.target}'")
    features = feature_columns(spec, frame.columns)
    numeric = [c for c in features if is_numeric(frame.schema[c])]
    t = progress.stage("load", f"{frame.height} rows x {frame.width} columns from {spec.data.source}", t)

    parts = split(frame, spec.data.split, spec.data.target)
    sizes = {name: part.height for name, part in parts.items()}
    t = progress.stage("split", f"{spec.data.split.strategy}: " + " / ".join(f"{n} {sizes[n]}" for n in SPLITS), t)

    tags = _tags(pipeline, frame)
    parent = sweep.parent_for(pipeline, experiment_id) if sweep is not None else None
    with mlflow.start_run(experiment_id=experiment_id, tags=tags, parent_run_id=parent) as run:
        model, inputs, targets, classes = _fit(pipeline, parts, features, numeric)
        t = progress.stage("fit", f"{spec.model.class_path} on {sizes['train']} rows, {len(features)} features", t)

        metrics, predictions = _evaluate(pipeline, model, inputs, targets, classes)
        primary_split = "validation" if sizes["validation"] else "test"
        primary_key = f"{primary_split}_{pipeline.primary_metric}"
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k.startswith(primary_split))
        t = progress.stage("evaluate", shown or "no metric is defined on these splits", t)

        _log(pipeline, model, inputs, targets, predictions, classes, features, numeric, metrics, sizes)
        t = progress.stage("log", f"run {run.info.run_id} (params, metrics, tags, model, config, plots)", t)
    result = TrainResult(run.info.run_id, experiment_id, uri, metrics, primary_key)
    if sweep is not None:
        sweep.add(pipeline, result)
    return result


def _fit(pipeline: Pipeline, parts: dict, features: list[str], numeric: list[str]):
    import numpy as np
    from sklearn.pipeline import Pipeline as SkPipeline

    from mmp.estimators import import_class
    from mmp.preprocess import build_preprocessor
    from mmp.pyfunc import model_input
    from mmp.seeding import seed_everything

    spec = pipeline.spec
    seed_everything(spec.data.split.seed)
    estimator = import_class(spec.model.class_path)(**spec.model.params)
    preprocessor = build_preprocessor(spec.preprocess, features, set(numeric), _accepts_nan(estimator))
    model = SkPipeline([("preprocess", preprocessor), ("model", estimator)])
    inputs = {name: model_input(part.to_pandas(), features, numeric) for name, part in parts.items()}
    targets = {name: part[spec.data.target].to_numpy() for name, part in parts.items()} if spec.data.target else {}
    classes = None
    if spec.task == "clustering":
        model.fit(inputs["train"])
    elif spec.task == "classification":
        # Every classifier learns class codes 0..k-1 (xgboost insists); the pyfunc maps them back.
        labels, codes = np.unique(targets["train"], return_inverse=True)
        classes = [label.item() if hasattr(label, "item") else label for label in labels]
        model.fit(inputs["train"], codes)
    else:
        model.fit(inputs["train"], targets["train"])
    return model, inputs, targets, classes


def _accepts_nan(estimator: Any) -> bool:
    try:
        return bool(estimator.__sklearn_tags__().input_tags.allow_nan)
    except Exception:  # an estimator without scikit-learn tags: be safe, impute
        return False


def _evaluate(pipeline: Pipeline, model: Any, inputs: dict, targets: dict, classes: list | None):
    from mmp.pyfunc import prediction_frame

    task = pipeline.spec.task
    metrics, predictions = {}, {}
    for name, X in inputs.items():
        if len(X) == 0:
            continue
        predicted = prediction_frame(model, X, task, classes)
        predictions[name] = predicted
        proba = _probabilities(predicted, classes) if task == "classification" else None
        values = compute(
            task, pipeline.metrics, y_true=targets.get(name), y_pred=predicted["prediction"].to_numpy(), proba=proba,
            classes=classes, X=model[:-1].transform(X) if task == "clustering" else None,
            labels=predicted["prediction"].to_numpy() if task == "clustering" else None,
        )
        metrics.update({f"{name}_{metric}": value for metric, value in values.items()})
    return metrics, predictions


def _probabilities(predicted: Any, classes: list | None):
    """The (rows, classes) probability matrix back from the prediction frame's columns."""
    import numpy as np

    if "probability" in predicted:
        positive = predicted["probability"].to_numpy()
        return np.column_stack([1 - positive, positive])
    columns = [f"probability_{c}" for c in classes or []]
    return predicted[columns].to_numpy() if columns and all(c in predicted for c in columns) else None


def _tags(pipeline: Pipeline, frame: Any) -> dict[str, str]:
    from mmp.masking import scrub

    spec = pipeline.spec
    tags = {
        "mmp.recipe": pipeline.recipe,
        "mmp.env": pipeline.env,
        "mmp.task": spec.task,
        "mmp.model_class": spec.model.class_path,
        "mmp.version": __version__,
        "mmp.data_source": scrub(spec.data.source or ""),
        "mmp.data_fingerprint": fingerprint(frame),
        "mmp.primary_metric": pipeline.primary_metric,
        "mlflow.runName": f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}",
    }
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def fingerprint(frame: Any) -> str:
    """A short, stable hash of a dataset's columns, types and values."""
    digest = hashlib.sha256(repr(list(frame.schema.items())).encode())
    digest.update(frame.hash_rows(seed=42).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _log(pipeline: Pipeline, model: Any, inputs: dict, targets: dict, predictions: dict, classes: list | None,
         features: list[str], numeric: list[str], metrics: dict, sizes: dict) -> None:
    import mlflow
    from omegaconf import OmegaConf

    from mmp import plots
    from mmp.spec import RECIPE_KEYS

    recipe = {k: v for k, v in pipeline.config.items() if k in RECIPE_KEYS}
    params = dict(_flatten(recipe))
    params.update({f"split.{name}_rows": rows for name, rows in sizes.items()})
    items = list(params.items())
    for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        mlflow.log_params({k: str(v)[:6000] for k, v in items[i:i + 100]})
    mlflow.log_metrics(metrics)
    mlflow.log_text(OmegaConf.to_yaml(OmegaConf.create(pipeline.config)), CONFIG_ARTIFACT)
    report_split = "test" if "test" in predictions else next(iter(predictions))
    for name, figure in plots.figures(pipeline.spec.task, model, inputs[report_split], targets.get(report_split),
                                      predictions[report_split], classes):
        mlflow.log_figure(figure, f"plots/{name}.png")
        plots.close(figure)
    _log_model(pipeline, model, inputs["train"], features, numeric, classes)


def _flatten(node: Any, prefix: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}{key}.")
    elif isinstance(node, list) and node and any(isinstance(v, (dict, list)) for v in node):
        for i, value in enumerate(node):
            yield from _flatten(value, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), node


def _log_model(pipeline: Pipeline, model: Any, train_inputs: Any, features: list[str], numeric: list[str],
               classes: list | None) -> None:
    import tempfile

    import cloudpickle
    import mlflow
    from mlflow.models import infer_signature

    from mmp import mlflow_model, pyfunc
    from mmp.requirements import pip_requirements

    spec = pipeline.spec
    tabular = pyfunc.TabularModel(model, spec.task, features, numeric, classes)
    example = train_inputs.head(5)
    with warnings.catch_warnings():  # integer outputs (cluster ids, labels) never hold missing values
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        signature = infer_signature(example, tabular.predict_frame(example))
    modules = [pyfunc, mlflow_model] + _own_modules(model)
    for module in modules:  # pickle mmp's code into the model, so loading it needs no mmp install
        cloudpickle.register_pickle_by_value(module)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            artifact = f"{tmp}/model.pkl"
            with open(artifact, "wb") as f:
                cloudpickle.dump(tabular, f)
            mlflow.pyfunc.log_model(
                name=MODEL_NAME,
                python_model=mlflow_model.MlflowModel(),
                artifacts={pyfunc.MODEL_ARTIFACT: artifact},
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(model),
                registered_model_name=spec.mlflow.registered_model_name,
                metadata={"mmp": {"task": spec.task, "features": features, "numeric": numeric,
                                  "entity_columns": spec.data.entity_columns, "target": spec.data.target,
                                  "classes": classes, "recipe": pipeline.recipe, "name": spec.name,
                                  "primary_metric": pipeline.primary_metric, "version": __version__}},
            )
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)


def _own_modules(model: Any) -> list:
    """mmp modules whose classes sit inside the fitted pipeline (e.g. the torch MLP)."""
    import sys

    names = {type(step).__module__ for _, step in model.steps}
    return [sys.modules[n] for n in names if n.startswith("mmp.") and n in sys.modules]
