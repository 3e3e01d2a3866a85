"""`monitoring:` is checked before any work: warn at most alert, per-feature limits only for the
model's features (at compile when the recipe lists them, else when train reads the data); exit 2
naming the key path."""

from __future__ import annotations

import pytest

W = "recipe=wine_clusters"  # lists data.features

# (what the user typed, the key path the message must name, words the message must hold)
CORPUS = [
    (["recipe=model", "monitoring.data_drift.warn=0.5"], "monitoring.data_drift", "warn (0.5) is above alert (0.25)"),
    (["recipe=model", "monitoring.prediction_drift.alert=0.05"], "monitoring.prediction_drift",
     "warn (0.1) is above alert (0.05)"),
    ([W, "+monitoring.features.alcohol={warn: 0.6, alert: 0.3}"], "monitoring.features.alcohol",
     "warn (0.6) is above alert (0.3)"),
    ([W, "+monitoring.features.alcohl.alert=0.5"], "monitoring.features.alcohl",
     "'alcohl' is not one of the model's features; did you mean 'alcohol'?"),
    (["recipe=model", "monitoring.min_rows=0"], "monitoring.min_rows", "greater than or equal to 1"),
    (["recipe=model", "monitoring.data_drift.alert=-1"], "monitoring.data_drift.alert", "greater than or equal to 0"),
    (["recipe=model", "+monitoring.threshold=0.2"], "monitoring.threshold", "unknown key"),
]


@pytest.mark.parametrize("words, key_path, message", CORPUS, ids=[" ".join(w[1:]) for w, _, _ in CORPUS])
def test_a_bad_monitoring_setting_exits_2_naming_the_key(project, mmp, words, key_path, message):
    result = mmp("compile", *words)
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("mmp: error:") and "Traceback" not in result.err
    assert f"{key_path}:" in result.err and message in result.err, result.err


def test_the_default_monitoring_settings_and_valid_limits_compile(project, mmp):
    assert mmp("compile", W).code == 0
    result = mmp("compile", W, "+monitoring.features.alcohol={warn: 0.2, alert: 0.4}", "monitoring.min_rows=10")
    assert result.code == 0, result.err


def test_a_warn_above_alert_in_the_env_file_names_that_file(project, mmp):
    env = project / "conf" / "env" / "local.yaml"
    env.write_text(env.read_text().replace("data_drift: {warn: 0.1, alert: 0.25}", "data_drift: {warn: 0.3, alert: 0.25}"))
    result = mmp("compile", "recipe=model")
    assert result.code == 2
    assert "monitoring.data_drift: warn (0.3) is above alert (0.25)" in result.err and "env/local.yaml" in result.err


def test_batch_inference_checks_the_env_monitoring_before_loading_a_model(project, mmp):
    result = mmp("batch-inference", "--run-id", "0" * 32, "-d", "data/iris.csv", "monitoring.data_drift.warn=0.9")
    assert result.code == 2
    assert "monitoring.data_drift: warn (0.9) is above alert (0.25)" in result.err and "no such model" not in result.err


def test_a_feature_limit_for_a_column_not_in_the_data_fails_when_train_reads_the_data(project, mmp):
    typo = "+monitoring.features.mean_radus.alert=0.5"  # recipe=model takes every column: known only with the data
    assert mmp("compile", "recipe=model", typo).code == 0
    result = mmp("train", "recipe=model", typo, "-q")
    assert result.code == 2 and "problem in the data at data/breast_cancer.csv" in result.err  # before any fit
    assert "monitoring.features.mean_radus: 'mean_radus' is not one of the model's features" in result.err
    assert "did you mean 'mean_radius'?" in result.err
