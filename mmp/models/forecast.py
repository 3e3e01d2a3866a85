"""The logged forecaster: a fitted statsforecast or mlforecast object with mmp's input and output contract.

`ForecastModel.predict_frame` takes series in long form (id columns, time, target, exogenous features)
and forecasts `horizon` steps after each series' last timestamp; a series given by its id alone
gets the forecast made at training from the last window the model kept. Output: the id columns, the
time column, `prediction` and `prediction_lo_<level>` / `prediction_hi_<level>` when the model gives
intervals. Training, batch inference and serving all call it, so they cannot disagree. This module
imports only numpy and pandas; statsforecast / mlforecast come in with the pickled forecaster.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mmp.models.tabular import InputError

ID, TIME, TARGET = "unique_id", "ds", "y"  # the long-form column names statsforecast and mlforecast use


def interval_columns(levels: list[int]) -> list[str]:
    """`prediction_lo_90`, `prediction_hi_90`, ... for each level."""
    return [f"prediction_{side}_{level}" for level in levels for side in ("lo", "hi")]


def series_ids(frame: pd.DataFrame, entity_columns: list[str]) -> pd.Series:
    """One text id per row from the series id columns (joined with ' | ' when there are several)."""
    if len(entity_columns) == 1:
        return frame[entity_columns[0]].astype(str)
    return frame[entity_columns].astype(str).agg(" | ".join, axis=1)


def parse_times(values: pd.Series, column: str) -> pd.Series:
    """`values` as datetimes; InputError naming the column and the first value that is not a date/time."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
    bad = parsed.isna() & values.notna()
    if bad.any():
        raise InputError(f"{column}: {values[bad].iloc[0]!r} is not a date/time (use ISO 8601, e.g. 2024-01-31)")
    if parsed.isna().any():
        raise InputError(f"{column}: a row has no time")
    return parsed


def series_problems(long: pd.DataFrame, frequency: str, min_length: int, time_column: str) -> list[str]:
    """Duplicate timestamps, gaps in the time index and too-short series in a long frame
    (unique_id, ds, ...), one sentence each, naming the series and the time column."""
    problems = []
    duplicated = long[long.duplicated([ID, TIME], keep=False)]
    for uid, rows in duplicated.groupby(ID, sort=False):
        problems.append(f"{time_column}: series '{uid}' has {len(rows)} rows at {rows[TIME].iloc[0]}; one row per time")
    ordered = long.drop_duplicates([ID, TIME]).sort_values([ID, TIME])
    offset = pd.tseries.frequencies.to_offset(frequency)
    following = ordered.groupby(ID, sort=False)[TIME].shift(-1)
    import warnings

    with warnings.catch_warnings():  # non-vectorised offsets (MS, QS) warn that they add row by row
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        expected = ordered[TIME] + offset
        on_grid = ordered[TIME] == (ordered[TIME] + offset) - offset
    broken = ordered[(following.notna() & (following != expected)) | ~on_grid]
    for uid, rows in broken.groupby(ID, sort=False):
        at = rows[TIME].iloc[0]
        nxt = following.loc[rows.index[0]]
        problems.append(f"{time_column}: series '{uid}' has a gap in its time index after {at} (next: {nxt}; "
                        f"expected one row every {frequency})")
    lengths = ordered.groupby(ID, sort=False).size()
    for uid, length in lengths[lengths < min_length].items():
        problems.append(f"{time_column}: series '{uid}' has {length} time steps; at least {min_length} are needed")
    return problems


def rename_forecast(out: pd.DataFrame, levels: list[int]) -> pd.DataFrame:
    """A library's forecast frame (unique_id, ds, <alias>, <alias>-lo-90, ...) as unique_id, ds,
    prediction, prediction_lo_90, ..."""
    point = next(c for c in out.columns if c not in (ID, TIME, "cutoff", TARGET) and "-lo-" not in c and "-hi-" not in c)
    names = {point: "prediction"}
    for level in levels:
        for side in ("lo", "hi"):
            if f"{point}-{side}-{level}" in out.columns:
                names[f"{point}-{side}-{level}"] = f"prediction_{side}_{level}"
    keep = [c for c in (ID, TIME, "cutoff", TARGET) if c in out.columns]
    return out[keep + list(names)].rename(columns=names).reset_index(drop=True)


