"""Pre-flight validation: every malformed recipe, env or override fails cleanly, naming the key."""

from __future__ import annotations

import pytest

# (what the user typed, the key path the message must name)
CORPUS = [
    (["recipe=model", "task=forecasting"], "task"),
    (["recipe=model", "model.class_path=sklearn.linear_model.LogisticRegresion"], "model.class_path"),
    (["recipe=model", "model.class_path=nosuchpkg.Model"], "model.class_path"),
    (["recipe=model", "model.class_path=RandomForestClassifier"], "model.class_path"),
    (["recipe=model", "model.class_path=sklearn.linear_model.Ridge"], "model.class_path"),
    (["recipe=model", "+model.params.max_iterr=5"], "model.params.max_iterr"),
    (["recipe=model", "model.params.C=-1"], "model.params.C"),
    (["recipe=model", "model.params.C=abc"], "model.params.C"),
    (["recipe=model", "model.params=5"], "model.params"),
    (["recipe=model", "evaluate.metrics=[accuracy,rmse]"], "evaluate.metrics.1"),
    (["recipe=model", "evaluate.primary_metric=auc"], "evaluate.primary_metric"),
    (["recipe=model", "data.split.train=1.5"], "data.split.train"),
    (["recipe=model", "data.split.test=0"], "data.split.test"),
    (["recipe=model", "data.split.test=0.3"], "data.split"),
    (["recipe=model", "data.split.strategy=shuffled"], "data.split.strategy"),
    (["recipe=model", "data.split.strategy=temporal"], "data.split.time_column"),
    (["recipe=diabetes", "data.split.strategy=stratified"], "data.split.strategy"),
    (["recipe=diabetes", "~data.target"], "data.target"),
    (["recipe=model", "+data.targt=diagnosis"], "data.targt"),
    (["recipe=model", "+modle.class_path=x"], "modle"),
    (["recipe=model", "preprocess.0.type=imputer"], "preprocess.0.type"),
    (["recipe=model", "+preprocess.0.strategi=mean"], "preprocess.0.strategi"),
    (["recipe=model", "preprocess.0.strategy=average"], "preprocess.0.strategy"),
    (["recipe=model", "data.entity_columns=id"], "data.entity_columns"),
    (["recipe=model", "data.features=[diagnosis]"], "data.features"),
    (["recipe=model", "data.format=excel"], "data.format"),
    (["recipe=model", "~name"], "name"),
    (["recipe=model", "~model.class_path"], "model.class_path"),  # `~model` alone drops a model preset (the group)
    (["recipe=model", "serving.port=70000"], "serving.port"),
    (["recipe=model", "serving.port=abc"], "serving.port"),
    (["recipe=model", "+serving.prot=80"], "serving.prot"),
    (["recipe=model", "serving.log_level=verbose"], "serving.log_level"),
    (["recipe=model", "serving.batching.enabled=maybe"], "serving.batching.enabled"),
    (["recipe=model", "output.format=xlsx"], "output.format"),
    (["recipe=model", "output.chunk_rows=0"], "output.chunk_rows"),
    (["recipe=model", "mlflow.tracking_uri=123"], "mlflow.tracking_uri"),
    (["recipe=model", "+source.storage_options.token=${oc.env:MMP_TEST_SURELY_UNSET}"], "source.storage_options.token"),
    (["recipe=model", "model.params.C=["], "model.params.C"),
    (["recipe=model", "env=nope"], "env"),
    (["recipe=nope"], "recipe"),
    (["recipe=model", "model.params.C=true"], "model.params.C"),
    (["recipe=wine_clusters", "data.target=cultivar"], "data.target"),
]


@pytest.mark.parametrize("words, key_path", CORPUS, ids=[" ".join(w) for w, _ in CORPUS])
def test_malformed_input_exits_2_naming_the_key_without_traceback(project, mmp, words, key_path):
    result = mmp("compile", *words)
    assert result.code == 2, result.out + result.err
    assert key_path in result.err
    assert "Traceback" not in result.err and result.err.startswith("mmp: error:")


BROKEN_FILES = {
    "recipe with a YAML syntax error": ("recipes/broken.yaml", "name: x\ntask: [unclosed\n", ["recipe=broken"], "recipes/broken.yaml"),
    "env without its package header": ("conf/env/bare.yaml", "serving:\n  port: 1\n", ["recipe=model", "env=bare"], "conf/env/bare.yaml"),
    "recipe that is a list": ("recipes/listy.yaml", "- a\n- b\n", ["recipe=listy"], "recipes/listy.yaml"),
}


@pytest.mark.parametrize("case", BROKEN_FILES, ids=list(BROKEN_FILES))
def test_malformed_files_exit_2_naming_the_file(project, mmp, case):
    rel, text, words, named = BROKEN_FILES[case]
    (project / rel).write_text(text)
    result = mmp("compile", *words)
    assert result.code == 2 and named in result.err and "Traceback" not in result.err


