"""Model presets (`model=NAME`): what each one compiles to, replacement of the recipe's model and search
space, overrides on top, wrong task and unknown names, a project's own conf/model/, `mmp list models`."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from mmp.config.model_presets import SHIPPED_DIR
from tests.conftest import REPO, write_configmap

RECIPE_FOR = {"classification": "model", "regression": "diabetes"}
SHIPPED = sorted(p.stem for p in (SHIPPED_DIR / "model").glob("*.yaml"))


def resolved(result) -> dict:
    """The resolved config part of `mmp compile` output (before the pipeline plan)."""
    assert result.code == 0, result.err
    return yaml.safe_load(result.out.split("\npipeline ", 1)[0])


def preset(name: str, seed: int = 42) -> dict:
    """A shipped preset file's keys, with `${data.split.seed}` resolved as a recipe would."""
    from omegaconf import OmegaConf

    root = OmegaConf.create({"data": {"split": {"seed": seed}}, "preset": OmegaConf.load(SHIPPED_DIR / "model" / f"{name}.yaml")})
    return OmegaConf.to_container(root, resolve=True)["preset"]


def served() -> list[tuple[str, str]]:
    return [(name, task) for name in SHIPPED for task in preset(name)["model"]["class_path"]]


def test_mmp_ships_a_preset_per_model_family():
    assert set(SHIPPED) == {"logistic_regression", "random_forest", "extra_trees", "gradient_boosting",
                            "hist_gradient_boosting", "svm", "knn", "linear", "ridge", "lasso", "elastic_net",
                            "xgboost", "lightgbm", "catboost", "mlp"}
    for name in SHIPPED:
        assert (SHIPPED_DIR / "model" / f"{name}.yaml").read_text().startswith("# @package model_preset\n"), name
    assert {task for _, task in served()} == {"classification", "regression"}


@pytest.mark.parametrize(("name", "task"), served())
def test_every_preset_compiles_for_every_task_it_serves(project, mmp, name, task):
    from mmp.config.estimators import KIND_FOR_TASK, check_params, estimator_kind, import_class
    from mmp.config.spec import TuneSpec

    data = preset(name)
    class_path = data["model"]["class_path"][task]
    top = class_path.split(".")[0]
    if top != "mmp" and importlib.util.find_spec(top) is None:
        pytest.skip(f"{top} is not installed (pip install 'mmp[ml-extras]')")
    if class_path.startswith("mmp.models.mlp") and importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (pip install 'mmp[torch-extras]')")
    cfg = resolved(mmp("compile", f"recipe={RECIPE_FOR[task]}", f"model={name}"))
    params = {**data["model"].get("params", {}), **data["model"].get("task_params", {}).get(task, {})}
    assert cfg["model"] == {"class_path": class_path, "params": params}
    assert cfg["tune"]["params"] == data["tune"]["params"]
    cls = import_class(class_path)
    assert estimator_kind(cls) == KIND_FOR_TASK[task]
    assert check_params(cls, params, "model.params") == []
    # the default search space: a valid tune.params, over real parameters, every bound and choice accepted
    space = TuneSpec.model_validate({"params": data["tune"]["params"]}).params
    assert space, f"{name} has no default search space"
    for param, dist in space.items():
        values = dist.choices if dist.type == "categorical" else [dist.low, dist.high]
        if dist.type == "int":
            assert all(isinstance(v, int) for v in values), (param, values)
        if dist.log:
            assert dist.low > 0, param
        for value in values:
            assert check_params(cls, {param: value}, "tune.params") == [], (param, value)


def test_a_preset_replaces_the_recipe_model_and_search_space_wholesale(project, mmp):
    recipe = yaml.safe_load((project / "recipes" / "model.yaml").read_text())
    recipe["tune"] = {"n_trials": 5, "cv": 3, "params": {"C": {"type": "float", "low": 0.01, "high": 10.0, "log": True}}}
    (project / "recipes" / "tuned.yaml").write_text(yaml.safe_dump(recipe))
    cfg = resolved(mmp("compile", "recipe=tuned", "model=random_forest"))
    assert cfg["model"] == {"class_path": "sklearn.ensemble.RandomForestClassifier", "params": preset("random_forest")["model"]["params"]}
    assert "C" not in cfg["model"]["params"] and "max_iter" not in cfg["model"]["params"]  # nothing of LogisticRegression's
    assert cfg["tune"]["params"] == preset("random_forest")["tune"]["params"]
    assert cfg["tune"]["n_trials"] == 5 and cfg["tune"]["cv"] == 3  # the rest of the recipe's tune stays
    assert "model_preset" not in cfg


