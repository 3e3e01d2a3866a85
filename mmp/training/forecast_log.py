"""The last stage of a timeseries run: params, metrics, the per-series table, the forecast plot and the model."""

from __future__ import annotations

from dataclasses import dataclass

from mmp.config.spec import RunSpec
from mmp.training.log import log_pyfunc, log_record
from mmp.training.pipeline import TrainState

PER_SERIES_ARTIFACT = "evaluation/per_series.csv"
PLOT_ARTIFACT = "plots/forecast_test.png"


@dataclass
class LogForecast:
    """Params (the flattened recipe), metrics (model and baseline), per-series scores, a plot, the model."""

    spec: RunSpec
    tracking_uri: str
    experiment: str
    name: str = "log"
    opens_run: bool = True

    def describe(self) -> str:
        from mmp.masking import scrub

        return (f"MLflow {scrub(self.tracking_uri)}, experiment '{self.experiment}': params, metrics, tags, "
                f"{PER_SERIES_ARTIFACT}, {PLOT_ARTIFACT} (actual vs forecast, up to 4 series), model (pyfunc), "
                "resolved config")

    def run(self, state: TrainState) -> str:
        import mlflow

        from mmp.training import backtest
        from mmp.training.forecasting import SETUP

        setup = state.inputs[SETUP]
        log_record(state, {"forecast.frequency_used": setup.frequency, "forecast.season_length_used": setup.season,
                           "split.history_rows": len(state.inputs["history"]), "split.test_rows": len(state.inputs["test"]),
                           "split.series": int(state.inputs["all"]["unique_id"].nunique())})
        mlflow.log_text(state.predictions["per_series"].to_csv(index=False), PER_SERIES_ARTIFACT)
        figure = backtest.plot(state.predictions["test"], state.inputs["all"], setup.levels, self.spec.data.target)
        mlflow.log_figure(figure, PLOT_ARTIFACT)
        import matplotlib.pyplot as plt

        plt.close(figure)
        log_forecaster(state)
        return f"run {state.run_id} (params, metrics, per-series table, plot, model, config)"


def log_forecaster(state: TrainState) -> None:
    """Log the refit ForecastModel as the run's pyfunc, with an input example of one series' history."""
    from mmp.models.forecast import series_ids
    from mmp.training.forecasting import SETUP

    spec, model, setup = state.pipeline.spec, state.model, state.inputs[SETUP]
    data = spec.data
    first = state.inputs["all"]["unique_id"].iloc[0]
    rows = state.frame.to_pandas()
    rows = rows[(series_ids(rows, data.entity_columns) == first).to_numpy() & rows[data.target].notna().to_numpy()]
    future = setup.horizon if setup.exogenous else 0
    example = rows[[*data.entity_columns, data.time_column, data.target, *setup.exogenous]].tail(setup.warmup + 2 + future)
    example = example.reset_index(drop=True)
    example[data.time_column] = example[data.time_column].astype(str)
    example[data.target] = example[data.target].astype("float64")  # a history's values may have decimals
    if future:  # with exogenous features the last rows are the future: their values, no target
        example.loc[len(example) - future:, data.target] = None
    models = model.forecaster.models  # StatsForecast: a list; MLForecast: name -> regressor
    inner = list(models.values()) if isinstance(models, dict) else list(models)
    forecast = {"time_column": data.time_column, "target": data.target, "horizon": setup.horizon,
                "frequency": setup.frequency, "levels": setup.levels, "exogenous": setup.exogenous,
                "kind": setup.kind, "min_history": setup.warmup, "history_optional": not setup.exogenous,
                "season_length": setup.season, "output_columns": model.output_columns,
                "series": sorted(model.entities)[:1000]}
    log_pyfunc(state, model, example, [model.forecaster, *inner], {"forecast": forecast})