def test_a_recipe_with_three_independent_mistakes_reports_all_three(project, mmp):
    text = (project / "recipes" / "model.yaml").read_text()
    text = text.replace("max_iter: 1000", "max_iters: 1000")          # 1: a misspelt model param
    text = text.replace("test: 0.15", "test: 0.25")                   # 2: ratios no longer add up
    text = text.replace("log_loss]", "rmse]")                         # 3: a regression metric
    (project / "recipes" / "three.yaml").write_text(text)
    result = mmp("compile", "recipe=three")
    assert result.code == 2
    assert "3 problems" in result.err
    assert "model.params.max_iters" in result.err and "did you mean 'max_iter'" in result.err
    assert "data.split: train + validation + test = 1.1" in result.err
    assert "evaluate.metrics.5: 'rmse' is not a classification metric" in result.err
    assert result.err.count("(from recipes/three.yaml)") == 3


def test_problems_name_the_override_they_came_from(project, mmp):
    result = mmp("compile", "recipe=model", "model.params.C=-2")
    assert "(from override 'model.params.C=-2')" in result.err


# (what the user typed, the last word being the override at fault; the key path, the value as typed, what is allowed)
BOOLEANS_FOR_NUMBERS = [
    (["recipe=model", "model.params.C=true"], "model.params.C", "true", "a float in the range (0.0, inf]"),
    (["recipe=model", "model.params.max_iter=true"], "model.params.max_iter", "true", "an int in the range [0, inf)"),
    (["recipe=model", "+model.params.random_state=false"], "model.params.random_state", "false", "an int in the range [0, 4294967295]"),
    (["recipe=iris", "model.class_path=sklearn.ensemble.RandomForestClassifier", "~model.params",
      "+model.params.n_estimators=false"], "model.params.n_estimators", "false", "an int in the range [1, inf)"),
    (["recipe=iris", "model.class_path=sklearn.ensemble.RandomForestClassifier", "~model.params",
      "+model.params.max_depth=true"], "model.params.max_depth", "true", "an int in the range [1, inf) or None"),
    (["recipe=diabetes", "preprocess=[{type: one_hot, max_categories: true}]"], "preprocess.0.max_categories", "true",
     "an int in the range [1, inf) or None"),
]


@pytest.mark.parametrize("words, key_path, given, allowed", BOOLEANS_FOR_NUMBERS,
                         ids=[" ".join(w[1:]) for w, *_ in BOOLEANS_FOR_NUMBERS])
def test_a_boolean_given_for_a_number_is_refused_naming_key_value_allowed_and_override(project, mmp, words, key_path, given, allowed):
    result = mmp("compile", *words)
    assert result.code == 2, result.out + result.err
    assert f"{key_path}: got the boolean {given}, but " in result.err
    assert f"allowed: {allowed}" in result.err and f"(from override '{words[-1]}')" in result.err


def test_a_boolean_in_a_recipe_file_names_that_file(project, mmp):
    text = (project / "recipes" / "model.yaml").read_text().replace("max_iter: 1000", "max_iter: true")
    (project / "recipes" / "flag.yaml").write_text(text)
    result = mmp("compile", "recipe=flag")
    assert result.code == 2
    assert "model.params.max_iter: got the boolean true, but LogisticRegression wants a number here" in result.err
    assert "(from recipes/flag.yaml)" in result.err


def test_booleans_stay_accepted_where_the_parameter_takes_one(project, mmp):
    result = mmp("compile", "recipe=model", "++model.params.fit_intercept=false", "++model.params.warm_start=true",
                 "++model.params.verbose=false")
    assert result.code == 0, result.err
    assert "fit_intercept=False" in result.out and "warm_start=True" in result.out
    forest = mmp("compile", "recipe=iris", "model.class_path=sklearn.ensemble.RandomForestClassifier", "~model.params",
                 "+model.params.bootstrap=false", "+model.params.oob_score=false")
    assert forest.code == 0, forest.err


def test_a_clustering_recipe_with_a_target_is_refused_naming_its_file(project, mmp):
    text = (project / "recipes" / "wine_clusters.yaml").read_text().replace("target: null", "target: cultivar")
    (project / "recipes" / "labelled_clusters.yaml").write_text(text)
    result = mmp("compile", "recipe=labelled_clusters")
    assert result.code == 2
    assert ("data.target: clustering learns without a target; remove data.target (or set it to null) "
            "(from recipes/labelled_clusters.yaml)") in result.err
    assert mmp("compile", "recipe=wine_clusters", "data.target=null").code == 0


