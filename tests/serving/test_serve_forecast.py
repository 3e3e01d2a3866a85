"""`mmp serve-api` with a forecaster: one series per request, history optional, bad series are 422s."""

from __future__ import annotations

import shutil

import httpx
import pandas as pd
import pytest

from tests.conftest import REPO, Server
from tests.conftest import mmp_in_process as run_mmp

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """AutoETS on the airline passengers, trained once and served by a real `mmp serve-api` process."""
    root = tmp_path_factory.mktemp("serve_forecast")
    for name in ("conf", "recipes", "data"):
        shutil.copytree(REPO / name, root / name)
    trained = run_mmp("train", "recipe=forecast/air_passengers", "-q", cwd=root)
    assert trained.code == 0, trained.err
    run_id = trained.out.strip().splitlines()[-1]
    server = Server(root, run_id)
    try:
        server.wait_ready()
        yield root, run_id, server
    finally:
        server.stop()


def history(root, until: str | None = None) -> list[dict]:
    frame = pd.read_csv(root / "data" / "air_passengers.csv")
    if until:
        frame = frame[frame["month"] < until]
    return [{"month": m, "passengers": float(p)} for m, p in zip(frame["month"], frame["passengers"])]


def test_id_only_forecasts_the_horizon_after_the_training_data(served):
    root, run_id, server = served
    body = httpx.post(f"{server.url}/predict", json={"series": "airline"}, timeout=30).json()
    assert body["series"] == "airline" and body["model_uri"] == f"runs:/{run_id}/model"
    assert [row["month"][:10] for row in body["forecast"]] == [f"1961-{m:02d}-01" for m in range(1, 13)]
    first = body["forecast"][0]
    assert set(first) == {"month", "prediction", "prediction_lo_90", "prediction_hi_90"}
    assert first["prediction_lo_90"] < first["prediction"] < first["prediction_hi_90"]


def test_served_forecast_equals_batch_inference_for_the_same_history(served):
    root, run_id, server = served
    rows = history(root, until="1958-01-01")
    pd.DataFrame([{"series": "airline", **r} for r in rows]).to_csv(root / "until_1957.csv", index=False)
    out = run_mmp("batch-inference", "--run-id", run_id, "-d", "until_1957.csv", "-o", "until_1957_out.csv", cwd=root)
    assert out.code == 0, out.err
    batch = pd.read_csv(root / "until_1957_out.csv")
    single = httpx.post(f"{server.url}/predict", json={"series": "airline", "history": rows}, timeout=30).json()
    assert [r["month"][:10] for r in single["forecast"]] == [m[:10] for m in batch["month"]]
    for column in ("prediction", "prediction_lo_90", "prediction_hi_90"):
        assert [r[column] for r in single["forecast"]] == pytest.approx(list(batch[column]), rel=1e-9)
    many = httpx.post(f"{server.url}/predict/batch", timeout=30, json={"samples": [
        {"series": "airline"}, {"series": "copy", "history": rows}]}).json()
    assert many["sample_count"] == 2 and [p["series"] for p in many["predictions"]] == ["airline", "copy"]
    assert many["predictions"][1]["forecast"] == single["forecast"]


def test_schema_says_what_a_request_holds(served):
    _, _, server = served
    schema = httpx.get(f"{server.url}/model/schema", timeout=30).json()
    assert schema["task"] == "timeseries" and schema["entity_columns"] == ["series"]
    assert (schema["time_column"], schema["target"], schema["horizon"], schema["frequency"]) == ("month", "passengers", 12, "MS")
    assert schema["history"]["optional"] is True and schema["exogenous_features"] == []
    assert schema["outputs"] == ["month", "prediction", "prediction_lo_90", "prediction_hi_90"]
    assert httpx.get(f"{server.url}/model/info", timeout=30).json()["task"] == "timeseries"


def test_bad_series_requests_are_422_naming_the_field(served):
    root, _, server = served
    rows = history(root)
    gap = rows[:40] + rows[41:]
    cases = [
        ({"series": "nowhere"}, "series", "unknown series 'nowhere'"),
        ({"history": rows}, "series", "missing field"),
        ({"series": "a", "history": rows[:5]}, "history", "has 5 time steps; at least 24"),
        ({"series": "a", "history": gap}, "history.month", "gap in its time index after 1952-04-01"),
        ({"series": "a", "history": rows + rows[-1:]}, "history.month", "2 rows at 1960-12-01"),
        ({"series": "a", "history": [{"month": "soon", "passengers": 1.0}, *rows]}, "history.month", "'soon' is not a date/time"),
        ({"series": "a", "history": [{"month": "1940-01-01", "passengers": "many"}]}, "history[0].passengers", "finite number"),
        ({"series": "a", "history": "all of it"}, "history", "non-empty array"),
    ]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for body, field, words in cases:
            response = client.post("/predict", json=body)
            assert response.status_code == 422, (body, response.text)
            fields = response.json()["fields"]
            assert fields[0]["field"] == field and words in fields[0]["message"], fields
        batch = client.post("/predict/batch", json={"samples": [{"series": "airline"}, {"series": "zzz"}]})
        assert batch.status_code == 422 and batch.json()["fields"][0]["field"] == "samples[1].series"
        assert client.post("/predict/batch", json={"samples": []}).status_code == 422
        assert client.get("/ready").status_code == 200  # still serving
