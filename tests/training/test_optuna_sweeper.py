"""`mmp train -m hydra/sweeper=optuna ...`: mmp's own Hydra sweeper on Optuna 5 (hydra_plugins/mmp_optuna_sweeper)."""

from __future__ import annotations

import re

import pytest
import yaml
from omegaconf import OmegaConf

from tests.conftest import clean_env, run_mmp

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
C_SEARCH = "model.params.C=tag(log, interval(0.001, 100))"


def client(workspace):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    return mlflow.MlflowClient(tracking_uri=mlflow_uri(str(workspace / "mlruns")))


def sweep(workspace, tmp_path, experiment, *args):
    """Run an Optuna sweep as a user would; the sweep dir is `tmp_path/sweep`."""
    return run_mmp("train", "-m", "recipe=model", "hydra/sweeper=optuna", *args, f"mlflow.experiment={experiment}",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", "-q", cwd=workspace, env=clean_env())


def children_by_trial(mlflow, parent_id):
    """The parent's child runs, by their `mmp.trial_number` tag."""
    parent = mlflow.get_run(parent_id)
    runs = mlflow.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    return {int(r.data.tags["mmp.trial_number"]): r for r in runs}


# --- the search space, read without training -------------------------------------------------------

def test_sweep_expressions_become_optuna_distributions():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from hydra_plugins.mmp_optuna_sweeper.search_space import read_search_space

    space = read_search_space(
        {"model.params.C": "interval(0.1, 1)", "model.params.max_iter": "range(100, 400, 100)"},
        ["recipe=model", "model.params.C=tag(log, interval(0.001, 100))", "+model.params.l1_ratio=0.0,1.0",
         "+model.params.solver=choice(lbfgs, 'new ton')", "model.params.tol=tag(int, log, interval(1, 64))"])
    d = space.distributions
    assert d["model.params.C"] == FloatDistribution(0.001, 100.0, log=True)  # the command line wins
    assert d["model.params.max_iter"] == IntDistribution(100, 300, step=100)  # range's stop is excluded, as in Hydra
    assert d["model.params.l1_ratio"] == CategoricalDistribution([0.0, 1.0])
    assert d["model.params.tol"] == IntDistribution(1, 64, log=True)
    assert space.fixed == ["recipe=model"]
    overrides = space.overrides({"model.params.C": 0.5, "model.params.max_iter": 200, "model.params.l1_ratio": 1.0,
                                 "model.params.solver": "new ton", "model.params.tol": 8})
    assert overrides == ["recipe=model", "model.params.max_iter=200", "model.params.C=0.5",
                         "+model.params.l1_ratio=1.0", "+model.params.solver=new\\ ton", "model.params.tol=8"]


@pytest.mark.parametrize("expression, message", [
    ("interval(5, 1)", "model.params.C: interval(5, 1): the low end 5 is not below the high end 1"),
    ("tag(log, interval(0, 1))", "model.params.C: tag(log, interval(0, 1)): a log scale needs a low end above 0, got 0"),
    ("interval(a, 1)", "model.params.C: cannot read interval(a, 1)"),
    ("tag(foo, interval(1, 2))", "model.params.C: tag(foo, interval(1, 2)): unknown tag foo"),
    ("range(10, 1)", "model.params.C: range(10, 1): it holds no values"),
    ("tag(int, interval(0.5, 3))", "tag(int, ...) needs whole-number ends, got 0.5 and 3"),
])
def test_a_bad_search_expression_exits_2_naming_the_key_and_what_is_allowed(project, mmp, expression, message):
    result = mmp("train", "-m", "recipe=model", "hydra/sweeper=optuna", f"model.params.C={expression}")
    assert result.code == 2, result.err
    assert message in result.err
    assert "interval(low,high)" in result.err and "tag(log, interval(low,high))" in result.err  # what is allowed
    assert f"(from override 'model.params.C={expression}')" in result.err
    assert "Traceback" not in result.err and "optuna: trial" not in result.err


@pytest.mark.parametrize("args, message", [
    (["model.params.C=0.5"], "hydra.sweeper.params: nothing to search"),
    (["hydra.sweeper.direction=max", C_SEARCH], "hydra.sweeper.direction: 'max' is not a direction; allowed: maximize, minimize"),
    (["hydra.sweeper.n_trials=0", C_SEARCH], "hydra.sweeper.n_trials: must be at least 1, got 0"),
    (["evaluate.primary_metric=rocauc", C_SEARCH], "evaluate.primary_metric: 'rocauc' is not a classification metric; "
                                                    "did you mean 'roc_auc'?"),
    (["hydra.sweeper.n_trails=3", C_SEARCH], "hydra.sweeper.n_trails: there is no key 'n_trails' to change; "
                                              "did you mean 'n_trials'?"),
    (["hydra/sweeper/sampler=cmaes", C_SEARCH], "there is no hydra/sweeper/sampler option 'cmaes'"),
])
def test_bad_sweeper_settings_exit_2_before_any_trial(project, mmp, args, message):
    result = mmp("train", "-m", "recipe=model", "hydra/sweeper=optuna", *args)
    assert result.code == 2 and message in result.err, result.err
    assert "Traceback" not in result.err


def test_an_interval_without_the_optuna_sweeper_says_how_to_search_it(project, mmp):
    grid = mmp("train", "-m", "recipe=model", "model.params.C=interval(0.1, 1)")
    assert grid.code == 2 and "model.params.C: an interval is searched by the optuna sweeper" in grid.err
    assert "add hydra/sweeper=optuna" in grid.err
    single = mmp("train", "recipe=model", "hydra/sweeper=optuna", "model.params.C=interval(0.1, 1)")
    assert single.code == 2 and "model.params.C: a search runs only with -m/--multirun; add -m" in single.err


def test_hydra_mode_multirun_is_a_sweep_like_m(project):
    from mmp.config.request import build_request

    assert build_request(["recipe=model", "hydra.mode=MULTIRUN"]).multirun
    assert build_request(["-m", "recipe=model"]).multirun
    assert not build_request(["recipe=model", "hydra.mode=RUN"]).multirun


@pytest.mark.parametrize("recipe, direction", [
    ({"task": "classification", "evaluate": {"metrics": ["accuracy", "roc_auc"], "primary_metric": "roc_auc"}},
     ("roc_auc", True)),
    ({"task": "classification", "evaluate": {"metrics": ["log_loss"], "primary_metric": None}}, ("log_loss", False)),
    ({"task": "regression", "evaluate": {"metrics": None, "primary_metric": None}}, ("rmse", False)),
])
def test_the_direction_follows_the_recipes_primary_metric(recipe, direction):
    from hydra_plugins.mmp_optuna_sweeper.sweeper import objective

    assert objective(OmegaConf.create(recipe)) == direction


# --- real sweeps ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_optuna_sweep_gives_n_trials_child_runs_under_one_parent_tagged_with_the_best(workspace, tmp_path):
    result = sweep(workspace, tmp_path, "optuna-sweep", "hydra.sweeper.n_trials=5", C_SEARCH)
    assert result.code == 0, result.err
    ids = result.out.split()
    assert len(ids) == 6 and all(RUN_ID.match(i) for i in ids)
    parent_id = ids[-1]
    mlflow = client(workspace)
    parent = mlflow.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mmp.sweeper"] == "optuna"
    children = children_by_trial(mlflow, parent_id)
    assert sorted(children) == [0, 1, 2, 3, 4] and {r.info.run_id for r in children.values()} == set(ids[:-1])
    scores = {r.info.run_id: r.data.metrics["validation_roc_auc"] for r in children.values()}
    assert parent.data.tags["mmp.best_run_id"] == max(scores, key=scores.get)
    assert parent.data.metrics["best_validation_roc_auc"] == max(scores.values())

    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna" and results["best_value"] == max(scores.values())
    best = children[results["best_trial"]]
    assert float(best.data.params["model.params.C"]) == results["best_params"]["model.params.C"]
    assert "best trial" in result.err and "roc_auc" in result.err

    logged = {a.path for a in mlflow.list_artifacts(parent_id, "sweep")}
    assert logged == {"sweep/search_space.yaml", "sweep/optimization_results.yaml"}
    space = yaml.safe_load(open(mlflow.download_artifacts(parent_id, "sweep/search_space.yaml", str(tmp_path))))
    assert space["direction"] == "maximize" and space["metric"] == "roc_auc" and space["n_trials"] == 5
    assert space["params"] == {"model.params.C": {"expression": "tag(log, interval(0.001, 100))",
                                                  "distribution": "float 0.001..100, log scale"}}


@pytest.mark.slow
def test_a_seeded_sampler_repeats_its_params(workspace, tmp_path):
    args = ("hydra.sweeper.n_trials=3", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=7",
            "model.params.C=interval(0.01, 10)", "model.params.max_iter=range(100, 1000, 100)")
    params = []
    for n in (1, 2):
        result = sweep(workspace, tmp_path / str(n), f"optuna-seeded-{n}", *args)
        assert result.code == 0, result.err
        children = children_by_trial(client(workspace), result.out.split()[-1])
        params.append([(r.data.params["model.params.C"], r.data.params["model.params.max_iter"])
                       for _, r in sorted(children.items())])
    assert params[0] == params[1] and len(set(params[0])) == 3


@pytest.mark.slow
def test_a_trial_that_fails_at_fit_is_told_fail_and_the_sweep_goes_on(workspace, tmp_path):
    # l1_ratio=1.0 is an L1 penalty, which the lbfgs solver refuses when fitting (compile cannot know).
    result = sweep(workspace, tmp_path, "optuna-failing", "hydra.sweeper.n_trials=6", "hydra.sweeper.n_jobs=2",
                   C_SEARCH, "+model.params.l1_ratio=choice(0.0, 1.0)")
    assert result.code == 0, result.err
    assert "failed: ValueError: Solver lbfgs supports only 'l2' or None penalties" in result.err
    mlflow = client(workspace)
    parent = mlflow.get_run(result.out.split()[-1])
    children = children_by_trial(mlflow, parent.info.run_id)
    states = {n: r.info.status for n, r in children.items()}
    assert sorted(states) == [0, 1, 2, 3, 4, 5]
    assert {"FAILED", "FINISHED"} == set(states.values())
    finished = [r for r in children.values() if r.info.status == "FINISHED"]
    assert parent.data.tags["mmp.best_run_id"] in {r.info.run_id for r in finished}
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["trials"] == {"complete": len(finished), "failed": 6 - len(finished)}
    assert results["best_params"]["model.params.l1_ratio"] == 0.0


@pytest.mark.slow
def test_a_sweep_whose_every_trial_fails_exits_with_the_first_trials_error(workspace, tmp_path):
    result = sweep(workspace, tmp_path, "optuna-all-fail", "hydra.sweeper.n_trials=2", C_SEARCH,
                   "+model.params.l1_ratio=1.0")
    assert result.code == 1
    assert "mmp: failed: ValueError: Solver lbfgs supports only 'l2' or None penalties" in result.err
    assert "Traceback" not in result.err
    mlflow = client(workspace)
    experiment = mlflow.get_experiment_by_name("optuna-all-fail")
    runs = mlflow.search_runs([experiment.experiment_id])
    assert sorted(r.info.status for r in runs) == ["FAILED", "FAILED", "FAILED"]  # two trials and their parent


@pytest.mark.slow
def test_a_study_in_a_storage_is_resumed_by_its_name(workspace, tmp_path):
    args = ("hydra.sweeper.n_trials=2", C_SEARCH, f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
            "hydra.sweeper.study_name=resumed")
    first = sweep(workspace, tmp_path / "1", "optuna-resumed", *args)
    second = sweep(workspace, tmp_path / "2", "optuna-resumed", *args)
    assert first.code == 0 and second.code == 0, first.err + second.err
    assert "study 'resumed' (resumed after 2 trials)" in second.err
    mlflow = client(workspace)
    assert sorted(children_by_trial(mlflow, first.out.split()[-1])) == [0, 1]
    later = children_by_trial(mlflow, second.out.split()[-1])
    assert sorted(later) == [2, 3]
    earlier_c = {r.data.params["model.params.C"] for r in children_by_trial(mlflow, first.out.split()[-1]).values()}
    assert not earlier_c & {r.data.params["model.params.C"] for r in later.values()}  # new values, not the first's again
