"""`mmp serve-api` on a causal model: a real BentoML process answers with the same effects and
potential outcomes as batch inference, and the treatment is no input."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

from tests.conftest import Server
from tests.training.test_causal import batch_predictions, trained_ihdp

OUTPUTS = ("prediction", "outcome_control", "outcome_treated")


@pytest.fixture(scope="module")
def causal_server(workspace):
    run_id = trained_ihdp(workspace)
    srv = Server(workspace, run_id, env={"BENTOML_DO_NOT_TRACK": "true"})
    try:
        srv.wait_ready()
        yield srv, run_id
    finally:
        srv.stop()


@pytest.mark.slow
def test_served_effects_equal_batch_inference(causal_server, workspace):
    srv, run_id = causal_server
    rows, batch = batch_predictions(workspace, run_id)
    rows, batch = rows.sample(20, random_state=3), batch.set_index("id")
    samples = rows.to_dict(orient="records")
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        single = [client.post("/predict", json=s).json() for s in samples]
        many = client.post("/predict/batch", json={"samples": samples}).json()["predictions"]
        schema = client.get("/model/schema").json()
    assert "treatment" not in [i["name"] for i in schema["inputs"]]
    for i, (one, other) in enumerate(zip(single, many)):
        assert one["id"] == other["id"] == samples[i]["id"]
        for column in OUTPUTS:
            assert one[column] == pytest.approx(batch.loc[samples[i]["id"], column], abs=1e-9)
            assert other[column] == pytest.approx(batch.loc[samples[i]["id"], column], abs=1e-9)


@pytest.mark.slow
def test_a_missing_feature_is_a_422_naming_it(causal_server, workspace):
    srv, _ = causal_server
    row = pd.read_csv(workspace / "data" / "ihdp.csv").drop(columns=["treatment", "outcome", "momage"]).iloc[0].to_dict()
    response = httpx.post(f"{srv.url}/predict", json=row, timeout=30)
    assert response.status_code == 422 and "momage" in response.text
    response = httpx.post(f"{srv.url}/predict", json={**row, "momage": None, "treatment": 1}, timeout=30)
    assert response.status_code == 200 and set(OUTPUTS) <= set(response.json())


@pytest.mark.slow
def test_several_arms_serve_each_effect_and_the_best_arm_as_batch_inference_does(workspace):
    """In process (no second server): the logged model's columns through the service's row shaping, and
    the outputs /model/schema lists from the logged signature."""
    import json

    import mlflow

    from mmp.io.tracking import mlflow_uri
    from mmp.models.tabular import load_from_mlflow_dir
    from mmp.serving.routes import _extra_outputs
    from mmp.serving.state import shape_rows
    from tests.training.test_causal_arms import OUTPUTS as ARM_OUTPUTS
    from tests.training.test_causal_arms import arms_batch, trained_arms

    run_id = trained_arms(workspace)
    rows, batch = arms_batch(workspace, run_id)
    mlflow.set_tracking_uri(mlflow_uri(str(workspace / "mlruns")))
    model_dir = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model")
    sample, batch = rows.sample(20, random_state=3), batch.set_index("id")
    served = json.loads(json.dumps(shape_rows(load_from_mlflow_dir(model_dir).predict_columns(sample))))
    for i, one in zip(sample["id"], served):
        assert one["best_arm"] == batch.loc[i, "best_arm"] and one["probability"] is None
        for column in ARM_OUTPUTS[:1] + ARM_OUTPUTS[2:]:
            assert one[column] == pytest.approx(batch.loc[i, column], abs=1e-9)
    assert set(ARM_OUTPUTS[1:]) <= set(_extra_outputs(model_dir))
