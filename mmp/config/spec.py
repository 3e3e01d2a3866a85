"""The typed spec: what a resolved config must look like, as pydantic models.

Recipe keys (what to learn) and env keys (where and how) sit side by side at the root of the
resolved config; `RunSpec` is both, `EnvSpec` alone is what batch inference and serving read.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TASKS = ("classification", "regression", "clustering", "timeseries", "causal")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SplitSpec(_Strict):
    strategy: Literal["random", "stratified", "temporal"] | None = None  # None: stratified for classification
    train: float = 0.7
    calibration: float = 0.0  # rows held out of training to calibrate a classifier (see CalibrationSpec)
    validation: float = 0.15
    test: float = 0.15
    seed: int = 42
    time_column: str | None = None


class DataSpec(_Strict):
    source: str | None = None  # a data file URI, or a query file ending .sql (see README "SQL sources")
    query: str | None = None  # an inline SQL query, instead of `source`
    params: dict[str, Any] = Field(default_factory=dict)  # a query's {{ template parameters }}, with defaults
    format: Literal["csv", "parquet", "json"] | None = None  # None: from the file extension
    entity_columns: list[str] = Field(default_factory=list)
    target: str | None = None
    features: list[str] | None = None  # None: every column but entity columns, target, time and treatment
    split: SplitSpec = Field(default_factory=SplitSpec)
    time_column: str | None = None  # timeseries: the time index of each series (entity_columns name the series)
    treatment: str | None = None  # causal: the treatment column (0 = control, 1 = treated; or several arms)
    control: str | int | None = None  # causal: the control arm's value (None: 0, where the arms are integers)


class StepSpec(BaseModel):
    """One preprocessing step: a registered `type`, the columns it applies to, its options."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: str
    columns: list[str] | None = None  # None: the step's default columns by dtype

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ModelSpec(_Strict):
    class_path: str
    params: dict[str, Any] = Field(default_factory=dict)


class EvaluateSpec(_Strict):
    metrics: list[str] | None = None  # None: the task's defaults
    primary_metric: str | None = None  # None: the first metric


class CalibrationSpec(_Strict):
    """Calibrate a classifier's probabilities with scikit-learn's CalibratedClassifierCV: on the
    held-out `data.split.calibration` rows (cv: null), or by k-fold cross-validation on train (cv: k)."""

    method: Literal["sigmoid", "isotonic"] = "sigmoid"
    cv: int | None = None  # None: the held-out calibration split


class SearchParamSpec(_Strict):
    """One tuned model parameter: an int or float range (optionally log-scaled or stepped), or a
    list of categorical choices. Optuna's suggest_int / suggest_float / suggest_categorical."""

    type: Literal["int", "float", "categorical"]
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = None
    log: bool = False
    choices: list[Any] | None = None


class TuneSpec(_Strict):
    """Hyperparameter search with Optuna. Tuning runs when `n_trials` or `timeout` is set; `params`
    alone is a search space kept for later (a model preset's default space)."""

    n_trials: int | None = Field(None, gt=0)
    timeout: float | None = Field(None, gt=0)  # seconds, per process
    metric: str | None = None  # None: evaluate.primary_metric
    direction: Literal["maximize", "minimize"] | None = None  # None: from the metric
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int | None = None  # None: data.split.seed
    pruner: Literal["median", "hyperband", "none"] = "median"
    cv: int | None = None  # k-fold cross-validation on train instead of the validation split
    refit: Literal["train", "train+validation"] = "train"
    storage: str | None = None  # an Optuna RDB URL shared by many processes; None: in memory
    study: str | None = None  # the study's name in `storage`; None: the recipe's name
    params: dict[str, SearchParamSpec] = Field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.n_trials is not None or self.timeout is not None


