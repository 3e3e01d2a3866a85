"""Drift after training: a really trained model carries its training profile; batch inference and
`mmp monitor` report PSI per column, log a drift run beside the model's run, and exit 3 past the
alert limit when asked."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from tests.conftest import REPO, mmp_in_process

SHIFTED = {"mean_radius", "worst_texture"}  # moved by one standard deviation in shifted.csv


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """This module's own project folder with its embedded MLflow store."""
    root = tmp_path_factory.mktemp("drift")
    for name in ("conf", "recipes", "data"):
        shutil.copytree(REPO / name, root / name)
    frame = pd.read_csv(root / "data" / "breast_cancer.csv")
    for column in SHIFTED:
        frame[column] = frame[column] + frame[column].std()
    frame.to_csv(root / "shifted.csv", index=False)
    return root


def mmp(project, *args: str):
    return mmp_in_process(*args, cwd=project)


@pytest.fixture(scope="module")
def run_id(project) -> str:
    result = mmp(project, "train", "recipe=model", "-q")
    assert result.code == 0, result.err
    return result.out.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def unprofiled_run_id(project) -> str:
    """The same recipe trained with monitoring off: its model carries no drift profile."""
    result = mmp(project, "train", "recipe=model", "monitoring.enabled=false", "-q")
    assert result.code == 0, result.err
    return result.out.strip().splitlines()[-1]


def drift_run(project, err: str):
    """The MLflow drift run a command reported on stderr."""
    import mlflow

    from mmp.io.tracking import mlflow_uri

    run_id = re.search(r"drift run ([0-9a-f]{32})", err).group(1)
    client = mlflow.MlflowClient(mlflow_uri(str(project / "mlruns")))
    return client, client.get_run(run_id)


def statuses(report: dict, group: str = "features") -> dict[str, str]:
    return {name: entry["status"] for name, entry in report[group].items()}


def test_the_logged_model_carries_the_training_split_profile(project, run_id):
    import mlflow

    from mmp.io import tracking
    from mmp.models import logged

    tracking.connect(str(project / "mlruns"))
    model = logged.load(f"runs:/{run_id}/model")
    profile = model.drift_profile
    assert model.info["drift_profile"] == "artifacts/drift_profile.json"
    assert set(profile["features"]) == set(model.features) and len(profile["features"]) == 30
    train_rows = int(mlflow.MlflowClient().get_run(run_id).data.params["split.train_rows"])
    assert profile["features"]["mean_radius"]["kind"] == "numeric"
    assert profile["features"]["mean_radius"]["rows"] == profile["predictions"]["probability"]["rows"] == train_rows
    assert profile["predictions"]["prediction"]["categories"] == ["benign", "malignant"]
    assert profile["predictions"]["probability"]["kind"] == "numeric"


def test_batch_inference_of_shifted_data_logs_a_drift_run_linked_to_the_model(project, run_id, tmp_path):
    result = mmp(project, "batch-inference", "--run-id", run_id, "-d", "shifted.csv", "-o", str(tmp_path / "out.parquet"))
    assert result.code == 0, result.err
    assert "drift vs training data (PSI, 569 rows): alert" in result.err
    client, run = drift_run(project, result.err)
    model_run = client.get_run(run_id)
    assert run.info.experiment_id == model_run.info.experiment_id
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["mmp.kind"] == "drift" and tags["mmp.model_run_id"] == run_id
    assert tags["mmp.model_uri"] == f"runs:/{run_id}/model" and tags["mmp.data_source"] == "shifted.csv"
    assert {name for name, value in metrics.items() if name.startswith("psi_") and value >= 0.25} == \
        {f"psi_{c}" for c in SHIFTED}
    assert len([m for m in metrics if m.startswith("psi_")]) == 32  # 30 features, prediction, probability
    assert "psi_prediction" in metrics and "psi_probability" in metrics
    assert metrics["rows"] == 569 and metrics["alerts"] == 2
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "drift")}
    assert artifacts == {"drift/report.json", "drift/report.csv", "drift/psi.png"}
    report = json.loads(open(client.download_artifacts(run.info.run_id, "drift/report.json", str(tmp_path))).read())
    assert {name for name, status in statuses(report).items() if status == "alert"} == SHIFTED
    summary = result.err.split("drift vs training data", 1)[1].splitlines()
    assert {summary[1].split()[0], summary[2].split()[0]} == SHIFTED  # worst first


def test_fail_on_drift_exits_3_after_writing_the_predictions(project, run_id, tmp_path):
    out = tmp_path / "scores.csv"
    result = mmp(project, "batch-inference", "--run-id", run_id, "-d", "shifted.csv", "-o", str(out), "--fail-on-drift")
    assert result.code == 3, result.err
    assert len(pd.read_csv(out)) == 569 and result.out.strip() == str(out)
    message = result.err.strip().splitlines()[-1]
    assert message.startswith("mmp: drift: past the alert limit:")
    assert re.search(r"mean_radius \(PSI \d\.\d{3} >= 0\.25\)", message) and "worst_texture (PSI" in message


