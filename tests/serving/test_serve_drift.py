"""Drift in serving: a real `mmp serve-api` on a really trained model counts what it is asked in a
sliding window, exports PSI per column on /metrics and reports it on GET /model/drift."""

from __future__ import annotations

import re
import shutil
import time

import httpx
import pandas as pd
import pytest

from tests.conftest import Server, clean_env, run_mmp

FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
TOKEN = {"Authorization": "Bearer drift-token"}
WINDOW = ("++monitoring.window_rows=300", "++monitoring.min_rows=100")


@pytest.fixture(scope="module")
def iris_run(workspace) -> str:
    """iris trained once for this module (its model carries the training split's drift profile)."""
    result = run_mmp("train", "recipe=iris", "-q", cwd=workspace, env=clean_env())
    assert result.code == 0, result.err
    return result.out.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def servers(workspace, iris_run, tmp_path_factory):
    """Two services on the same model, started side by side: drift measured (window 300 rows, auth
    on), and monitoring switched off by an override. The second has a BentoML home of its own:
    services sharing one keep their /metrics in one folder."""
    beside = tmp_path_factory.mktemp("beside")
    for name in ("conf", "recipes", "data", "mlruns"):
        (beside / name).symlink_to(workspace / name)
    measured = Server(workspace, iris_run, "serving.auth.token_env=MMP_DRIFT_TOKEN", *WINDOW,
                      env={"MMP_DRIFT_TOKEN": "drift-token"})
    disabled = Server(beside, iris_run, "++monitoring.enabled=false")
    try:
        measured.wait_ready()
        disabled.wait_ready()
        yield measured, disabled
    finally:
        measured.stop()
        disabled.stop()


@pytest.fixture(scope="module")
def iris(workspace) -> pd.DataFrame:
    return pd.read_csv(workspace / "data" / "iris.csv")


def send(server: Server, frame: pd.DataFrame, rounds: int = 2) -> list[dict]:
    """Every row of `frame`, `rounds` times over, ten rows a request; the predictions of the last round."""
    with httpx.Client(base_url=server.url, headers=TOKEN, timeout=30) as client:
        for _ in range(rounds):
            answers = []
            for start in range(0, len(frame), 10):
                samples = frame.iloc[start:start + 10][FEATURES].to_dict(orient="records")
                response = client.post("/predict/batch", json={"samples": samples})
                assert response.status_code == 200, response.text
                answers += response.json()["predictions"]
    return answers