class ForecastSpec(_Strict):
    """Timeseries: how far ahead to forecast, at which frequency, and what an ML forecaster sees.

    Statistical models (statsforecast) use `season_length`; machine-learning forecasters
    (mlforecast over any regressor) use `lags`, `rolling_windows`, `date_features`, `differences`.
    Evaluation backtests `windows` rolling origins, `step_size` apart, before the test window."""

    horizon: int = Field(gt=0)
    frequency: str | None = None  # a pandas offset alias (D, W-SUN, MS, QS, YS, h, ...); None: inferred
    season_length: int | None = Field(None, gt=0)  # None: from the frequency (12 monthly, 4 quarterly, 7 daily, ...)
    lags: list[int] = Field(default_factory=list)
    rolling_windows: list[int] = Field(default_factory=list)  # rolling means of the target, lagged by one step
    date_features: list[str] = Field(default_factory=list)  # month, quarter, year, dayofweek, dayofyear, hour, ...
    differences: list[int] = Field(default_factory=list)  # difference the target before learning (1, or the season)
    windows: int = Field(3, gt=0)  # backtest windows (rolling origin) on the rows before the test window
    step_size: int | None = Field(None, gt=0)  # between backtest origins; None: the horizon
    level: list[int] = Field(default_factory=lambda: [90])  # prediction interval levels, in percent


class RecipeSpec(_Strict):
    name: str
    task: Literal["classification", "regression", "clustering", "timeseries", "causal"]
    description: str | None = None
    data: DataSpec
    preprocess: list[StepSpec] = Field(default_factory=list)
    model: ModelSpec
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    calibration: CalibrationSpec | None = None  # classification only
    quantiles: list[float] | None = None  # regression only: one model per quantile, e.g. [0.05, 0.5, 0.95]
    forecast: ForecastSpec | None = None  # timeseries only
    tune: TuneSpec = Field(default_factory=TuneSpec)


class MlflowSpec(_Strict):
    tracking_uri: str | None = None  # None: MLFLOW_TRACKING_URI, else ./mlruns
    experiment: str | None = None  # None: the recipe's name
    registered_model_name: str | None = None


class SourceSpec(_Strict):
    storage_options: dict[str, Any] = Field(default_factory=dict)
    connection: str | None = None  # where queries run: a SQLAlchemy URL; None: an embedded DuckDB


class OutputSpec(_Strict):
    """Where batch predictions go: a file or folder (`path`, `format`), or a SQL table (`connection` + `table`)."""

    path: str = "predictions"
    format: Literal["parquet", "csv", "json"] = "parquet"
    chunk_rows: int = Field(100_000, gt=0)
    connection: str | None = None  # a SQLAlchemy URL (postgresql://user:${oc.env:PGPASSWORD}@host/db, duckdb:///f.duckdb)
    table: str | None = None  # [schema.]table in `connection`
    mode: Literal["replace", "append", "upsert"] = "replace"  # upsert: on the model's entity columns


class BatchingSpec(_Strict):
    """Adaptive batching: requests that queue while the model is busy are predicted together."""

    enabled: bool = True
    max_batch_size: int = Field(4096, gt=0)  # rows per model call: 1,000-row requests share calls too
    max_wait_ms: float = Field(0, ge=0)  # extra wait for companions before a call; 0: none


class CorsSpec(_Strict):
    enabled: bool = False
    allow_origins: list[str] = Field(default_factory=list)


class AuthSpec(_Strict):
    token_env: str | None = None  # name of the env var that holds the bearer token


SERVING_HOST_VAR = "MMP_SERVING_HOST"  # the image sets it to 0.0.0.0; a laptop keeps loopback


def default_host() -> str:
    """`serving.host` when the env does not say: $MMP_SERVING_HOST, else 127.0.0.1."""
    return os.environ.get(SERVING_HOST_VAR) or "127.0.0.1"