def test_monitoring_fail_on_alert_in_the_env_exits_3_like_the_flag(project, run_id, tmp_path):
    result = mmp(project, "batch-inference", "--run-id", run_id, "-d", "shifted.csv", "-o", str(tmp_path / "o.parquet"),
                 "monitoring.fail_on_alert=true")
    assert result.code == 3 and (tmp_path / "o.parquet").exists()


def test_the_training_data_passes_fail_on_drift(project, run_id, tmp_path):
    result = mmp(project, "batch-inference", "--run-id", run_id, "-d", "data/breast_cancer.csv",
                 "-o", str(tmp_path / "o.parquet"), "--fail-on-drift")
    assert result.code == 0, result.err
    assert "drift vs training data (PSI, 569 rows): ok" in result.err


def test_monitoring_disabled_computes_and_logs_no_drift(project, run_id, tmp_path):
    result = mmp(project, "batch-inference", "--run-id", run_id, "-d", "shifted.csv", "-o", str(tmp_path / "o.parquet"),
                 "monitoring.enabled=false", "--fail-on-drift")
    assert result.code == 0, result.err
    assert "drift" not in result.err


def test_a_model_without_a_profile_still_predicts_and_says_why_there_is_no_drift(project, unprofiled_run_id, tmp_path):
    result = mmp(project, "batch-inference", "--run-id", unprofiled_run_id, "-d", "shifted.csv",
                 "-o", str(tmp_path / "o.parquet"), "--fail-on-drift")
    assert result.code == 0, result.err
    assert len(pd.read_parquet(tmp_path / "o.parquet")) == 569
    assert "drift: not computed, the model carries no drift profile" in result.err


def test_monitor_on_the_training_data_is_all_ok(project, run_id):
    result = mmp(project, "monitor", "--run-id", run_id, "-d", "data/breast_cancer.csv", "--fail-on-drift")
    assert result.code == 0, result.err
    assert result.out.strip() == "ok"
    assert "not in the data (no_data): prediction, probability" in result.err  # data drift only
    _, run = drift_run(project, result.err)
    assert run.data.tags["mmp.kind"] == "drift" and "psi_prediction" not in run.data.metrics


def test_monitor_on_shifted_data_flags_exactly_the_shifted_features(project, run_id, tmp_path):
    out = tmp_path / "report.json"
    result = mmp(project, "monitor", "--run-id", run_id, "-d", "shifted.csv", "-o", str(out))
    assert result.code == 0, result.err
    assert result.out.strip() == "alert"
    report = json.loads(out.read_text())
    assert {name for name, status in statuses(report).items() if status != "ok"} == SHIFTED
    assert set(statuses(report, "predictions").values()) == {"no_data"}
    assert report["model_run_id"] == run_id and report["rows"] == 569


def test_monitor_with_fail_on_drift_exits_3_naming_the_columns(project, run_id):
    result = mmp(project, "monitor", "--model-uri", f"runs:/{run_id}/model", "-d", "shifted.csv", "--fail-on-drift")
    assert result.code == 3
    assert "mean_radius (PSI" in result.err and "worst_texture (PSI" in result.err


def test_monitor_on_a_batch_output_reports_prediction_drift(project, run_id, tmp_path):
    scores = tmp_path / "scores.parquet"
    assert mmp(project, "batch-inference", "--run-id", run_id, "-d", "data/breast_cancer.csv", "-o", str(scores),
               "-q").code == 0
    result = mmp(project, "monitor", "--run-id", run_id, "-d", str(scores), "-o", str(tmp_path / "r.json"))
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "r.json").read_text())
    assert statuses(report, "predictions") == {"prediction": "ok", "probability": "ok"}
    assert set(statuses(report).values()) == {"no_data"}


@pytest.mark.parametrize("case", ["unknown run", "no profile", "missing columns"])
def test_monitor_exits_2_on_bad_input(project, run_id, unprofiled_run_id, case):
    args = {"unknown run": ["--run-id", "0" * 32, "-d", "shifted.csv"],
            "no profile": ["--run-id", unprofiled_run_id, "-d", "shifted.csv"],
            "missing columns": ["--run-id", run_id, "-d", "data/iris.csv"]}[case]
    result = mmp(project, "monitor", *args)
    assert result.code == 2, result.err
    expected = {"unknown run": "no such model", "no profile": "the model has no drift profile",
                "missing columns": "missing columns: mean_radius"}[case]
    assert result.err.startswith("mmp: error:") and expected in result.err and "Traceback" not in result.err


def test_batch_inference_help_documents_exit_3(project):
    import contextlib
    import io

    from mmp.cli import build_parser

    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
        build_parser().parse_args(["batch-inference", "--help"])
    assert "--fail-on-drift" in text.getvalue() and "3 drift past its alert limit" in text.getvalue()
