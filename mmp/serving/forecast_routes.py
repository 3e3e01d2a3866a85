"""The routes of a served forecaster: one series per request, its history optional.

    POST /predict         {"<id col>": "id", "history": [{"<time>": ..., "<target>": ...}, ...]}
                          -> {"<id col>": "id", "forecast": [{"<time>": ISO, "prediction": ..., ...}], "model_uri"}
    POST /predict/batch   {"samples": [series requests]} -> {"predictions": [...], "model_uri", "sample_count"}
    GET  /model/schema    id columns, time column, target, whether history is optional, horizon, frequency, outputs

Without history the model forecasts from the last window it kept at training. Every request is
checked before it reaches the model (unknown series, unparsable or duplicate times, gaps, too short a
history), so bad input is a 422 naming the field, never a 500.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from fastapi import Request

from mmp.serving.request_schema import FieldError, kind_of


@functools.lru_cache(maxsize=4)
def forecast_meta(model_dir: str) -> dict[str, Any]:
    """The mmp metadata the logged forecaster carries (id/time/target columns, horizon, frequency, ...)."""
    from pathlib import Path

    import yaml

    mlmodel = yaml.safe_load((Path(model_dir) / "MLmodel").read_text(encoding="utf-8"))
    meta = (mlmodel.get("metadata") or {}).get("mmp") or {}
    return {**meta.get("forecast", {}), "entity_columns": meta.get("entity_columns") or [],
            "exogenous": meta.get("features") or []}


class SeriesSchema:
    """Checks one series request; collects every problem with its field path."""

    def __init__(self, meta: dict[str, Any], known: Any):
        self.meta, self.known = meta, known  # known: the series ids the model kept a window for
        self.ids, self.time, self.target = meta["entity_columns"], meta["time_column"], meta["target"]
        self.exogenous = list(meta.get("exogenous") or [])

    def check(self, body: Any, where: str = "") -> list[FieldError]:
        import pandas as pd

        from mmp.models.forecast import ID, TARGET, TIME, InputError, parse_times, series_problems

        prefix = f"{where}." if where else ""
        if not isinstance(body, dict):
            return [FieldError(where or "body", f"expected a JSON object with {', '.join(self.ids)} and history, "
                                                f"got {kind_of(body)}")]
        errors = [FieldError(prefix + c, "missing field: the series id") for c in self.ids if c not in body]
        errors += [FieldError(prefix + c, f"expected text or a number, got {kind_of(body[c])}") for c in self.ids
                   if c in body and (isinstance(body[c], bool) or not isinstance(body[c], (str, int, float)))]
        if errors:
            return errors
        uid = " | ".join(str(body[c]) for c in self.ids)
        history = body.get("history")
        if history is None:
            if not self.meta.get("history_optional", True):
                return [FieldError(prefix + "history", f"required: the model uses {', '.join(self.exogenous)}; send "
                                                       f"the history and the next {self.meta['horizon']} rows of them")]
            if uid not in self.known:
                return [FieldError(prefix + (self.ids[0] if len(self.ids) == 1 else "history"),
                                   f"unknown series '{uid}' and no history; send its history")]
            return []
        if not isinstance(history, list) or not history:
            return [FieldError(prefix + "history", f"expected a non-empty array of rows, got {kind_of(history)}")]
        rows = []
        for i, row in enumerate(history):
            at = f"{prefix}history[{i}]"
            if not isinstance(row, dict):
                errors.append(FieldError(at, f"expected an object with {self.time} and {self.target}, got {kind_of(row)}"))
                continue
            for column in (self.time, self.target, *self.exogenous):
                value = row.get(column)
                if column not in row:
                    if column != self.target or not self.exogenous:
                        errors.append(FieldError(f"{at}.{column}", "missing field"))
                elif column == self.time:
                    if not isinstance(value, str):
                        errors.append(FieldError(f"{at}.{column}", f"expected an ISO 8601 date/time, got {kind_of(value)}"))
                elif value is None and column == self.target and self.exogenous:
                    continue  # a future row: exogenous values, no target
                elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    errors.append(FieldError(f"{at}.{column}", f"expected a finite number, got {kind_of(value)}"))
            rows.append(row)
        if errors:
            return errors
        frame = pd.DataFrame.from_records(rows)
        try:
            times = parse_times(frame[self.time].astype(object), self.time)
        except InputError as exc:
            return [FieldError(f"{prefix}history.{self.time}", str(exc))]
        target = frame[self.target] if self.target in frame else pd.Series(float("nan"), index=frame.index)
        long = pd.DataFrame({ID: uid, TIME: times, TARGET: pd.to_numeric(target, errors="coerce")})
        past = long[long[TARGET].notna()]
        problems = series_problems(past, self.meta["frequency"], int(self.meta.get("min_history") or 1), self.time)
        return [FieldError(f"{prefix}history" + ("" if "time steps; at least" in p else f".{self.time}"), p)
                for p in problems]


def frame_of(requests: list[dict], meta: dict[str, Any]) -> Any:
    """The requests as one long frame: their history rows, or one id-only row for a series without history."""
    import pandas as pd

    ids, time, target = meta["entity_columns"], meta["time_column"], meta["target"]
    records = []
    for body in requests:
        key = {c: str(body[c]) for c in ids}
        for row in body.get("history") or [{}]:
            records.append({**key, time: row.get(time), target: row.get(target),
                            **{c: row.get(c) for c in meta.get("exogenous") or []}})
    return pd.DataFrame.from_records(records, columns=[*ids, time, target, *(meta.get("exogenous") or [])])


def forecast_responses(model: Any, meta: dict[str, Any], requests: list[dict]) -> list[dict]:
    """One response per request: its ids and `forecast` rows. Each request is forecast alone, so two
    requests for the same series with different histories cannot mix."""
    ids, time = meta["entity_columns"], meta["time_column"]
    responses = []
    for body in requests:
        out = model.predict_frame(frame_of([body], meta))
        values = {c: out[c].tolist() for c in out.columns if c not in ids}
        stamps = [t.isoformat() for t in out[time]]
        rows = [{time: stamps[i], **{c: values[c][i] for c in values if c != time}} for i in range(len(out))]
        responses.append({**{c: body[c] for c in ids}, "forecast": rows})
    return responses


def warm_up_request(model: Any, meta: dict[str, Any]) -> list[dict]:
    """A request the model can answer at load time (a kept series by its id), or none."""
    if not getattr(model, "entities", None) or not meta.get("history_optional", True):
        return []
    return [dict(zip(meta["entity_columns"], next(iter(model.entities.values()))))]


def add_forecast_routes(app: Any, state: Any, max_bytes: int, max_rows: int, guarded: tuple, not_ready: Any) -> None:
    """/predict, /predict/batch and /model/schema of a forecaster, on `app` (`guarded`: (401,) with auth)."""
    from mmp.serving.routes import answer, documented, error, predict_or_explain, read_json

    meta = forecast_meta(state.model_dir)

    def schema() -> SeriesSchema:
        return SeriesSchema(meta, getattr(state.model, "entities", {}))

    @app.post("/predict", summary="forecast one series", responses=documented(400, *guarded, 413, 422, 503))
    async def predict(request: Request) -> Any:
        if not state.ready:
            return not_ready()
        body, problem = await read_json(request, max_bytes)
        if problem is not None:
            return problem
        errors = schema().check(body)
        if errors:
            return error(422, "invalid_input", "the series request does not fit the model", errors)
        results, problem = await predict_or_explain(state, [body])
        if problem is not None:
            return problem
        return answer({**results[0], "model_uri": state.model_uri})

    @app.post("/predict/batch", summary="forecast many series", responses=documented(400, *guarded, 413, 422, 503))
    async def predict_batch(request: Request) -> Any:
        if not state.ready:
            return not_ready()
        body, problem = await read_json(request, max_bytes)
        if problem is not None:
            return problem
        samples = body.get("samples") if isinstance(body, dict) else None
        if not isinstance(samples, list) or not samples:
            return error(422, "invalid_input", "expected {\"samples\": [series requests]}",
                         [FieldError("samples", "send a non-empty array of series requests")])
        if len(samples) > max_rows:
            return error(413, "batch_too_large", f"{len(samples)} samples; the limit is {max_rows}",
                         [FieldError("samples", f"at most {max_rows} series")])
        checker = schema()
        errors = [e for i, sample in enumerate(samples) for e in checker.check(sample, f"samples[{i}]")]
        if errors:
            return error(422, "invalid_input", f"{len(errors)} problem(s) in samples", errors[:100])
        results, problem = await predict_or_explain(state, samples)
        if problem is not None:
            return problem
        return answer({"predictions": results, "model_uri": state.model_uri, "sample_count": len(results)})

    @app.get("/model/schema", summary="series ids, time column, target, horizon, frequency, outputs",
             responses=documented(*guarded))
    async def model_schema() -> dict:
        row = {meta["time_column"]: "string (ISO 8601 date/time)", meta["target"]: "number",
               **{c: "number" for c in meta.get("exogenous") or []}}
        return {
            "task": "timeseries",
            "entity_columns": meta["entity_columns"],
            "time_column": meta["time_column"],
            "target": meta["target"],
            "history": {"optional": bool(meta.get("history_optional", True)), "min_length": meta.get("min_history"),
                        "row": row},
            "horizon": meta.get("horizon"),
            "frequency": meta.get("frequency"),
            "exogenous_features": meta.get("exogenous") or [],
            "levels": meta.get("levels") or [],
            "outputs": [c for c in meta.get("output_columns") or [] if c not in meta["entity_columns"]],
            "series": meta.get("series") or [],
        }