class ServingSpec(_Strict):
    host: str = Field(default_factory=default_host)
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, gt=0)
    timeout_s: float = Field(30, gt=0)
    max_batch_rows: int = Field(10_000, gt=0)
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    cors: CorsSpec = Field(default_factory=CorsSpec)
    auth: AuthSpec = Field(default_factory=AuthSpec)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    grace_period_s: float = Field(30, ge=0)
    # Serving `models:/NAME@alias`: re-resolve the alias every this many seconds and swap to a new
    # version without dropping requests; 0: resolve once at start.
    follow_alias_s: float = Field(0, ge=0)


class SparkSpec(_Strict):
    """Where `--engine spark` runs: a master URL (spark-submit's own master wins) and Spark conf."""

    master: str = "local[*]"
    app_name: str = "mmp-batch"
    conf: dict[str, Any] = Field(default_factory=dict)  # spark.* settings, e.g. spark.executor.memory: 4g
    jdbc_properties: dict[str, Any] = Field(default_factory=dict)  # user, password, driver for jdbc: sources


class BatchSpec(_Strict):
    """How `mmp batch-inference` runs: in this process (local) or on a Spark session (spark)."""

    engine: Literal["local", "spark"] = "local"
    spark: SparkSpec = Field(default_factory=SparkSpec)


class DriftThresholds(_Strict):
    """PSI limits: at `warn` a column is reported as shifting, at `alert` as drifted."""

    warn: float = Field(0.1, ge=0)
    alert: float = Field(0.25, ge=0)


class MonitoringSpec(_Strict):
    """Drift of incoming data and of predictions against the training split (PSI; mmp.models.drift)."""

    enabled: bool = True
    data_drift: DriftThresholds = Field(default_factory=DriftThresholds)
    prediction_drift: DriftThresholds = Field(default_factory=DriftThresholds)
    features: dict[str, DriftThresholds] = Field(default_factory=dict)  # per-feature limits
    min_rows: int = Field(100, ge=1)  # fewer rows than this: "insufficient_data", never an alert
    fail_on_alert: bool = False  # batch-inference exits 3 when any PSI reaches its alert limit
    window_rows: int = Field(1000, gt=0)  # serving: drift over the last this many rows


class PromotionGateSpec(_Strict):
    """`mmp promote` refuses a candidate that does not beat the alias's current holder."""

    enabled: bool = False
    metric: str | None = None  # None: the candidate run's primary metric (tag mmp.primary_metric)
    min_improvement: float = Field(0.0, ge=0)  # in the metric's units, in its better direction
    same_test_data: bool = True  # both runs must have been tested on the same rows


class RegistrySpec(_Strict):
    """The MLflow model registry lifecycle: `mmp promote`, `mmp models`."""

    gate: PromotionGateSpec = Field(default_factory=PromotionGateSpec)


class EnvironmentSpec(_Strict):
    """The seed's own key: a name for the environment (local, staging, production, ...)."""

    name: str | None = None


class EnvSpec(_Strict):
    environment: EnvironmentSpec = Field(default_factory=EnvironmentSpec)
    mlflow: MlflowSpec = Field(default_factory=MlflowSpec)
    source: SourceSpec = Field(default_factory=SourceSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    batch: BatchSpec = Field(default_factory=BatchSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    registry: RegistrySpec = Field(default_factory=RegistrySpec)


class RunSpec(RecipeSpec, EnvSpec):
    """A whole resolved config: one recipe and one env."""

    @model_validator(mode="after")
    def _default_split_strategy(self) -> "RunSpec":
        if self.data.split.strategy is None:
            strategies = {"classification": "stratified", "timeseries": "temporal"}
            self.data.split.strategy = strategies.get(self.task, "random")
        return self


RECIPE_KEYS = tuple(RecipeSpec.model_fields)
ENV_KEYS = tuple(EnvSpec.model_fields)


def defaults_of(model: type[BaseModel]) -> dict[str, Any]:
    """Every key of `model` that has a default, nested models included (required keys left out)."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if not field.is_required():
            value = field.get_default(call_default_factory=True)
            out[name] = value.model_dump() if isinstance(value, BaseModel) else value
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out[name] = defaults_of(annotation)
    return out
