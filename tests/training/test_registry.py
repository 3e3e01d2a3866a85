"""`mmp promote` and `mmp models` against a real `mlflow server` (and the embedded store)."""

from __future__ import annotations

import itertools

import mlflow
import pytest

from tests.conftest import mmp_in_process

_names = itertools.count(1)
GATE = "++registry.gate.enabled=true"


@pytest.fixture(scope="module")
def runs(workspace, mlflow_server) -> dict[str, str]:
    """Three iris runs in the server: a weak and a strong model on the same test rows, and one tested on other rows."""
    found = {}
    for label, overrides in {"weak": ["model.params.n_estimators=2", "model.params.max_depth=1"],
                             "strong": [],
                             "other_rows": ["data.split.seed=8"]}.items():
        result = mmp_in_process("train", "recipe=iris", "-q", "mlflow.experiment=registry-tests", *overrides,
                                cwd=workspace, MLFLOW_TRACKING_URI=mlflow_server)
        assert result.code == 0, result.err
        found[label] = result.out.strip().splitlines()[-1]
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    weak, strong = (client.get_run(found[k]).data.metrics["test_accuracy"] for k in ("weak", "strong"))
    assert weak < strong, "the test needs the weak model to score lower"
    return found


def promote(workspace, server: str, run_id: str, name: str, *extra: str):
    return mmp_in_process("promote", "--run-id", run_id, "--alias", "champion", "--name", name, *extra,
                          cwd=workspace, MLFLOW_TRACKING_URI=server)


def accuracy(server: str, run_id: str) -> float:
    return mlflow.MlflowClient(tracking_uri=server).get_run(run_id).data.metrics["test_accuracy"]


def champion(server: str, name: str) -> str:
    return mlflow.MlflowClient(tracking_uri=server).get_model_version_by_alias(name, "champion").run_id


def test_promote_registers_the_run_sets_the_alias_and_models_lists_version_alias_and_metric(workspace, mlflow_server, runs):
    name = f"registry-{next(_names)}"
    first = promote(workspace, mlflow_server, runs["weak"], name)
    assert first.code == 0, first.err
    assert f"version 1 of {name} (registered now)" in first.out
    assert f"alias champion -> {name} version 1 (no version held it before)" in first.out
    second = promote(workspace, mlflow_server, runs["strong"], name)
    assert second.code == 0, second.err
    assert f"alias champion -> {name} version 2 (before: version 1)" in second.out

    listed = mmp_in_process("models", "--name", name, cwd=workspace, MLFLOW_TRACKING_URI=mlflow_server)
    assert listed.code == 0, listed.err
    header, *rows = listed.out.strip().splitlines()
    assert header.split() == ["MODEL", "VERSION", "ALIASES", "RUN", "ID", "CREATED", "TEST", "METRIC"]
    assert [row.split()[:4] for row in rows] == [[name, "2", "champion", runs["strong"]], [name, "1", "-", runs["weak"]]]
    assert rows[0].endswith(f"test_accuracy {accuracy(mlflow_server, runs['strong']):.4g}")


def test_the_model_name_comes_from_registered_model_name_when_no_name_is_given(workspace, mlflow_server, runs):
    name = f"registry-{next(_names)}"
    result = mmp_in_process("promote", "--run-id", runs["weak"], "--alias", "champion",
                            f"++mlflow.registered_model_name={name}", cwd=workspace, MLFLOW_TRACKING_URI=mlflow_server)
    assert result.code == 0, result.err
    assert f"model name: {name} (mlflow.registered_model_name)" in result.out
    assert champion(mlflow_server, name) == runs["weak"]


def test_gate_refuses_a_worse_candidate_with_exit_2_naming_both_numbers(workspace, mlflow_server, runs):
    name = f"registry-{next(_names)}"
    assert promote(workspace, mlflow_server, runs["strong"], name, GATE).code == 0  # no holder yet: promoted
    refused = promote(workspace, mlflow_server, runs["weak"], name, GATE)
    assert refused.code == 2
    message = refused.err
    assert f"{accuracy(mlflow_server, runs['weak']):.6g}" in message
    assert f"{accuracy(mlflow_server, runs['strong']):.6g}" in message
    assert "test_accuracy" in message and "higher is better" in message and "Traceback" not in message
    assert champion(mlflow_server, name) == runs["strong"]
    versions = mlflow.MlflowClient(tracking_uri=mlflow_server).search_model_versions(f"name = '{name}'")
    assert [v.run_id for v in versions] == [runs["strong"]], "a refused candidate is not registered"


