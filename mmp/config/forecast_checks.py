"""Timeseries recipes: the `forecast` section, the series columns, and which forecasters a recipe can name.

A statistical model comes from Nixtla's statsforecast (`statsforecast.models.AutoETS`); any
scikit-learn style regressor becomes a multi-series forecaster through mlforecast, which builds lags,
rolling means, calendar features and differences for it. The checks import only the model class the
recipe names (as the tabular checks do), never statsforecast's fitting code.
"""

from __future__ import annotations

from typing import Any, Callable

from mmp.config.estimators import ImportProblem, estimator_kind, import_class
from mmp.errors import Problem, allowed_text

Origin = Callable[[str], "str | None"]

# The statsforecast models a recipe can name: class path -> what it is (printed by `mmp list models`).
FORECASTERS: dict[str, str] = {
    "statsforecast.models.AutoARIMA": "ARIMA with orders chosen by AICc (season_length)",
    "statsforecast.models.AutoETS": "exponential smoothing, error/trend/season chosen automatically (season_length)",
    "statsforecast.models.AutoTheta": "Theta method, variant chosen automatically (season_length)",
    "statsforecast.models.AutoCES": "complex exponential smoothing (season_length)",
    "statsforecast.models.MSTL": "multiple seasonal-trend decomposition by LOESS + a trend model (season_length)",
    "statsforecast.models.SeasonalNaive": "the value one season ago (season_length): the baseline",
    "statsforecast.models.Naive": "the last value",
    "statsforecast.models.HistoricAverage": "the mean of the history",
    "statsforecast.models.RandomWalkWithDrift": "the last value plus the average step",
    "statsforecast.models.WindowAverage": "the mean of the last window_size values",
    "statsforecast.models.SeasonalWindowAverage": "the mean of the same season over the last window_size seasons",
    "statsforecast.models.CrostonClassic": "intermittent demand (Croston)",
    "statsforecast.models.ADIDA": "intermittent demand, aggregated (ADIDA)",
    "statsforecast.models.IMAPA": "intermittent demand, multiple aggregations (IMAPA)",
}
REGRESSORS = "any scikit-learn style regressor (lightgbm.LGBMRegressor, sklearn.linear_model.Ridge, ...), via mlforecast"

DATE_FEATURES = ("year", "quarter", "month", "week", "day", "dayofweek", "dayofyear", "hour", "minute",
                 "is_month_start", "is_month_end", "is_quarter_start", "is_quarter_end", "is_year_start",
                 "is_year_end", "days_in_month")
ML_ONLY = ("lags", "rolling_windows", "date_features", "differences")  # what only an mlforecast model uses
EXTRA = "forecast-extras"


def forecaster_kind(cls: type) -> str | None:
    """'statistical' (a statsforecast model), 'regressor' (through mlforecast), or None."""
    if cls.__module__.split(".")[0] == "statsforecast":
        return "statistical" if hasattr(cls, "forecast") or hasattr(cls, "fit") else None
    return "regressor" if estimator_kind(cls) == "regressor" and hasattr(cls, "predict") else None


def season_for(frequency: str | None) -> int:
    """The usual season of a pandas frequency: 12 monthly, 4 quarterly, 7 daily, 24 hourly, ... (1 if none)."""
    if not frequency:
        return 1
    base = frequency.lstrip("0123456789").split("-")[0]
    seasons = {"MS": 12, "ME": 12, "M": 12, "BMS": 12, "BME": 12, "QS": 4, "QE": 4, "Q": 4, "BQS": 4, "BQE": 4,
               "W": 52, "D": 7, "B": 5, "h": 24, "H": 24, "min": 60, "T": 60, "s": 60, "S": 60}
    return seasons.get(base, 1)


def frequency_problem(frequency: str) -> str | None:
    """Why `frequency` is not a pandas offset alias, or None."""
    import pandas as pd

    try:
        pd.tseries.frequencies.to_offset(frequency)
    except (ValueError, TypeError) as exc:
        return str(exc).splitlines()[0]
    return None


