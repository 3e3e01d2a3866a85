"""Causal (uplift) training: the IHDP example recovers its known effect, and its model predicts the same
everywhere (evaluation, batch inference, the MLflow pyfunc)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import clean_env, run_mmp

IHDP_SEED = 42  # scripts/make_data.py wrote data/ihdp.csv with it


def trained_ihdp(workspace) -> str:
    """recipes/causal/ihdp.yaml trained once per session workspace (the serving tests share it): its run id.
    Kept in a file there, not a global: pytest may import this module twice (as a test and from another)."""
    marker = workspace / "ihdp_run_id.txt"
    if not marker.exists():
        result = run_mmp("train", "recipe=causal/ihdp", "-q", cwd=workspace, env=clean_env(BENTOML_DO_NOT_TRACK="true"))
        assert result.code == 0, result.err
        marker.write_text(result.out.strip().splitlines()[-1])
    return marker.read_text()


def batch_predictions(workspace, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the rows, what `mmp batch-inference` wrote for them): every IHDP row without its treatment and
    outcome, predicted once per session workspace."""
    from mmp.io.tracking import mlflow_uri

    rows = pd.read_csv(workspace / "data" / "ihdp.csv").drop(columns=["treatment", "outcome"])
    output = workspace / f"ihdp_predictions_{run_id}.csv"
    if not output.exists():
        rows.to_csv(workspace / "ihdp_rows.csv", index=False)
        result = run_mmp("batch-inference", "--run-id", run_id, "-d", "ihdp_rows.csv", "-o", output.name, "-q",
                         cwd=workspace, env=clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns"))))
        assert result.code == 0, result.err
    return rows, pd.read_csv(output)


@pytest.fixture(scope="module")
def ihdp_run(workspace):
    """(run id, MLflow client, the run) of the trained example."""
    from mlflow.tracking import MlflowClient

    from mmp.io.tracking import mlflow_uri

    run_id = trained_ihdp(workspace)
    client = MlflowClient(mlflow_uri(str(workspace / "mlruns")))
    return run_id, client, client.get_run(run_id)


def true_effects(ids: np.ndarray) -> np.ndarray:
    """Hill's surface B effects of these rows (ids 1..n in the generator's order), recomputed, not read."""
    from econml.data.dgps import ihdp_surface_B

    return ihdp_surface_B(random_state=IHDP_SEED)[3][ids - 1]


@pytest.mark.slow
def test_the_example_recovers_the_true_ate_within_its_interval_on_test(ihdp_run, workspace):
    import polars as pl

    from mmp.config.spec import SplitSpec
    from mmp.training.causal import treatment_split

    _, _, run = ihdp_run
    parts = treatment_split(pl.read_csv(workspace / "data" / "ihdp.csv"), SplitSpec(seed=42, strategy="random"), "treatment")
    assert parts["test"].height == int(run.data.params["split.test_rows"])
    truth = true_effects(parts["test"]["id"].to_numpy()).mean()  # about 5.04
    m = run.data.metrics
    validation = true_effects(parts["validation"]["id"].to_numpy()).mean()  # about 4.80
    assert m["validation_ate_lower"] <= validation <= m["validation_ate_upper"], (validation, m)
    assert m["test_ate_lower"] <= truth <= m["test_ate_upper"], (truth, m)
    assert abs(m["test_ate"] - truth) < 1.0 and abs(m["test_ate_predicted"] - truth) < 1.0, (truth, m)
    assert 0 < m["test_ate_upper"] - m["test_ate_lower"] < 3  # an interval that says something


@pytest.mark.slow
def test_the_example_ranks_better_than_random_targeting(ihdp_run):
    _, _, run = ihdp_run
    m = run.data.metrics
    assert m["test_auuc"] > 0.5 and m["validation_auuc"] > 0.5
    assert {"test_qini", "validation_qini", "validation_ate", "validation_ate_lower", "validation_ate_upper"} <= set(m)
    assert run.data.tags["mmp.task"] == "causal"


@pytest.mark.slow
def test_uplift_plots_and_the_econml_pin_are_logged(ihdp_run, workspace):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    run_id, client, _ = ihdp_run
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert plots == {"plots/uplift_curve.png", "plots/qini_curve.png", "plots/effect_by_decile.png"}
    mlflow.set_tracking_uri(mlflow_uri(str(workspace / "mlruns")))
    requirements = open(mlflow.pyfunc.get_model_dependencies(f"runs:/{run_id}/model")).read()
    assert "econml==" in requirements and "scikit-learn==" in requirements


@pytest.mark.slow
def test_batch_inference_equals_the_pyfunc_and_writes_entity_effect_and_outcomes(ihdp_run, workspace):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    run_id, _, _ = ihdp_run
    uri = mlflow_uri(str(workspace / "mlruns"))
    rows, written = batch_predictions(workspace, run_id)
    assert list(written.columns) == ["id", "prediction", "outcome_control", "outcome_treated"]
    mlflow.set_tracking_uri(uri)
    expected = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(rows)
    assert written["id"].tolist() == rows["id"].tolist()
    for column in ("prediction", "outcome_control", "outcome_treated"):
        np.testing.assert_allclose(written[column], expected[column], rtol=1e-12)
    # The effect tracks the truth: rows the model ranks high gain more than rows it ranks low.
    truth = true_effects(rows["id"].to_numpy())
    assert np.corrcoef(written["prediction"], truth)[0, 1] > 0.5


def _write(project, name: str, frame: pd.DataFrame) -> str:
    frame.to_csv(project / "data" / name, index=False)
    return f"data.source=data/{name}"


def _ihdp(project) -> pd.DataFrame:
    return pd.read_csv(project / "data" / "ihdp.csv")


DATA_ERRORS = [
    ("amounts", lambda f: f.assign(treatment=f["id"] % 3 * 0.5), "data.treatment", "arms are labels, not amounts"),
    ("text_arms", lambda f: f.assign(treatment=np.where(f["treatment"] == 1, "yes", "no")), "data.control",
     "which arm of 'treatment' is the control? It holds 'no', 'yes'"),
    ("all_control", lambda f: f.assign(treatment=0), "data.treatment", "every row of 'treatment' is control"),
    ("few_treated", lambda f: f.assign(treatment=(f["id"] <= 1).astype(int)), "data.treatment", "has no treated rows"),
    ("no_column", lambda f: f.drop(columns=["treatment"]), "data.treatment", "column not in the data: treatment"),
    ("text_outcome", lambda f: f.assign(outcome="high"), "data.target", "not numbers"),
]


@pytest.mark.parametrize("name, change, key, phrase", DATA_ERRORS, ids=[d[0] for d in DATA_ERRORS])
def test_bad_data_exits_2_naming_the_key_before_any_mlflow_run(project, mmp, name, change, key, phrase):
    from mlflow.tracking import MlflowClient

    from mmp.io.tracking import mlflow_uri

    result = mmp("train", "recipe=causal/ihdp", _write(project, f"{name}.csv", change(_ihdp(project))))
    assert result.code == 2, result.err
    assert key in result.err and phrase in result.err and "Traceback" not in result.err, result.err
    client = MlflowClient(mlflow_uri(str(project / "mlruns")))
    experiments = client.search_experiments()
    assert not client.search_runs([e.experiment_id for e in experiments])


def test_uplift_metrics_on_a_randomised_trial_behave_as_documented():
    """Random ranking scores about 0.5 / 0; ranking by the true effect beats it; the AIPW interval covers."""
    from mmp.training.uplift import aipw_ate, uplift_metrics

    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.normal(size=n)
    t = rng.integers(0, 2, size=n).astype(float)
    tau = 1.0 + x
    y = x + tau * t + rng.normal(size=n)
    by_truth, by_chance = uplift_metrics(y, t, tau), uplift_metrics(y, t, rng.normal(size=n))
    assert abs(by_chance["auuc"] - 0.5) < 0.05 and abs(by_chance["qini"]) < 0.05
    assert by_truth["auuc"] > 0.6 and by_truth["qini"] > 0.1
    ate = aipw_ate(y, t, mu0=x, mu1=x + tau, e=np.full(n, 0.5))
    assert ate["ate_lower"] < 1.0 < ate["ate_upper"] and ate["ate_upper"] - ate["ate_lower"] < 0.1


def test_validate_with_data_finds_a_treatment_that_is_not_arms(project, mmp):
    result = mmp("validate", "recipe=causal/ihdp", _write(project, "doses.csv", _ihdp(project).assign(treatment=lambda f: f["id"] % 3 / 2)))
    assert result.code == 2 and "data.treatment" in result.err and "arms are labels" in result.err, result.err
    assert mmp("validate", "recipe=causal/ihdp").code == 0


def test_settings_the_learner_refuses_at_fit_exit_2_naming_model_params(project, mmp):
    result = mmp("train", "recipe=causal/ihdp", "model.class_path=econml.dr.DRLearner", "~model.params",
                 "+model.params={cv: -1}", "-q")
    assert result.code == 2 and "model.params: econml.dr.DRLearner cannot fit with these settings" in result.err
    assert "Traceback" not in result.err