class ForecastModel:
    """A fitted forecaster, the window it ended on, and the columns and horizon it forecasts."""

    def __init__(self, forecaster: Any, kind: str, entity_columns: list[str], time_column: str, target: str,
                 exogenous: list[str], frequency: str, horizon: int, levels: list[int], min_history: int,
                 stored: pd.DataFrame, entities: dict[str, tuple]):
        self.forecaster = forecaster  # statistical: a StatsForecast fitted on all rows; else a fitted MLForecast
        self.kind = kind  # "statistical" | "regressor"
        self.entity_columns, self.time_column, self.target = list(entity_columns), time_column, target
        self.exogenous, self.frequency, self.horizon = list(exogenous), frequency, horizon
        self.levels = list(levels) if kind == "statistical" else []  # mlforecast: no intervals on new history
        self.min_history = min_history
        self.stored = stored  # unique_id, ds, prediction, ...: the forecast after the training data's end
        self.entities = entities  # unique_id -> the id column values

    @property
    def output_columns(self) -> list[str]:
        return [*self.entity_columns, self.time_column, "prediction", *interval_columns(self.levels)]

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Forecast every series in `frame`: from its history rows, or from the kept window when a series
        comes with its id only (no time values)."""
        missing = [c for c in self.entity_columns if c not in frame.columns]
        if missing:
            raise InputError(f"missing series id column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        frame = frame.reset_index(drop=True)
        uid = series_ids(frame, self.entity_columns)
        timed = frame[self.time_column].notna() if self.time_column in frame.columns else pd.Series(False, frame.index)
        with_history = set(uid[timed])
        order = list(dict.fromkeys(uid))
        parts = []
        id_only = [u for u in order if u not in with_history]
        if id_only:
            parts.append(self._from_kept(id_only))
        if with_history:
            keep = uid.isin(with_history)
            parts.append(self._from_history(frame[keep], uid[keep]))
        out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        out["_order"] = out[ID].map({u: i for i, u in enumerate(order)})
        out = out.sort_values(["_order", TIME], kind="stable").reset_index(drop=True)
        firsts = frame.assign(**{ID: uid}).drop_duplicates(ID).set_index(ID)
        result = {c: out[ID].map(firsts[c]).to_numpy() for c in self.entity_columns}
        result[self.time_column] = out[TIME].to_numpy()
        for column in ["prediction", *interval_columns(self.levels)]:
            result[column] = out[column].to_numpy(dtype="float64")
        return pd.DataFrame(result)

    def _from_kept(self, ids: list[str]) -> pd.DataFrame:
        unknown = [u for u in ids if u not in self.entities]
        if unknown:
            raise InputError(f"{self.entity_columns[0] if len(self.entity_columns) == 1 else 'series'}: unknown series "
                             f"'{unknown[0]}' and no history; send its history (rows with {self.time_column} and "
                             f"{self.target})")
        if self.exogenous:
            raise InputError(f"history: the model uses {', '.join(self.exogenous)}; send the series' history and its "
                             f"next {self.horizon} rows of them")
        return self.stored[self.stored[ID].isin(ids)]

    def _from_history(self, frame: pd.DataFrame, uid: pd.Series) -> pd.DataFrame:
        if self.target not in frame.columns:
            raise InputError(f"missing column: {self.target} (the history's values)")
        missing = [c for c in self.exogenous if c not in frame.columns]
        if missing:
            raise InputError(f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        times = parse_times(frame[self.time_column], self.time_column)
        values = pd.to_numeric(frame[self.target], errors="coerce")
        bad = values.isna() & frame[self.target].notna()
        if bad.any():
            raise InputError(f"{self.target}: must be numeric, got {frame[self.target][bad].iloc[0]!r}")
        long = pd.DataFrame({ID: uid.to_numpy(), TIME: times.to_numpy(), TARGET: values.to_numpy(dtype="float64")})
        for column in self.exogenous:
            long[column] = pd.to_numeric(frame[column], errors="coerce").to_numpy()
        long = long.sort_values([ID, TIME], kind="stable")
        # Rows after a series' last value are its future exogenous rows; a missing value before that is a hole.
        last = long[long[TARGET].notna()].groupby(ID)[TIME].max()
        future = long[long[TARGET].isna() & (long[TIME] > long[ID].map(last))]
        history = long.drop(future.index)
        holes = history[history[TARGET].isna()]
        if len(holes):
            raise InputError(f"{self.target}: series '{holes[ID].iloc[0]}' has no value at {holes[TIME].iloc[0]}")
        problems = series_problems(history, self.frequency, self.min_history, self.time_column)
        if problems:
            raise InputError(problems[0])
        return self.forecast(history, self._future(history, future) if self.exogenous else None)

    def _future(self, history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        """The exogenous values of the next `horizon` steps of each series, checked."""
        offset = pd.tseries.frequencies.to_offset(self.frequency)
        wanted = pd.DataFrame([(u, t) for u, end in history.groupby(ID)[TIME].max().items()
                               for t in pd.date_range(end + offset, periods=self.horizon, freq=offset)],
                              columns=[ID, TIME])
        given = wanted.merge(future.drop(columns=[TARGET]), on=[ID, TIME], how="left")
        lacking = given[given[self.exogenous].isna().any(axis=1)]
        if len(lacking):
            raise InputError(f"{', '.join(self.exogenous)}: series '{lacking[ID].iloc[0]}' needs their values at "
                             f"{lacking[TIME].iloc[0]} (the {self.horizon} rows after its history, with no "
                             f"{self.target})")
        return given

    def forecast(self, history: pd.DataFrame, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """unique_id, ds, prediction (+ intervals) for `horizon` steps after each series in `history`."""
        if self.kind == "statistical":
            from statsforecast import StatsForecast

            model = StatsForecast(models=list(self.forecaster.models), freq=self.forecaster.freq, n_jobs=1)
            out = model.forecast(df=history, h=self.horizon, X_df=future, level=self.levels or None)
        else:
            out = self.forecaster.predict(self.horizon, new_df=history, X_df=future)
        return rename_forecast(out, self.levels)


def kept_forecast(model: ForecastModel) -> pd.DataFrame:
    """The forecast after the training data's end, for every series the model was fitted on."""
    if model.kind == "statistical":
        out = model.forecaster.predict(h=model.horizon, level=model.levels or None)
    else:
        out = model.forecaster.predict(model.horizon)
    return rename_forecast(out, model.levels)