def forecast_problems(config: dict[str, Any], origin: Origin) -> list[Problem]:
    """Everything wrong with a timeseries recipe that the schema cannot see, collected."""
    problems: list[Problem] = []

    def add(path: str, message: str, allowed: str | None = None) -> None:
        problems.append(Problem(path, message, allowed, origin(path)))

    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    forecast = config.get("forecast")
    if forecast is None:
        add("forecast", "a timeseries recipe needs a 'forecast' section",
            "add forecast: {horizon: 12, frequency: MS} (how many steps ahead, at which pandas frequency)")
    forecast = forecast if isinstance(forecast, dict) else {}
    if not data.get("time_column"):
        add("data.time_column", "a timeseries recipe needs the time column of its series", "e.g. data.time_column: month")
    entities = data.get("entity_columns")
    if isinstance(entities, list) and not entities:
        add("data.entity_columns", "no series id column",
            "give the column that names each series, even for one series (e.g. entity_columns: [series])")
    split = data.get("split") if isinstance(data.get("split"), dict) else {}
    if split.get("strategy") in ("random", "stratified"):
        add("data.split.strategy", f"a {split['strategy']} split would train on the future of the rows it tests",
            "timeseries split each series in time: remove data.split.strategy (or set it to temporal)")
    defaults = {"train": 0.7, "calibration": 0.0, "validation": 0.15, "test": 0.15}  # SplitSpec's, always composed in
    ratios = [key for key, default in defaults.items() if split.get(key, default) != default]
    if ratios:  # a forecast's windows are counted in time steps, not shares of rows
        add(f"data.split.{ratios[0]}", f"split ratios ({', '.join(ratios)}) do not apply to timeseries",
            "the test window is the last forecast.horizon steps of each series and validation the forecast.windows "
            "backtest windows before it; remove the ratios")
    time_column = data.get("time_column")
    features = data.get("features") if isinstance(data.get("features"), list) else []
    if time_column and time_column in features:
        add("data.features", f"the time column '{time_column}' is also listed as a feature",
            "calendar features come from forecast.date_features")
    if time_column and isinstance(entities, list) and time_column in entities:
        add("data.entity_columns", f"the time column '{time_column}' is also a series id column", None)
    if config.get("preprocess"):
        add("preprocess", "preprocessing steps are not supported for timeseries",
            "remove 'preprocess'; an ML forecaster builds its own features from forecast.lags, rolling_windows, "
            "date_features and differences")
    _section_problems(forecast, add)
    _model_problems(config.get("model"), forecast, add)
    return problems


def _section_problems(forecast: dict[str, Any], add: Callable) -> None:
    frequency = forecast.get("frequency")
    if isinstance(frequency, str):
        why = frequency_problem(frequency)
        if why:
            add("forecast.frequency", f"'{frequency}' is not a pandas frequency ({why})",
                "allowed: a pandas offset alias such as h, D, W-SUN, MS, ME, QS, YS")
    for i, lag in enumerate(_ints(forecast.get("lags"))):
        if lag < 1:
            add(f"forecast.lags.{i}", f"lag {lag} is not positive", "a lag counts steps back: 1, 2, ..., the season")
    for i, window in enumerate(_ints(forecast.get("rolling_windows"))):
        if window < 1:
            add(f"forecast.rolling_windows.{i}", f"window {window} is not positive", "e.g. 3 or the season length")
    for i, difference in enumerate(_ints(forecast.get("differences"))):
        if difference < 1:
            add(f"forecast.differences.{i}", f"difference {difference} is not positive", "1, or the season length")
    for i, name in enumerate(forecast.get("date_features") or []):
        if isinstance(name, str) and name not in DATE_FEATURES:
            add(f"forecast.date_features.{i}", f"'{name}' is not a date feature", allowed_text(DATE_FEATURES, name))
    for i, level in enumerate(forecast.get("level") or []):
        if isinstance(level, (int, float)) and not isinstance(level, bool) and not 0 < level < 100:
            add(f"forecast.level.{i}", f"level {level} is outside (0, 100)", "a prediction interval in percent, e.g. 80 or 95")


def _ints(values: Any) -> list[int]:
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)] if isinstance(values, list) else []


def _model_problems(model: Any, forecast: dict[str, Any], add: Callable) -> None:
    if not isinstance(model, dict) or not isinstance(model.get("class_path"), str):
        return  # the schema reports it
    path = "model.class_path"
    try:
        cls = import_class(model["class_path"])
    except ImportProblem:
        return  # the generic model check says why (and which extra installs statsforecast)
    kind = forecaster_kind(cls)
    if kind is None:
        add(path, f"{cls.__name__} is neither a statsforecast model nor a regressor",
            f"use a statistical model ({', '.join(list(FORECASTERS)[:4])}, ... see 'mmp list models') or {REGRESSORS}")
        return
    if kind == "regressor":
        import importlib.util

        if importlib.util.find_spec("mlforecast") is None:  # found, not imported: compile stays fast
            add(path, f"{cls.__name__} forecasts through mlforecast, which is not installed",
                f"pip install 'mmp[{EXTRA}]'")
        return
    ignored = [key for key in ML_ONLY if forecast.get(key)]
    for key in ignored:
        add(f"forecast.{key}", f"{cls.__name__} is a statistical model and would ignore forecast.{key}",
            f"remove forecast.{key}, or use a regressor ({REGRESSORS}) to learn from it")
