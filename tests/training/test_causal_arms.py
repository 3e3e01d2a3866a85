"""Causal training with several arms: the IHDP three-arm example recovers each arm's known effect, its
model names the best arm per row the same way everywhere, and bad arms fail before any MLflow run."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, mmp_in_process

ARMS = ["control", "phone", "visits"]  # control first, the rest sorted: the order of the model's columns
OUTPUTS = ["prediction", "best_arm", "prediction_phone", "prediction_visits",
           "outcome_control", "outcome_phone", "outcome_visits"]


def make_data():
    """scripts/make_data.py, whose seeded generator wrote data/ihdp_arms.csv (and knows the true effects)."""
    spec = importlib.util.spec_from_file_location("make_data", REPO / "scripts" / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def true_effects(ids: np.ndarray) -> dict[str, np.ndarray]:
    """Each treated arm's true effect on these rows (ids 1..n in the generator's order), recomputed, not read."""
    data = make_data()
    return {arm: effect[ids - 1] for arm, effect in data.ihdp_arms_surface(data.IHDP_SEED)[3].items()}


def mmp_in(workspace, *args: str, **env: str) -> int:
    """`mmp ARGS` in this process, in `workspace`: its exit code."""
    return mmp_in_process(*args, cwd=workspace, **env).code


def trained_arms(workspace) -> str:
    """recipes/causal/ihdp_arms.yaml trained once per session workspace (the serving test shares it): its run id."""
    from mlflow.tracking import MlflowClient

    from mmp.io.tracking import mlflow_uri

    marker = workspace / "ihdp_arms_run_id.txt"
    if not marker.exists():
        assert mmp_in(workspace, "train", "recipe=causal/ihdp_arms", "-q") == 0
        client = MlflowClient(mlflow_uri(str(workspace / "mlruns")))
        experiment = client.get_experiment_by_name("ihdp_arms")
        marker.write_text(client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])[0].info.run_id)
    return marker.read_text()


def arms_batch(workspace, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every row without treatment and outcome, what `mmp batch-inference` wrote for them), once per workspace."""
    from mmp.io.tracking import mlflow_uri

    rows = pd.read_csv(workspace / "data" / "ihdp_arms.csv").drop(columns=["treatment", "outcome"])
    output = workspace / f"ihdp_arms_predictions_{run_id}.csv"
    if not output.exists():
        rows.to_csv(workspace / "ihdp_arms_rows.csv", index=False)
        code = mmp_in(workspace, "batch-inference", "--run-id", run_id, "-d", "ihdp_arms_rows.csv", "-o", output.name,
                      "-q", MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")))
        assert code == 0
    return rows, pd.read_csv(output)


@pytest.fixture(scope="module")
def arms_run(workspace):
    """(run id, MLflow client, the run) of the trained three-arm example."""
    from mlflow.tracking import MlflowClient

    from mmp.io.tracking import mlflow_uri

    run_id = trained_arms(workspace)
    client = MlflowClient(mlflow_uri(str(workspace / "mlruns")))
    return run_id, client, client.get_run(run_id)


@pytest.mark.slow
def test_each_arms_true_ate_lies_in_its_logged_interval(arms_run, workspace):
    import polars as pl

    from mmp.config.spec import SplitSpec
    from mmp.training.causal import treatment_split

    run_id, client, run = arms_run
    m = run.data.metrics
    parts = treatment_split(pl.read_csv(workspace / "data" / "ihdp_arms.csv"), SplitSpec(seed=42, strategy="random"),
                            "treatment")
    for split in ("validation", "test"):
        truth = true_effects(parts[split]["id"].to_numpy())
        for arm in ("phone", "visits"):  # true ATE about 1.4-1.6 (phone) and 3.6-4.5 (visits)
            lower, upper = m[f"{split}_ate_{arm}_lower"], m[f"{split}_ate_{arm}_upper"]
            assert lower <= truth[arm].mean() <= upper and 0 < upper - lower < 3, (split, arm, truth[arm].mean(), m)
        assert m[f"{split}_auuc"] == pytest.approx((m[f"{split}_auuc_phone"] + m[f"{split}_auuc_visits"]) / 2)
    assert m["test_auuc_visits"] > 0.5 and {"test_qini", "test_qini_phone", "test_ate_visits_predicted"} <= set(m)
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert plots == {"plots/uplift_curve.png", "plots/qini_curve.png", "plots/effect_by_decile.png"}


@pytest.mark.slow
def test_batch_inference_equals_the_pyfunc_and_names_the_best_arm(arms_run, workspace):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    run_id, _, _ = arms_run
    rows, written = arms_batch(workspace, run_id)
    assert list(written.columns) == ["id", *OUTPUTS]
    mlflow.set_tracking_uri(mlflow_uri(str(workspace / "mlruns")))
    expected = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(rows)
    assert written["best_arm"].tolist() == expected["best_arm"].tolist()
    for column in OUTPUTS:
        if column != "best_arm":
            np.testing.assert_allclose(written[column], expected[column], rtol=1e-12)
    assert set(written["best_arm"]) <= set(ARMS) and {"phone", "visits"} <= set(written["best_arm"])
    effects = written[["prediction_phone", "prediction_visits"]].to_numpy()
    np.testing.assert_allclose(written["prediction"], effects.max(axis=1))
    best = np.where(effects.max(axis=1) > 0, np.array(["phone", "visits"])[effects.argmax(axis=1)], "control")
    assert written["best_arm"].tolist() == best.tolist()
    truth = true_effects(rows["id"].to_numpy())  # each arm's effect tracks its truth
    assert np.corrcoef(written["prediction_visits"], truth["visits"])[0, 1] > 0.8
    assert np.corrcoef(written["prediction_phone"], truth["phone"])[0, 1] > 0.4


def _arms(workspace) -> pd.DataFrame:
    return pd.read_csv(workspace / "data" / "ihdp_arms.csv")


def _few_phone(f: pd.DataFrame) -> pd.DataFrame:
    keep = f.index[f["treatment"] == "phone"][:8]  # 8 phone rows: too few for every split to hold 5
    return f.assign(treatment=np.where((f["treatment"] == "phone") & ~f.index.isin(keep), "visits", f["treatment"]))


ARM_ERRORS = [  # (name, data change, overrides, key, phrase)
    ("one_arm", lambda f: f.assign(treatment="visits"), [], "data.treatment", "every row of 'treatment' is 'visits'"),
    ("no_control", None, ["data.control=email"], "data.control", "'email' is not a value of 'treatment'"),
    ("unnamed_control", None, ["~data.control"], "data.control", "which arm of 'treatment' is the control"),
    ("few_rows", _few_phone, [], "data.treatment", "has only 1 'phone' row;"),
    ("one_arm_learner", None, ["model.class_path=econml.dml.NonParamDML", "~model.params"], "model.class_path",
     "NonParamDML takes one treated arm; 'treatment' has 2 (phone, visits)"),
    ("amounts", lambda f: f.assign(treatment=f["id"] % 3 * 0.5), ["~data.control"], "data.treatment",
     "arms are labels, not amounts"),
    ("odd_label", lambda f: f.assign(treatment=f["treatment"].replace({"phone": "phone call"})), [], "data.treatment",
     "arm 'phone call' of 'treatment' cannot name an output column"),
]


@pytest.mark.parametrize("name, change, words, key, phrase", ARM_ERRORS, ids=[e[0] for e in ARM_ERRORS])
def test_bad_arms_exit_2_naming_the_key_before_any_mlflow_run(project, mmp, name, change, words, key, phrase):
    from mlflow.tracking import MlflowClient

    from mmp.io.tracking import mlflow_uri

    if change is not None:
        change(_arms(project)).to_csv(project / "data" / f"{name}.csv", index=False)
        words = [*words, f"data.source=data/{name}.csv"]
    # The split's check runs in `mmp train` only; the rest `mmp validate` finds as well, without MLflow.
    result = mmp("train" if name == "few_rows" else "validate", "recipe=causal/ihdp_arms", *words)
    assert result.code == 2, result.err
    assert key in result.err and phrase in result.err and "Traceback" not in result.err, result.err
    if name == "few_rows":
        client = MlflowClient(mlflow_uri(str(project / "mlruns")))
        assert not client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_integer_arms_default_to_0_as_control():
    import polars as pl

    from mmp.config.causal_checks import treatment_arms
    from mmp.config.spec import RunSpec

    def spec(**control):
        return RunSpec.model_validate({"name": "t", "task": "causal", "model": {"class_path": "econml.dr.DRLearner"},
                                       "data": {"target": "y", "treatment": "t", **control}})

    frame = pl.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "t": [2, 0, 1, None]})
    assert treatment_arms(spec(), frame, lambda path: None) == ([0, 1, 2], [])
    assert treatment_arms(spec(control="2"), frame, lambda path: None) == ([2, 0, 1], [])  # text "2" names arm 2