def test_no_preset_leaves_the_recipe_model_as_written(project, mmp):
    cfg = resolved(mmp("compile", "recipe=model"))
    assert cfg["model"] == {"class_path": "sklearn.linear_model.LogisticRegression", "params": {"C": 1.0, "max_iter": 1000}}
    assert "model_preset" not in cfg


def test_compile_prints_the_presets_class_and_params_in_config_and_plan(project, mmp):
    pytest.importorskip("lightgbm")
    result = mmp("compile", "recipe=model", "model=lightgbm")
    cfg = resolved(result)
    assert cfg["model"]["class_path"] == "lightgbm.LGBMClassifier" and cfg["model"]["params"]["num_leaves"] == 31
    assert "fit         lightgbm.LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=31" in result.out


def test_overrides_apply_on_top_of_the_preset(project, mmp):
    pytest.importorskip("lightgbm")
    cfg = resolved(mmp("compile", "recipe=model", "model=lightgbm", "model.params.num_leaves=63",
                       "tune.params.learning_rate.high=0.2", "+model.params.max_bin=127", "~model.params.subsample",
                       "tune.n_trials=50", "-p", '{"n_estimators": 50}'))
    params = cfg["model"]["params"]
    assert params["num_leaves"] == 63 and params["max_bin"] == 127 and params["n_estimators"] == 50
    assert "subsample" not in params
    assert cfg["tune"]["params"]["learning_rate"] == {"type": "float", "low": 0.01, "high": 0.2, "log": True}
    assert cfg["tune"]["n_trials"] == 50


def test_a_typo_in_an_override_of_a_preset_says_what_the_preset_has(project, mmp):
    result = mmp("compile", "recipe=iris", "model=random_forest", "model.params.n_estimator=10")
    assert result.code == 2 and "Traceback" not in result.err
    assert "model.params.n_estimator: there is no key 'n_estimator' to change; did you mean 'n_estimators'?" in result.err
    assert "model_preset" not in result.err
    deleted = mmp("compile", "recipe=iris", "model=random_forest", "~tune.params.nope")
    assert deleted.code == 2 and "tune.params.nope: there is no such key to delete" in deleted.err and "max_features" in deleted.err


def test_preset_params_are_seeded_from_the_recipes_split_seed(project, mmp):
    assert resolved(mmp("compile", "recipe=iris", "model=random_forest"))["model"]["params"]["random_state"] == 7
    assert resolved(mmp("compile", "recipe=iris", "model=random_forest", "data.split.seed=3"))["model"]["params"]["random_state"] == 3


def test_task_specific_params_go_only_to_that_tasks_class(project, mmp):
    svc = resolved(mmp("compile", "recipe=model", "model=svm"))["model"]
    svr = resolved(mmp("compile", "recipe=diabetes", "model=svm"))["model"]
    assert svc["class_path"] == "sklearn.svm.SVC" and svc["params"]["probability"] is True
    assert svr["class_path"] == "sklearn.svm.SVR" and "probability" not in svr["params"] and svr["params"]["epsilon"] == 0.1


def test_a_preset_for_the_wrong_task_exits_2_naming_the_presets_that_fit(project, mmp):
    result = mmp("compile", "recipe=diabetes", "model=logistic_regression")
    assert result.code == 2 and "Traceback" not in result.err
    assert "model=logistic_regression: the preset serves classification, but the recipe's task is regression" in result.err
    fitting = result.err.split("presets for regression: ", 1)[1].split(" (see", 1)[0].split(", ")
    assert {"ridge", "lasso", "linear", "random_forest"} <= set(fitting) and "logistic_regression" not in fitting
    assert mmp("validate", "recipe=model", "model=ridge", "--no-data").code == 2


