"""The stages of a timeseries pipeline: load series -> split in time -> backtest -> refit on all -> evaluate -> log.

Every series is cut in time, never at random: its last `horizon` steps are the test window, and
`windows` rolling origins before them are the validation backtest. The seasonal-naive baseline is
backtested beside the model, so the run shows whether the model beats it. The logged model is
refit on every row and forecasts the `horizon` steps after the data's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmp.config.spec import RunSpec
from mmp.errors import ConfigError, Problem
from mmp.training.pipeline import Pipeline, TrainState

SETUP = "forecast_setup"  # the ForecastSetup that LoadSeries builds, kept in state.inputs for later stages


def forecast_stages(spec: RunSpec, pipeline: Pipeline) -> list:
    """The stage objects of a timeseries pipeline."""
    from mmp.training.forecast_log import LogForecast

    return [LoadSeries(spec), SplitSeries(spec), Backtest(spec), FitForecaster(spec),
            EvaluateForecast(spec, pipeline.metrics, pipeline.primary_metric),
            LogForecast(spec, pipeline.tracking_uri, pipeline.experiment)]


def _model_words(spec: RunSpec) -> str:
    from mmp.config.estimators import import_class
    from mmp.config.forecast_checks import forecaster_kind

    f = spec.forecast
    if forecaster_kind(import_class(spec.model.class_path)) == "statistical":
        season = f.season_length or "from the frequency"
        return f"statsforecast {spec.model.class_path.rpartition('.')[2]} (season_length {spec.model.params.get('season_length', season)})"
    features = [f"lags {f.lags}" if f.lags else "", f"rolling means {f.rolling_windows}" if f.rolling_windows else "",
                f"date features {f.date_features}" if f.date_features else "",
                f"differences {f.differences}" if f.differences else "",
                f"exogenous {spec.data.features}" if spec.data.features else ""]
    return f"mlforecast over {spec.model.class_path} with {', '.join(x for x in features if x) or 'no features'}"


@dataclass
class LoadSeries:
    """Read the data; check columns, times, gaps, duplicates and series lengths (exit 2 before any run)."""

    spec: RunSpec
    name: str = "load"
    opens_run: bool = False

    def describe(self) -> str:
        from mmp.training.source import source_label

        data, f = self.spec.data, self.spec.forecast
        source = source_label(self.spec) or "(no source: pass -d URI)"
        return (f"{source}; series {data.entity_columns}, time {data.time_column} every {f.frequency or '(inferred)'}, "
                f"target {data.target}; exogenous: {', '.join(data.features or []) or 'none'}")

    def run(self, state: TrainState) -> str:
        from mmp.config.data_checks import column_problems
        from mmp.training.source import load_data, source_label

        spec, origin = self.spec, state.pipeline.origin
        frame, state.query = load_data(spec)
        problems = column_problems(spec, frame, origin=origin)
        if problems:
            raise ConfigError(problems, source=f"data at {source_label(spec)}")
        long, setup, dropped = series_frame(spec, frame, origin)
        if dropped:
            state.pipeline.progress.note(f"dropped {dropped} rows with no '{spec.data.target}'")
        state.frame = frame
        state.features = state.numeric = list(setup.exogenous)
        state.inputs = {"all": long, SETUP: setup}
        return (f"{long[long.columns[0]].nunique()} series, {len(long)} rows every {setup.frequency} "
                f"from {source_label(spec)}")


def series_frame(spec: RunSpec, frame: Any, origin: Any) -> tuple[Any, Any, int]:
    """The data in the libraries' long form (unique_id, ds, y, exogenous...), its ForecastSetup and the
    count of rows dropped for having no target; ConfigError naming the column and series otherwise."""
    import pandas as pd

    from mmp.config.data_checks import feature_columns
    from mmp.models.forecast import ID, TARGET, TIME, InputError, parse_times, series_ids, series_problems
    from mmp.training.backtest import ForecastSetup

    data = spec.data
    exogenous = feature_columns(spec, frame.columns)
    table = frame.select([*dict.fromkeys([*data.entity_columns, data.time_column, data.target, *exogenous])]).to_pandas()
    present = table[data.target].notna()
    table = table[present]

    def fail(path: str, message: str, allowed: str | None = None) -> ConfigError:
        return ConfigError([Problem(path, message, allowed, origin(path))], source=f"data for {spec.name}")

    try:
        times = parse_times(table[data.time_column], data.time_column)
    except InputError as exc:
        raise fail("data.time_column", str(exc)) from None
    long = pd.DataFrame({ID: series_ids(table, data.entity_columns).to_numpy(), TIME: times.to_numpy(),
                         TARGET: pd.to_numeric(table[data.target], errors="coerce").to_numpy(dtype="float64")})
    for column in exogenous:
        values = pd.to_numeric(table[column], errors="coerce")
        if (values.isna() & table[column].notna()).any():
            raise fail("data.features", f"column '{column}' is not numeric; exogenous features must be numbers")
        long[column] = values.to_numpy(dtype="float64")
    long = long.sort_values([ID, TIME], kind="stable").reset_index(drop=True)
    frequency = spec.forecast.frequency or _inferred(long)
    if frequency is None:
        raise fail("forecast.frequency", f"cannot infer the frequency of '{data.time_column}'",
                   "set forecast.frequency to a pandas offset alias (D, W-SUN, MS, QS, ...)")
    setup = ForecastSetup(spec, frequency, exogenous)
    problems = series_problems(long, frequency, setup.min_length, data.time_column)
    if problems:
        shown = [Problem("data.time_column", p, None, origin("data.time_column")) for p in problems[:20]]
        if any("time steps; at least" in p for p in problems):
            shown.append(Problem("forecast", f"{setup.min_length} steps = warm-up {setup.warmup} + "
                                 f"{spec.forecast.windows} backtest window(s) + the test window of {setup.horizon}",
                                 "lower forecast.horizon or forecast.windows, or give longer series", origin("forecast")))
        raise ConfigError(shown, source=f"data for {spec.name}")
    return long, setup, int((~present).sum())


def _inferred(long: Any) -> str | None:
    import pandas as pd

    first = long[long["unique_id"] == long["unique_id"].iloc[0]]["ds"]
    try:
        return pd.infer_freq(pd.DatetimeIndex(first)) if len(first) >= 3 else None
    except (TypeError, ValueError):
        return None


@dataclass
class SplitSeries:
    """Per series: the last `horizon` steps are test; `windows` backtest windows before them are validation."""

    spec: RunSpec
    name: str = "split"
    opens_run: bool = False

    def describe(self) -> str:
        f = self.spec.forecast
        return (f"temporal per series: test = the last {f.horizon} steps of each series; validation = {f.windows} "
                f"rolling-origin window(s) of {f.horizon} steps, {f.step_size or f.horizon} apart, before it "
                "(never a random split)")

    def run(self, state: TrainState) -> str:
        long, h = state.inputs["all"], self.spec.forecast.horizon
        position = long.groupby("unique_id").cumcount(ascending=False)
        state.inputs["history"] = long[position >= h].reset_index(drop=True)  # what the test forecast sees
        state.inputs["test"] = long[position < h].reset_index(drop=True)
        return f"history {len(state.inputs['history'])} rows / test {len(state.inputs['test'])} rows"


@dataclass
class Backtest:
    """Rolling-origin backtest of the model and the seasonal-naive baseline (the libraries' cross_validation)."""

    spec: RunSpec
    name: str = "backtest"
    opens_run: bool = True

    def describe(self) -> str:
        return (f"{_model_words(self.spec)} vs statsforecast SeasonalNaive: {self.spec.forecast.windows} validation "
                "window(s), then fit on everything before the test window and forecast it")

    def run(self, state: TrainState) -> str:
        from mmp.training.backtest import backtest

        setup = state.inputs[SETUP]
        try:  # the first fit: a forecaster checks its settings only when it fits
            state.predictions["validation"] = backtest(setup, state.inputs["history"], self.spec.forecast.windows)
        except (ValueError, TypeError) as exc:
            from mmp.errors import UserError

            raise UserError(f"model.params: {self.spec.model.class_path} cannot fit with these settings: "
                            f"{str(exc).strip().splitlines()[0]}") from exc
        state.predictions["test"] = backtest(setup, state.inputs["all"], 1)
        return (f"{self.spec.forecast.windows} validation window(s) and the test window, "
                f"{len(state.predictions['validation'])} + {len(state.predictions['test'])} forecasts")


@dataclass
class FitForecaster:
    """Refit the forecaster on every row: the logged model forecasts the `horizon` steps after the data."""

    spec: RunSpec
    name: str = "fit"
    opens_run: bool = True

    def describe(self) -> str:
        f = self.spec.forecast
        statistical = _model_words(self.spec).startswith("statsforecast")
        levels = f", {f.level}% intervals" if f.level and statistical else ", no intervals" if not statistical else ""
        return f"{_model_words(self.spec)} on all rows; forecasts {f.horizon} steps after each series' end{levels}"

    def run(self, state: TrainState) -> str:
        from mmp.models.forecast import ForecastModel, kept_forecast, series_ids

        spec, setup, long = self.spec, state.inputs[SETUP], state.inputs["all"]
        fitted = setup.fit(setup.forecaster(), long)
        firsts = state.frame.to_pandas().drop_duplicates(spec.data.entity_columns)
        entities = dict(zip(series_ids(firsts, spec.data.entity_columns),
                            firsts[spec.data.entity_columns].itertuples(index=False, name=None)))
        model = ForecastModel(fitted, setup.kind, spec.data.entity_columns, spec.data.time_column, spec.data.target,
                              setup.exogenous, setup.frequency, setup.horizon, setup.levels, setup.warmup, None,
                              entities)
        model.stored = kept_forecast(model) if not setup.exogenous else long.iloc[0:0]
        state.model = model
        return f"{spec.model.class_path} on {len(long)} rows of {long['unique_id'].nunique()} series"


@dataclass
class EvaluateForecast:
    """mase, mae, ... per series and window, for the model and the seasonal-naive baseline."""

    spec: RunSpec
    metrics: list[str]
    primary_metric: str
    name: str = "evaluate"
    opens_run: bool = True

    def describe(self) -> str:
        return (f"{', '.join(self.metrics)} per series and window on validation and test, beside the seasonal-naive "
                f"baseline (<metric>_seasonal_naive); primary validation_{self.primary_metric} (lower is better)")

    def run(self, state: TrainState) -> str:
        import pandas as pd

        from mmp.training.backtest import scores

        setup, history = state.inputs[SETUP], state.inputs["history"]
        tables = []
        for split in ("validation", "test"):
            table = scores(state.predictions[split], history, self.metrics, setup.season)
            values = table.drop(columns=[c for c in ("unique_id", "cutoff") if c in table.columns])
            state.metrics.update({f"{split}_{k}": float(v) for k, v in values.mean().items()})
            tables.append(table.groupby("unique_id").mean(numeric_only=True).add_prefix(f"{split}_"))
        state.predictions["per_series"] = pd.concat(tables, axis=1).reset_index()
        state.primary_key = f"validation_{self.primary_metric}"
        m = self.primary_metric
        return "; ".join(f"{split} {m} {state.metrics[f'{split}_{m}']:.4g} (seasonal naive "
                         f"{state.metrics[f'{split}_{m}_seasonal_naive']:.4g})" for split in ("validation", "test"))
