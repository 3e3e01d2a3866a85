"""Causal recipes: a bad treatment, learner or base learner fails before any work, naming the key."""

from __future__ import annotations

import sys

import pytest

GBR = "{class_path: sklearn.ensemble.GradientBoostingRegressor, params: {max_depth: 2}}"

# (overrides on recipes/causal/ihdp.yaml, the key path the message must name, a phrase it must hold)
CORPUS = [
    (["~data.treatment"], "data.treatment", "needs the treatment column"),
    (["data.treatment=outcome"], "data.treatment", "both the treatment and the target"),
    (["data.features=[treatment,bw,momage]"], "data.features", "also listed as a feature"),
    (["data.entity_columns=[id,treatment]"], "data.entity_columns", "also listed as an entity column"),
    (["preprocess.0.columns=[bw,treatment]"], "preprocess.0.columns", "not a feature"),
    (["model.class_path=sklearn.ensemble.GradientBoostingRegressor", "model.params={}"], "model.class_path",
     "not a causal learner"),
    (["model.params.models.class_path=sklearn.ensemble.GradientBoostingClassifier"], "model.params.models.class_path",
     "needs a regressor"),
    (["model.params.propensity_model.class_path=sklearn.linear_model.Ridge", "model.params.propensity_model.params={}"],
     "model.params.propensity_model.class_path", "needs a classifier"),
    (["model.params.models.class_path=sklearn.ensemble.NoSuchRegressor"], "model.params.models.class_path",
     "has no class 'NoSuchRegressor'"),
    (["model.params.models.class_path=nosuchpkg.Regressor"], "model.params.models.class_path", "cannot import"),
    (["+model.params.models.params.max_dept=3"], "model.params.models.params.max_dept", "did you mean 'max_depth'"),
    (["model.params.models.params.max_depth=-1"], "model.params.models.params.max_depth", "max_depth"),
    (["+model.params.models.fit_params=1"], "model.params.models.fit_params", "allowed: class_path, params"),
    (["model.params.models=gbr"], "model.params.models", "not a base learner"),
    (["+model.params.n_folds=3"], "model.params.n_folds", "not a parameter of XLearner"),
    (["model.class_path=econml.dml.LinearDML", "~model.params", f"+model.params={{model_y: {GBR}, discrete_treatment: false}}"],
     "model.params.discrete_treatment", "mmp sets it to True"),
    (["model.class_path=econml.dr.DRLearner", "~model.params", f"+model.params={{model_propensity: {GBR}}}"],
     "model.params.model_propensity.class_path", "needs a classifier"),
    (["task=regression"], "data.treatment", "belongs to causal recipes"),
    (["task=regression", "+data.control=0"], "data.control", "belongs to causal recipes"),
    (["+model.params.categories=[1,0]"], "model.params.categories", "mmp sets it from the data"),
    (["evaluate.metrics=[auuc,rmse]"], "evaluate.metrics.1", "not a causal metric"),
]


@pytest.mark.parametrize("words, key_path, phrase", CORPUS, ids=[" ".join(w) for w, _, _ in CORPUS])
def test_a_bad_causal_recipe_exits_2_naming_the_key(project, mmp, words, key_path, phrase):
    result = mmp("compile", "recipe=causal/ihdp", *words)
    assert result.code == 2, result.out + result.err
    assert key_path in result.err and phrase in result.err, result.err
    assert "Traceback" not in result.err and result.err.startswith("mmp: error:")
    assert "(from " in result.err  # the recipe file or the override that said it


def test_validate_and_train_refuse_the_same_recipes_before_any_run(project, mmp):
    result = mmp("validate", "recipe=causal/ihdp", "data.treatment=outcome")
    assert result.code == 2 and "data.treatment" in result.err
    result = mmp("train", "recipe=causal/ihdp", "model.params.models.class_path=sklearn.linear_model.LogisticRegression")
    assert result.code == 2 and "model.params.models.class_path" in result.err and "needs a regressor" in result.err
    assert not (project / "mlruns").exists()


def test_the_example_compiles_and_the_plan_names_every_base_learner(project, mmp):
    result = mmp("compile", "recipe=causal/ihdp")
    assert result.code == 0, result.err
    assert "random, stratified by treatment" in result.out
    assert "XLearner(models=GradientBoostingRegressor(" in result.out
    assert "AIPW" in result.out and "auuc, qini" in result.out


def test_a_left_out_base_learner_gets_the_default_and_the_plan_says_so(project, mmp):
    result = mmp("compile", "recipe=causal/ihdp", "model.class_path=econml.dml.LinearDML", "~model.params")
    assert result.code == 0, result.err
    assert "model_y=GradientBoostingRegressor(random_state=42) (default)" in result.out
    assert "model_t=LogisticRegression(max_iter=1000, random_state=42) (default)" in result.out


def test_a_list_of_base_learners_is_checked_one_by_one(project, mmp):
    models = f"[{GBR}, {{class_path: sklearn.svm.SVC}}]"
    result = mmp("compile", "recipe=causal/ihdp", "model.class_path=econml.metalearners.TLearner",
                 "~model.params", f"+model.params={{models: {models}}}")
    assert result.code == 2 and "model.params.models.1.class_path: SVC is a classifier" in result.err, result.err


def test_missing_econml_names_the_extra_to_install(project, mmp, monkeypatch):
    for name in [m for m in sys.modules if m == "econml" or m.startswith("econml.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "econml", None)
    result = mmp("compile", "recipe=causal/ihdp")
    assert result.code == 2 and "pip install 'mmp[causal-extras]'" in result.err, result.err


def test_a_boolean_treatment_with_gaps_is_accepted_and_a_constant_one_is_not():
    import polars as pl

    from mmp.config.causal_checks import treatment_data_problems
    from mmp.config.spec import RunSpec

    spec = RunSpec.model_validate({"name": "t", "task": "causal", "model": {"class_path": "econml.dr.DRLearner"},
                                   "data": {"target": "y", "treatment": "t"}})
    frame = pl.DataFrame({"y": [1.0, 2.0, 3.0], "t": [True, None, False], "x": [1, 2, 3]})
    assert treatment_data_problems(spec, frame, lambda path: None) == []
    problems = treatment_data_problems(spec, frame.with_columns(pl.lit(1).alias("t")), lambda path: None)
    assert [p.path for p in problems] == ["data.treatment"] and "every row of 't' is treated" in problems[0].message