def test_an_unknown_preset_exits_2_listing_the_presets(project, mmp):
    result = mmp("compile", "recipe=model", "model=random_forrest")
    assert result.code == 2 and "Traceback" not in result.err
    assert "there is no model option 'random_forrest'; did you mean 'random_forest'?" in result.err
    assert "Available options in 'model':" in result.err and "\tlightgbm" in result.err and "\tsvm" in result.err
    number = mmp("compile", "recipe=model", "model=3")
    assert number.code == 2 and "write model=NAME" in number.err and "random_forest" in number.err


PROJECT_PRESET = """\
# @package model_preset
model:
  class_path:
    classification: sklearn.tree.DecisionTreeClassifier
    regression: sklearn.tree.DecisionTreeRegressor
  params: {max_depth: 4, random_state: "${data.split.seed}"}
tune:
  params:
    max_depth: {type: int, low: 2, high: 12}
"""


def test_a_project_preset_in_conf_model_adds_one_or_overrides_a_shipped_one(project, mmp):
    (project / "conf" / "model").mkdir()
    (project / "conf" / "model" / "tree.yaml").write_text(PROJECT_PRESET)
    (project / "conf" / "model" / "random_forest.yaml").write_text(
        PROJECT_PRESET.replace("sklearn.tree.DecisionTree", "sklearn.ensemble.RandomForest").replace("max_depth: 4", "n_estimators: 7"))
    tree = resolved(mmp("compile", "recipe=diabetes", "model=tree"))
    assert tree["model"] == {"class_path": "sklearn.tree.DecisionTreeRegressor", "params": {"max_depth": 4, "random_state": 42}}
    assert tree["tune"]["params"] == {"max_depth": {"type": "int", "low": 2, "high": 12}}
    forest = resolved(mmp("compile", "recipe=model", "model=random_forest"))["model"]
    assert forest["params"] == {"n_estimators": 7, "random_state": 42}
    listed = mmp("list", "models").out
    assert any(line.startswith("sklearn.tree.DecisionTreeClassifier") and line.endswith("tree") for line in listed.splitlines())
    unknown = mmp("compile", "recipe=model", "model=nope")
    assert "\ttree" in unknown.err and "\txgboost" in unknown.err


def test_a_bad_value_in_a_project_preset_names_its_file(project, mmp):
    (project / "conf" / "model").mkdir()
    (project / "conf" / "model" / "tree.yaml").write_text(PROJECT_PRESET.replace("max_depth: 4", "max_depth: -4"))
    result = mmp("compile", "recipe=model", "model=tree")
    assert result.code == 2 and "model.params.max_depth" in result.err and "(from conf/model/tree.yaml)" in result.err


def test_a_project_preset_without_its_package_header_is_a_clear_error(project, mmp):
    (project / "conf" / "model").mkdir()
    (project / "conf" / "model" / "tree.yaml").write_text(PROJECT_PRESET.split("\n", 1)[1])
    result = mmp("compile", "recipe=model", "model=tree")
    assert result.code == 2 and "Traceback" not in result.err
    assert "make '# @package model_preset' the first line" in result.err and "conf/model/tree.yaml" in result.err


def test_a_malformed_project_preset_says_what_a_preset_holds(project, mmp):
    (project / "conf" / "model").mkdir()
    (project / "conf" / "model" / "tree.yaml").write_text(PROJECT_PRESET.replace("    regression:", "    regresion:"))
    result = mmp("compile", "recipe=model", "model=tree")
    assert result.code == 2 and "Traceback" not in result.err
    assert "model=tree: unknown task 'regresion' (tasks: classification, regression, clustering, timeseries, causal) (conf/model/tree.yaml)" in result.err
    (project / "conf" / "model" / "tree.yaml").write_text(PROJECT_PRESET.replace("  params: {", "  parms: {"))
    assert "model=tree: unknown key 'parms'" in mmp("compile", "recipe=model", "model=tree").err


