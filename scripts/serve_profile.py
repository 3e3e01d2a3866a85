"""Where an mmp request's time goes, in this process, step by step, for each /predict/batch body
format and the V2 request: parse (JSON to Python), read (checked, into columns), frame (the pandas
frame the model reads), predict (the model), drift (counting the batch in the drift window) and
answer (the response body, written); beside it the in-process reference: the same model's MLflow
pyfunc with JSON in (dataframe_split, parsed by orjson) and out (orjson), no HTTP. Used by
bench_serve.py after its load cases."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Callable


def timed(step: Callable[[], Any], repeats: int = 40) -> float:
    """The median milliseconds of `step`."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def in_process(model_dir: Path, frame: Any, features: list[str], bodies: dict[str, bytes], results: dict) -> None:
    """Print the step-by-step profile of each body in `bodies` (label -> 1,000-row body) and the
    pyfunc reference; `results` (bench_serve's load results) gives each format's HTTP req/s beside it."""
    import mlflow
    import orjson
    import pandas as pd

    from mmp.serving import request_body
    from mmp.serving.columns import Columns
    from mmp.serving.drift import drift_monitor
    from mmp.serving.request_formats import read_batch
    from mmp.serving.state import load_model, model_schema, shape_rows
    from mmp.serving.v2_routes import read_v2, v2_answer

    pyfunc = mlflow.pyfunc.load_model(str(model_dir))
    split = orjson.dumps({"dataframe_split": {"columns": features, "data": frame[features].values.tolist()}})

    def reference() -> bytes:
        body = orjson.loads(split)["dataframe_split"]
        out = pyfunc.predict(pd.DataFrame(body["data"], columns=body["columns"]))
        return orjson.dumps({c: out[c].tolist() for c in out.columns})

    pyfunc_ms = timed(reference)
    print(f"\nin-process reference, 1,000 rows: MLflow pyfunc with JSON in and out {pyfunc_ms:.2f} ms "
          f"({1000 / pyfunc_ms:.1f} req/s on one core)")
    schema, model = model_schema(str(model_dir)), load_model(str(model_dir))
    drift = drift_monitor(str(model_dir), {})
    print("mmp, in process, ms per 1,000-row request: parse, read (check into columns), frame, predict, drift, "
          "answer; then the served req/s and its share of the in-process reference")
    for label, body in bodies.items():
        parsed = request_body.parse(body)
        read = (lambda: read_v2(parsed, schema, 10_000, [])) if label == "V2" else \
            (lambda: read_batch(parsed, schema, 10_000, []))
        block = read().features
        data = block.frame()
        out = model.predict_columns(data)
        columns = Columns(out, len(data))
        answer = {"columns": lambda: orjson.dumps({"columns": columns.as_lists()}),
                  "V2": lambda: orjson.dumps(v2_answer("m", "1", "id", columns.data))}.get(
            label, lambda: orjson.dumps({"predictions": shape_rows(columns.data)}))
        steps = {"parse": timed(lambda: request_body.parse(body)), "read": timed(read), "frame": timed(block.frame),
                 "predict": timed(lambda: model.predict_columns(data)),
                 "drift": timed(lambda: drift.record(data, out)) if drift else 0.0, "answer": timed(answer)}
        served = [r["rps"] for (rows, server, name), runs in results.items() for r in runs
                  if rows > 1 and server == "mmp" and name == label]
        rps = statistics.median(served) if served else float("nan")
        print(f"  {label:<16} {len(body) / 1e3:6.0f} kB  " + "  ".join(f"{k} {v:5.2f}" for k, v in steps.items())
              + f"  = {sum(steps.values()):5.2f} ms;  served {rps:5.1f} req/s = {rps * pyfunc_ms / 1000:.2f}x the pyfunc")
