"""Forecasters for a timeseries recipe, their rolling-origin backtest, and its scores.

The recipe's model becomes a statsforecast `StatsForecast` (a statistical model) or an mlforecast
`MLForecast` (any regressor, with lags, rolling means, calendar features and differences). Backtests
are the libraries' own `cross_validation`; scores are `utilsforecast.losses`, per series and window,
for the model and for the seasonal-naive baseline side by side.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd

from mmp.config.estimators import import_class
from mmp.config.forecast_checks import forecaster_kind, season_for
from mmp.config.spec import RunSpec
from mmp.models.forecast import ID, TARGET, TIME, rename_forecast


@dataclass
class ForecastSetup:
    """What every forecaster of one run shares: frequency, season, horizon, windows, levels, exogenous columns."""

    spec: RunSpec
    frequency: str
    exogenous: list[str]

    @property
    def forecast(self):
        return self.spec.forecast

    @property
    def kind(self) -> str:
        return forecaster_kind(import_class(self.spec.model.class_path)) or "regressor"

    @property
    def season(self) -> int:
        return self.forecast.season_length or season_for(self.frequency)

    @property
    def horizon(self) -> int:
        return self.forecast.horizon

    @property
    def step(self) -> int:
        return self.forecast.step_size or self.forecast.horizon

    @property
    def levels(self) -> list[int]:
        return list(self.forecast.level) if self.kind == "statistical" else []

    @property
    def warmup(self) -> int:
        """Rows a series needs before its first forecast: two seasons for a statistical model, the
        longest lag or rolling window plus the differences for an ML forecaster."""
        f = self.forecast
        if self.kind == "statistical":
            return 2 * self.season if self.season > 1 else 3
        longest = max([*f.lags, *(1 + w for w in f.rolling_windows), 1])
        return longest + sum(f.differences) + 2

    @property
    def min_length(self) -> int:
        """Time steps each training series needs: warm-up, backtest windows and the test window."""
        return self.warmup + self.step * (self.forecast.windows - 1) + 2 * self.horizon

    def model_params(self) -> dict[str, Any]:
        """The recipe's params, with season_length filled when the model takes one and the recipe is silent."""
        cls = import_class(self.spec.model.class_path)
        params = dict(self.spec.model.params)
        if "season_length" in inspect.signature(cls).parameters and "season_length" not in params:
            params["season_length"] = self.season
        return params

    def forecaster(self) -> Any:
        """An unfitted StatsForecast or MLForecast over the recipe's model."""
        cls = import_class(self.spec.model.class_path)
        if self.kind == "statistical":
            from statsforecast import StatsForecast

            return StatsForecast(models=[cls(**self.model_params())], freq=self.frequency, n_jobs=1)
        from mlforecast import MLForecast

        f = self.forecast
        transforms = None
        if f.rolling_windows:
            from mlforecast.lag_transforms import RollingMean

            transforms = {1: [RollingMean(window_size=w) for w in f.rolling_windows]}
        targets = None
        if f.differences:
            from mlforecast.target_transforms import Differences

            targets = [Differences(list(f.differences))]
        return MLForecast(models={"model": cls(**self.spec.model.params)}, freq=self.frequency, lags=list(f.lags) or None,
                          lag_transforms=transforms, date_features=list(f.date_features) or None,
                          target_transforms=targets, num_threads=1)

    def baseline(self) -> Any:
        from statsforecast import StatsForecast
        from statsforecast.models import SeasonalNaive

        return StatsForecast(models=[SeasonalNaive(season_length=self.season)], freq=self.frequency, n_jobs=1)

    def cross_validate(self, forecaster: Any, history: pd.DataFrame, windows: int, baseline: bool = False) -> pd.DataFrame:
        """The library's rolling-origin backtest: unique_id, ds, cutoff, y, prediction (+ intervals)."""
        levels = [] if baseline else self.levels
        if type(forecaster).__name__ == "StatsForecast":
            out = forecaster.cross_validation(df=history, h=self.horizon, n_windows=windows, step_size=self.step,
                                              level=levels or None)
        else:
            out = forecaster.cross_validation(df=history, h=self.horizon, n_windows=windows, step_size=self.step,
                                              static_features=[])
        return rename_forecast(out, levels)

    def fit(self, forecaster: Any, history: pd.DataFrame) -> Any:
        """Fit on every row of `history` (the model that is logged)."""
        if self.kind == "statistical":
            return forecaster.fit(df=history)
        return forecaster.fit(history, static_features=[])


def backtest(setup: ForecastSetup, history: pd.DataFrame, windows: int) -> pd.DataFrame:
    """Model and seasonal-naive forecasts of `windows` rolling origins at the end of `history`:
    unique_id, ds, cutoff, y, prediction (+ intervals), baseline."""
    model = setup.cross_validate(setup.forecaster(), history, windows)
    base = setup.cross_validate(setup.baseline(), history[[ID, TIME, TARGET]], windows, baseline=True)
    base = base.rename(columns={"prediction": "baseline"})[[ID, TIME, "cutoff", "baseline"]]
    return model.merge(base, on=[ID, TIME, "cutoff"], how="left")


def scores(forecasts: pd.DataFrame, train: pd.DataFrame, metrics: list[str], season: int) -> pd.DataFrame:
    """One row per series and backtest window: <metric> of the model and <metric>_seasonal_naive."""
    from utilsforecast import losses

    table = None
    for name in metrics:
        loss = getattr(losses, name)
        if name == "mase":
            loss = partial(loss, seasonality=season, train_df=train[[ID, TIME, TARGET]])
        values = loss(forecasts[[ID, TIME, "cutoff", TARGET, "prediction", "baseline"]], models=["prediction", "baseline"])
        values = values.rename(columns={"prediction": name, "baseline": f"{name}_seasonal_naive"})
        table = values if table is None else table.merge(values, on=[c for c in (ID, "cutoff") if c in values.columns])
    return table


def plot(test: pd.DataFrame, history: pd.DataFrame, levels: list[int], target: str, limit: int = 4) -> Any:
    """Actual vs forecast on the test window (with the interval band) for up to `limit` series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = list(dict.fromkeys(test[ID]))[:limit]
    figure, axes = plt.subplots(len(ids), 1, figsize=(8, 2.6 * len(ids)), squeeze=False)
    horizon = int(test.groupby(ID).size().max())
    for ax, uid in zip(axes[:, 0], ids):
        past = history[history[ID] == uid].tail(4 * horizon)
        part = test[test[ID] == uid]
        ax.plot(past[TIME], past[TARGET], color="black", linewidth=1, label="actual")
        ax.plot(part[TIME], part["prediction"], color="tab:blue", label="forecast")
        ax.plot(part[TIME], part["baseline"], color="tab:gray", linestyle="--", linewidth=1, label="seasonal naive")
        if levels and f"prediction_lo_{levels[0]}" in part:
            ax.fill_between(part[TIME], part[f"prediction_lo_{levels[0]}"], part[f"prediction_hi_{levels[0]}"],
                            color="tab:blue", alpha=0.2, label=f"{levels[0]}% interval")
        ax.set_title(str(uid), fontsize=9)
        ax.set_ylabel(target)
    axes[0, 0].legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    return figure
