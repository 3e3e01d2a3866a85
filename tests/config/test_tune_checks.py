"""A recipe's search space is checked before any trial runs: every problem at once, exit 2, naming the key."""

from __future__ import annotations

import pytest

R = "recipe=tuning/breast_cancer"
L = "recipe=tuning/diabetes_lgbm"

# (what the user typed, the key path the message must name, words the message must hold)
CORPUS = [
    ([R, "+tune.params.CC={type: float, low: 0.1, high: 1}"], "tune.params.CC", "did you mean 'C'?"),
    ([R, "tune.params.C.low=10", "tune.params.C.high=1"], "tune.params.C", "low 10 is not below high 1"),
    ([R, "tune.params.C.low=0"], "tune.params.C.low", "a log scale needs low > 0, got 0"),
    ([R, "tune.params.C.log=false", "tune.params.C.low=-1"], "tune.params.C.low",
     "must be a float in the range (0.0, inf]"),
    ([R, "tune.params.C.type=uniform"], "tune.params.C.type", "allowed: 'int', 'float' or 'categorical'"),
    ([R, "~tune.params.C.low"], "tune.params.C.low", "a float parameter needs 'low'"),
    ([R, "tune.params.C.low=small"], "tune.params.C.low", "valid"),
    ([R, "+tune.params.C.step=0.5"], "tune.params.C.step", "a log-scaled range cannot have a step"),
    ([R, "+tune.params.C.choices=[1,2]"], "tune.params.C.choices", "'choices' does not apply to a float parameter"),
    ([R, "+tune.params.penalty={type: categorical, choices: [l1, l3]}"], "tune.params.penalty.choices.1",
     "must be a str among"),
    ([R, "+tune.params.penalty={type: categorical, choices: []}"], "tune.params.penalty.choices",
     "needs a non-empty list of choices"),
    ([R, "+tune.params.penalty={type: categorical, choices: [l1, l1]}"], "tune.params.penalty.choices.1",
     "'l1' is listed twice"),
    ([R, "+tune.params.max_iter={type: int, low: 10.5, high: 100}"], "tune.params.max_iter.low", "is not an integer"),
    ([R, "+tune.params.max_iter={type: int, low: 10, high: 100, step: 500}"], "tune.params.max_iter.step",
     "step 500 is larger than the range 10..100"),
    ([R, "+tune.params.max_iter={type: int, low: 10, high: 100, step: -5}"], "tune.params.max_iter.step",
     "is not a positive integer"),
    ([R, "+tune.params.tol={type: float, low: 0.1, high: 1, extra: 3}"], "tune.params.tol.extra", "unknown key"),
    ([R, "~tune.params"], "tune.params", "there is nothing to search"),
    ([R, "tune.n_trials=0"], "tune.n_trials", "greater than 0"),
    ([R, "tune.timeout=-5"], "tune.timeout", "greater than 0"),
    ([R, "tune.metric=rmse"], "tune.metric", "'rmse' is not a classification metric"),
    ([R, "tune.direction=minimize"], "tune.direction", "'minimize' contradicts roc_auc, which is better higher"),
    ([R, "tune.sampler=grid"], "tune.sampler", "allowed: 'tpe' or 'random'"),
    ([R, "tune.pruner=always"], "tune.pruner", "allowed: 'median', 'hyperband' or 'none'"),
    ([R, "tune.cv=1"], "tune.cv", "1 fold(s) cannot cross-validate"),
    ([R, "data.split.train=0.85", "data.split.validation=0"], "tune",
     "trials are scored on the validation split, which is empty"),
    ([R, "tune.refit=everything"], "tune.refit", "allowed: 'train' or 'train+validation'"),
    ([R, "tune.storage=optuna.db"], "tune.storage", "is not a database URL Optuna can share a study in"),
    ([R, "tune.study=shared"], "tune.study", "tune.storage is not set"),
    ([L, "tune.params.num_leaves.low=0"], "tune.params.num_leaves.low", "a log scale needs low > 0"),
    (["recipe=wine_clusters", "+tune.n_trials=5", "+tune.params.n_clusters={type: int, low: 2, high: 6}"], "tune",
     "the task is clustering"),
]


@pytest.mark.parametrize("words, key_path, message", CORPUS, ids=[" ".join(w[1:]) for w, _, _ in CORPUS])
def test_a_malformed_search_space_exits_2_naming_the_key(project, mmp, words, key_path, message):
    result = mmp("compile", *words)
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("mmp: error:") and "Traceback" not in result.err
    assert f"{key_path}:" in result.err and message in result.err, result.err


def test_every_search_space_problem_is_reported_at_once(project, mmp):
    result = mmp("compile", R, "tune.params.C.low=0", "+tune.params.penalty={type: categorical, choices: [l3]}",
                 "tune.metric=rmse")
    assert result.code == 2
    for key in ("tune.params.C.low:", "tune.params.penalty.choices.0:", "tune.metric:"):
        assert key in result.err


def test_a_search_space_problem_names_the_recipe_file(project, mmp):
    text = (project / "recipes/tuning/breast_cancer.yaml").read_text().replace("low: 0.001", "low: -0.001")
    (project / "recipes/tuning/breast_cancer.yaml").write_text(text)
    result = mmp("compile", R)
    assert result.code == 2 and "tune.params.C.low" in result.err and "tuning/breast_cancer.yaml" in result.err


def test_the_plan_shows_the_search_and_the_refit(project, mmp):
    result = mmp("compile", L)
    assert result.code == 0, result.err
    plan = result.out.split("pipeline ", 1)[1]
    assert "tune        25 trials of TPE (seed 3), median pruner; minimize rmse on validation" in plan
    assert "learning_rate float 0.01..0.3 log" in plan and "min_child_samples int 5..60 step 5" in plan
    assert "subsample_freq in {0, 1}" in plan and "refit the best on train+validation" in plan
    assert plan.index("tune ") < plan.index("fit ") < plan.index("log ")


def test_a_password_in_the_study_storage_is_never_printed(project, mmp):
    result = mmp("compile", R, "tune.storage=postgresql://mmp:s3cret-pw@db:5432/optuna", "tune.study=shared")
    assert result.code == 0, result.err
    assert "s3cret-pw" not in result.out + result.err
    assert "study 'shared' shared through postgresql://mmp:***@db:5432/optuna" in result.out