def test_every_project_template_recipe_compiles(project, mmp):
    """`mmp init` ships these recipes; each must compile as written (the template's data is not read)."""
    from tests.conftest import REPO

    template = REPO / "mmp" / "project" / "template" / "recipes"
    names = sorted(p.stem for p in template.glob("*.yaml"))
    assert names
    (project / "recipes" / "template").mkdir()
    for name in names:
        (project / "recipes" / "template" / f"{name}.yaml").write_text((template / f"{name}.yaml").read_text())
        result = mmp("compile", f"recipe=template/{name}")
        assert result.code == 0, f"template/{name}: {result.err}"


def test_unknown_key_suggests_the_close_one(project, mmp):
    result = mmp("compile", "recipe=model", "+data.targt=diagnosis")
    assert "did you mean 'target'?" in result.err


def test_missing_optional_library_names_the_extra_to_install(project, mmp):
    text = (project / "recipes" / "model.yaml").read_text().replace(
        "sklearn.linear_model.LogisticRegression", "catboost_not_installed_here.CatBoostClassifier")
    (project / "recipes" / "cb.yaml").write_text(text)
    assert "cannot import module 'catboost_not_installed_here'" in mmp("compile", "recipe=cb").err
    text = (project / "recipes" / "model.yaml").read_text().replace(
        "sklearn.linear_model.LogisticRegression", "torch.NoSuchModel")
    (project / "recipes" / "tm.yaml").write_text(text)
    err = mmp("compile", "recipe=tm").err
    assert "model.class_path" in err


def test_every_example_recipe_compiles_with_local_and_prod(project, mmp):
    from mmp.config.catalogue import _yaml_files

    for path in _yaml_files(project / "recipes"):
        name = path.relative_to(project / "recipes").with_suffix("").as_posix()
        if name.startswith("boosting/"):
            pytest.importorskip("xgboost")
            pytest.importorskip("lightgbm")
        for env in ("local", "prod"):
            result = mmp("compile", f"recipe={name}", f"env={env}")
            assert result.code == 0, f"{name} / {env}: {result.err}"
            assert f"recipe {name}, env {env}" in result.out


def test_compile_prints_the_plan_with_every_stage(project, mmp):
    out = mmp("compile", "recipe=diabetes").out
    plan = out[out.index("pipeline diabetes"):]
    for i, stage in enumerate(["load", "split", "preprocess", "fit", "evaluate", "log"], 1):
        assert f"  {i}. {stage}" in plan
    assert "impute(strategy=median) on age, bmi" in plan
    assert "one_hot(handle_unknown=ignore, sparse_output=False) on sex" in plan
    assert "primary rmse (lower is better)" in plan


def test_compile_masks_secrets_from_the_environment(project, mmp, monkeypatch):
    monkeypatch.setenv("MMP_TEST_SECRET", "hunter2-very-secret")
    result = mmp("compile", "recipe=model", "+source.storage_options.token=${oc.env:MMP_TEST_SECRET}",
                 "+source.storage_options.password=plain-text-pw", "+source.storage_options.endpoint_url=http://u:pw123@h:9000")
    assert result.code == 0, result.err
    assert "hunter2-very-secret" not in result.out and "plain-text-pw" not in result.out and "pw123" not in result.out
    assert "${oc.env:MMP_TEST_SECRET}" in result.out


def test_compiled_pipeline_is_an_inspectable_object(project):
    from omegaconf import OmegaConf

    from mmp.training.compiler import compile

    cfg = OmegaConf.merge(OmegaConf.load("recipes/iris.yaml"), {"mlflow": {"tracking_uri": "./mlruns"}})
    pipeline = compile(cfg, recipe="iris", env="none")
    assert [s.name for s in pipeline.stages] == ["load", "split", "preprocess", "fit", "evaluate", "log"]
    assert pipeline.spec.data.split.strategy == "stratified"
    assert pipeline.primary_metric == "accuracy" and pipeline.experiment == "iris"


def test_train_runs_exactly_the_stages_that_compile_prints(project):
    """The plan is the stage objects' own descriptions, and `run` calls those very objects in order."""
    from omegaconf import OmegaConf

    from mmp.training.compiler import compile

    cfg = OmegaConf.merge(OmegaConf.load("recipes/iris.yaml"), {"mlflow": {"tracking_uri": str(project / "mlruns")}})
    pipeline = compile(cfg, recipe="iris", env="none")
    plan = pipeline.plan().splitlines()[1:]
    assert [line.split()[1] for line in plan] == [s.name for s in pipeline.stages]
    assert all(stage.describe() in line for stage, line in zip(pipeline.stages, plan))
    ran = []
    for stage in pipeline.stages:
        original = stage.run
        stage.run = (lambda state, original=original, name=stage.name: ran.append(name) or original(state))
    result = pipeline.run(quiet=True)
    assert ran == [s.name for s in pipeline.stages]
    assert result.primary is not None and result.primary_key == "validation_accuracy"