def test_model_choice_works_with_a_config_yaml_that_predates_presets(project, mmp, monkeypatch, tmp_path):
    old = (REPO / "conf" / "config.yaml").read_text().replace("  - model: null\n", "")
    assert "model:" not in old
    (project / "conf" / "config.yaml").write_text(old)
    assert resolved(mmp("compile", "recipe=iris", "model=knn", "model.params.n_neighbors=3"))["model"]["params"]["n_neighbors"] == 3
    unknown = mmp("compile", "recipe=iris", "model=nope")
    assert unknown.code == 2 and "Available options in 'model':" in unknown.err
    # the same as a ConfigMap mount (no conf/model/ there: mmp's presets come with the package)
    mount = tmp_path / "configmap" / "conf"
    write_configmap(mount, "..2026_11_26_10_00_00.000000001",
                    {"config.yaml": old, "env/local.yaml": (REPO / "conf" / "env" / "local.yaml").read_text()})
    monkeypatch.setenv("MMP_CONF_DIR", str(mount))
    assert resolved(mmp("compile", "recipe=diabetes", "model=ridge"))["model"]["class_path"] == "sklearn.linear_model.Ridge"


def test_list_models_shows_which_classes_have_a_preset(project, mmp):
    lines = mmp("list", "models").out.splitlines()
    assert lines[0].split() == ["CLASS", "PATH", "KIND", "SOURCE", "PRESET"]
    column = lines[0].index("PRESET")
    preset_of = {line.split()[0]: line[column:].strip() for line in lines[1:] if line[column:].strip()}
    assert preset_of["sklearn.ensemble.RandomForestClassifier"] == "random_forest"
    assert preset_of["sklearn.linear_model.LogisticRegression"] == "logistic_regression"
    assert preset_of["sklearn.svm.SVR"] == "svm" and preset_of["mmp.models.mlp.MLPRegressor"] == "mlp"
    assert preset_of["catboost.CatBoostClassifier"] == "catboost"
    assert "sklearn.tree.DecisionTreeClassifier" not in preset_of


def test_catboost_is_listed_and_two_names_for_one_of_its_params_are_refused(project, mmp):
    pytest.importorskip("catboost")
    assert "catboost.CatBoostRegressor" in mmp("list", "models").out
    result = mmp("compile", "recipe=model", "model=catboost", "+model.params.n_estimators=100")
    assert result.code == 2
    assert "model.params.n_estimators: 'iterations', 'n_estimators' name the same CatBoostClassifier parameter" in result.err
    typo = mmp("compile", "recipe=diabetes", "model=catboost", "+model.params.deph=4")
    assert typo.code == 2 and "'deph' is not a parameter of CatBoostRegressor; did you mean 'depth'?" in typo.err


def test_overrides_are_aimed_at_the_chosen_preset_and_nothing_else(project):
    from mmp.config.model_presets import hydra_overrides

    conf = project / "conf"
    words = ["recipe=model", "model=lightgbm", "model.params.x=1", "+model.params.y=2", "~tune.params.z",
             "tune.params.w.high=3", "tune.n_trials=5", "data.split.seed=1"]
    assert hydra_overrides(words, conf) == [
        "recipe=model", "model=lightgbm", "model_preset.model.params.x=1", "+model_preset.model.params.y=2",
        "~model_preset.tune.params.z", "model_preset.tune.params.w.high=3", "tune.n_trials=5", "data.split.seed=1"]
    assert hydra_overrides(["recipe=model", "model.params.C=2"], conf) == ["recipe=model", "model.params.C=2"]
    # a sweep over presets composes a first config without any: there the aimed keys are added
    swept = hydra_overrides(["model=lightgbm,xgboost", "model.params.x=1", "+model.params.y=2"], conf, multirun=True)
    assert swept == ["model=lightgbm,xgboost", "++model_preset.model.params.x=1", "++model_preset.model.params.y=2"]
    (conf / "config.yaml").write_text((conf / "config.yaml").read_text().replace("  - model: null\n", ""))
    assert hydra_overrides(["model=knn", "model.params.p=1"], conf) == ["+model=knn", "model_preset.model.params.p=1"]