def test_gate_promotes_a_better_candidate_and_min_improvement_can_refuse_it(workspace, mlflow_server, runs):
    name = f"registry-{next(_names)}"
    assert promote(workspace, mlflow_server, runs["weak"], name, GATE).code == 0
    too_little = promote(workspace, mlflow_server, runs["strong"], name, GATE, "++registry.gate.min_improvement=0.9")
    assert too_little.code == 2 and "by at least 0.9" in too_little.err
    better = promote(workspace, mlflow_server, runs["strong"], name, GATE)
    assert better.code == 0, better.err
    assert "gate: passed: test_accuracy" in better.out and "(before: version 1)" in better.out
    assert champion(mlflow_server, name) == runs["strong"]


def test_gate_refuses_runs_tested_on_other_rows_naming_both_fingerprints(workspace, mlflow_server, runs):
    name = f"registry-{next(_names)}"
    assert promote(workspace, mlflow_server, runs["weak"], name, GATE).code == 0
    refused = promote(workspace, mlflow_server, runs["other_rows"], name, GATE)
    assert refused.code == 2
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    for run_id in (runs["weak"], runs["other_rows"]):
        assert client.get_run(run_id).data.tags["mmp.test_fingerprint"] in refused.err
    assert "registry.gate.same_test_data" in refused.err
    allowed = promote(workspace, mlflow_server, runs["other_rows"], name, GATE, "++registry.gate.same_test_data=false")
    better = accuracy(mlflow_server, runs["other_rows"]) > accuracy(mlflow_server, runs["weak"])
    assert allowed.code == (0 if better else 2) and "same_test_data" not in allowed.err  # now the numbers decide


def test_force_skips_the_gate_and_tags_the_version(workspace, mlflow_server, runs):
    name = f"registry-{next(_names)}"
    assert promote(workspace, mlflow_server, runs["strong"], name, GATE).code == 0
    forced = promote(workspace, mlflow_server, runs["weak"], name, GATE, "--force")
    assert forced.code == 0, forced.err
    assert "gate: skipped (--force)" in forced.out
    assert champion(mlflow_server, name) == runs["weak"]
    version = mlflow.MlflowClient(tracking_uri=mlflow_server).get_model_version_by_alias(name, "champion")
    assert version.tags["mmp.promoted_with_force"].startswith("champion at ")


def test_unknown_run_and_unknown_model_name_exit_2(workspace, mlflow_server, runs):
    result = promote(workspace, mlflow_server, "0123456789abcdef0123456789abcdef", "registry-nope")
    assert result.code == 2 and "--run-id: no run '0123456789abcdef0123456789abcdef'" in result.err
    listed = mmp_in_process("models", "--name", "no-such-model", cwd=workspace, MLFLOW_TRACKING_URI=mlflow_server)
    assert listed.code == 2 and "--name: no registered model 'no-such-model'" in listed.err


def test_models_on_an_empty_embedded_store_says_so_and_promote_names_the_model_after_the_recipe(workspace, tmp_path):
    store = f"mlflow.tracking_uri={tmp_path / 'mlruns'}"
    empty = mmp_in_process("models", store, cwd=workspace)
    assert empty.code == 0, empty.err
    assert empty.out.startswith("no registered models at sqlite:///") and "mmp promote" in empty.out
    trained = mmp_in_process("train", "recipe=iris", "-q", "model.params.n_estimators=5", store, cwd=workspace)
    assert trained.code == 0, trained.err
    run_id = trained.out.strip().splitlines()[-1]
    promoted = mmp_in_process("promote", "--run-id", run_id, "--alias", "champion", store, cwd=workspace)
    assert promoted.code == 0, promoted.err
    assert "model name: iris (the run's recipe name" in promoted.out
    listed = mmp_in_process("models", store, cwd=workspace)
    assert listed.out.strip().splitlines()[1].split()[:4] == ["iris", "1", "champion", run_id]