def gauges(server: Server) -> dict[tuple[str, str, str], float]:
    """(metric, column, kind) -> value of the mmp_drift_* gauges on /metrics (one worker: one value each)."""
    found = {}
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        match = re.match(r'(mmp_drift_\w+)(?:\{(.*)\})? (\S+)$', line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            found[(match.group(1), labels.get("column", ""), labels.get("kind", ""))] = float(match.group(3))
    return found


def settled_gauges(server: Server, rows: float) -> dict[tuple[str, str, str], float]:
    """The gauges once they show a window of `rows` rows (they are refreshed a moment after a batch)."""
    deadline = time.monotonic() + 10
    while True:
        found = gauges(server)
        if found.get(("mmp_drift_window_rows", "", "")) == rows or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_in_distribution_rows_keep_every_psi_small_then_one_shifted_feature_alone_reaches_alert(servers, iris):
    measured, _ = servers
    start = httpx.get(f"{measured.url}/model/drift", headers=TOKEN, timeout=10).json()
    assert start["rows"] == 0 and start["status"] == "no_data" and start["window_rows"] == 300
    assert settled_gauges(measured, 0)[("mmp_drift_status", "sepal_width_cm", "feature")] == -1

    send(measured, iris)  # the very flowers the model learned from (and the held-out rest)
    report = httpx.get(f"{measured.url}/model/drift", headers=TOKEN, timeout=10).json()
    assert report["rows"] == 300 and report["status"] == "ok", report
    assert set(report["features"]) == set(FEATURES)
    assert set(report["predictions"]) == {"prediction", "probability_setosa", "probability_versicolor",
                                          "probability_virginica"}
    for column in [*report["features"].values(), *report["predictions"].values()]:
        assert column["status"] == "ok" and column["psi"] < 0.1 and column["missing_rate"] == 0.0, column
        assert (column["warn"], column["alert"]) == (0.1, 0.25)
    assert report["thresholds"]["min_rows"] == 100
    metrics = settled_gauges(measured, 300)
    for name in FEATURES:
        assert metrics[("mmp_drift_status", name, "feature")] == 0
        assert metrics[("mmp_drift_psi", name, "feature")] == pytest.approx(report["features"][name]["psi"], abs=1e-6)
    assert metrics[("mmp_drift_status", "prediction", "prediction")] == 0

    send(measured, iris.assign(sepal_width_cm=iris["sepal_width_cm"] + 2.0))  # 300 rows: the window is all new
    report = httpx.get(f"{measured.url}/model/drift", headers=TOKEN, timeout=10).json()
    assert report["status"] == "alert" and report["rows"] == 300
    assert report["features"]["sepal_width_cm"]["status"] == "alert"
    assert report["features"]["sepal_width_cm"]["psi"] > 1
    for name in ("sepal_length_cm", "petal_length_cm", "petal_width_cm"):
        assert report["features"][name]["status"] == "ok", report["features"][name]
    metrics = settled_gauges(measured, 300)
    deadline = time.monotonic() + 10
    while metrics[("mmp_drift_status", "sepal_width_cm", "feature")] != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        metrics = gauges(measured)
    assert metrics[("mmp_drift_status", "sepal_width_cm", "feature")] == 2
    assert metrics[("mmp_drift_psi", "sepal_width_cm", "feature")] > 1
    for name in ("sepal_length_cm", "petal_length_cm", "petal_width_cm"):
        assert metrics[("mmp_drift_status", name, "feature")] == 0


def test_the_drift_report_is_behind_auth_and_metrics_stay_open(servers):
    measured, _ = servers
    answer = httpx.get(f"{measured.url}/model/drift", timeout=10)
    assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
    assert httpx.get(f"{measured.url}/metrics", timeout=10).status_code == 200
    document = httpx.get(f"{measured.url}/openapi.json", headers=TOKEN, timeout=10).json()
    assert {"200", "401", "404", "503"} <= set(document["paths"]["/model/drift"]["get"]["responses"])


def test_predictions_with_drift_measured_equal_the_mlflow_pyfunc_and_the_unmonitored_service(servers, workspace,
                                                                                             iris_run, iris):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    measured, disabled = servers
    sample = iris.sample(30, random_state=3)
    mlflow.set_tracking_uri(mlflow_uri(str(workspace / "mlruns")))
    expected = mlflow.pyfunc.load_model(f"runs:/{iris_run}/model").predict(sample)
    with httpx.Client(timeout=30) as client:
        samples = sample[FEATURES].to_dict(orient="records")
        got = client.post(f"{measured.url}/predict/batch", json={"samples": samples}, headers=TOKEN).json()
        plain = client.post(f"{disabled.url}/predict/batch", json={"samples": samples}).json()
    assert got["predictions"] == plain["predictions"]
    assert [p["prediction"] for p in got["predictions"]] == expected["prediction"].tolist()
    for i, row in enumerate(got["predictions"]):
        for label in ("setosa", "versicolor", "virginica"):
            assert row["probabilities"][label] == expected[f"probability_{label}"].iloc[i]


def test_monitoring_disabled_by_an_override_counts_nothing_and_drift_is_404(servers, iris):
    _, disabled = servers
    send(disabled, iris.head(20), rounds=1)
    answer = httpx.get(f"{disabled.url}/model/drift", timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error"] == "monitoring_disabled" and "monitoring.enabled" in answer.json()["message"]
    assert not gauges(disabled)
    assert "mmp_drift_" not in httpx.get(f"{disabled.url}/metrics", timeout=10).text


def test_a_model_without_a_drift_profile_is_served_unchanged_and_drift_is_404(workspace, iris_run, iris, tmp_path):
    """A model logged before profiles existed (here: the same model with its profile taken out)."""
    import asyncio

    import mlflow
    import yaml

    from mmp.io.tracking import mlflow_uri
    from mmp.serving.request_schema import RowSchema
    from mmp.serving.routes import create_app
    from mmp.serving.state import ServingState

    mlflow.set_tracking_uri(mlflow_uri(str(workspace / "mlruns")))
    model_dir = tmp_path / "model"
    shutil.copytree(mlflow.artifacts.download_artifacts(f"runs:/{iris_run}/model"), model_dir)
    (model_dir / "artifacts" / "drift_profile.json").unlink()
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    del mlmodel["metadata"]["mmp"]["drift_profile"]
    (model_dir / "MLmodel").write_text(yaml.safe_dump(mlmodel))

    info = {"model_uri": "runs:/old/model", "task": "classification", "name": "iris", "mmp_version": "0.1.0"}
    state = ServingState(model_dir=str(model_dir), info=info, settings={}, schema=RowSchema(FEATURES, FEATURES))
    state.load()
    assert state.ready and state.drift is None

    async def ask() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://mmp") as client:
            samples = iris.head(5)[FEATURES].to_dict(orient="records")
            return await client.get("/model/drift"), await client.post("/predict/batch", json={"samples": samples})

    drift, predicted = asyncio.run(ask())
    assert drift.status_code == 404 and drift.json()["error"] == "no_drift_profile"
    assert predicted.status_code == 200
    assert [p["prediction"] for p in predicted.json()["predictions"]] == ["setosa"] * 5


def test_column_and_v2_bodies_are_counted_in_the_drift_window_and_need_the_token(servers, iris):
    measured, _ = servers
    shifted = iris.assign(petal_length_cm=iris["petal_length_cm"] + 3.0)
    with httpx.Client(base_url=measured.url, headers=TOKEN, timeout=30) as client:
        for start in range(0, 300, 50):  # 300 rows, the whole window: half as columns, half as V2 requests
            part = shifted.iloc[start % len(shifted):][FEATURES].head(50)
            if start < 150:
                response = client.post("/predict/batch", json={"columns": part.to_dict(orient="list")})
            else:
                response = client.post("/v2/models/iris/infer", json={"inputs": [
                    {"name": c, "shape": [50], "datatype": "FP64", "data": part[c].tolist()} for c in FEATURES]})
            assert response.status_code == 200, response.text
        report = client.get("/model/drift").json()
    assert report["rows"] == 300 and report["features"]["petal_length_cm"]["status"] == "alert", report
    for body, path in (({"columns": iris.head(2)[FEATURES].to_dict(orient="list")}, "/predict/batch"),
                       ({"inputs": []}, "/v2/models/iris/infer")):
        refused = httpx.post(f"{measured.url}{path}", json=body, timeout=30)
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
