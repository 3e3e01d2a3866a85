"""Composition: groups, nested recipes, every override form, seed flags, env vars, ConfigMap mounts."""

from __future__ import annotations

import os
import shutil

import pytest
import yaml

from tests.conftest import REPO, write_configmap


def resolved(result) -> dict:
    """The resolved config part of `mmp compile` output (before the pipeline plan)."""
    assert result.code == 0, result.err
    return yaml.safe_load(result.out.split("\npipeline ", 1)[0])


def test_recipe_and_env_keys_sit_side_by_side_at_the_root(project, mmp):
    cfg = resolved(mmp("compile", "recipe=model", "env=local"))
    assert cfg["name"] == "breast_cancer" and cfg["task"] == "classification"
    assert cfg["mlflow"]["tracking_uri"] == "${oc.env:MLFLOW_TRACKING_URI,./mlruns}"
    assert cfg["serving"]["host"] == "${oc.env:MMP_SERVING_HOST,127.0.0.1}"  # shown as written: a laptop binds loopback
    assert cfg["environment"]["name"] == "local"
    assert "recipe" not in cfg and "env" not in cfg


def test_env_group_selects_conf_env_file(project, mmp):
    assert resolved(mmp("compile", "recipe=model", "env=prod"))["serving"]["auth"]["token_env"] == "MMP_API_TOKEN"


def test_nested_recipe_name_selects_subfolder_file(project, mmp):
    pytest.importorskip("xgboost")
    assert resolved(mmp("compile", "recipe=boosting/breast_cancer_xgb"))["model"]["class_path"] == "xgboost.XGBClassifier"


def test_unknown_recipe_lists_hydra_available_options_including_subfolders(project, mmp):
    result = mmp("compile", "recipe=nope")
    assert result.code == 2
    assert "Available options in 'recipe'" in result.err
    assert "boosting/breast_cancer_xgb" in result.err and "\tmodel" in result.err


def test_missing_recipe_says_how_to_choose_one(project, mmp):
    (project / "recipes" / "model.yaml").unlink()  # no seed default to fall back on
    result = mmp("compile")
    assert result.code == 2 and "You must specify 'recipe'" in result.err


def test_no_recipe_given_compiles_the_seed_default_recipes_model_yaml(project, mmp):
    result = mmp("compile")
    assert resolved(result)["name"] == "breast_cancer"
    assert "recipe model, env local" in result.out


def test_seed_configs_production_yaml_is_the_env_when_none_is_named(project, mmp):
    (project / "configs").mkdir()
    (project / "configs" / "production.yaml").write_text(
        "environment:\n  name: production\nmlflow:\n  tracking_uri: http://mlflow:5000\n")
    cfg = resolved(mmp("compile"))
    assert cfg["environment"]["name"] == "production" and cfg["mlflow"]["tracking_uri"] == "http://mlflow:5000"
    assert resolved(mmp("compile", "env=local"))["environment"]["name"] == "local"  # a named env wins


def test_config_dir_flag_selects_the_conf_dir(project, mmp, tmp_path):
    other = tmp_path / "elsewhere" / "conf"
    shutil.copytree(project / "conf", other)
    (other / "env" / "local.yaml").write_text((other / "env" / "local.yaml").read_text().replace("port: 8000", "port: 8123"))
    for flags in (["--config-dir", str(other)], [f"--config-dir={other}"], ["-cd", str(other)]):
        assert resolved(mmp("compile", *flags, "recipe=model"))["serving"]["port"] == 8123, flags
    missing = mmp("compile", "--config-dir", str(tmp_path / "nowhere"), "recipe=model")
    assert missing.code == 2 and "--config-dir" in missing.err and "config.yaml" in missing.err


def test_a_typo_in_a_recipe_file_names_that_file(project, mmp, tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text((project / "recipes" / "model.yaml").read_text().replace("evaluate:", "evalute:"))
    for command in ("compile", "validate", "train"):
        result = mmp(command, "-r", str(recipe))
        assert result.code == 2, (command, result.err)
        assert "evalute: unknown key" in result.err and "(from mine.yaml)" in result.err, (command, result.err)


@pytest.mark.parametrize("override, path, expected", [
    ("model.params.C=0.5", ("model", "params", "C"), 0.5),
    ("+model.params.tol=0.001", ("model", "params", "tol"), 0.001),
    ("++model.params.C=2.0", ("model", "params", "C"), 2.0),
    ("++model.params.penalty=l2", ("model", "params", "penalty"), "l2"),
    ("evaluate.metrics=[accuracy,roc_auc]", ("evaluate", "metrics"), ["accuracy", "roc_auc"]),
    ("data.split.seed=7", ("data", "split", "seed"), 7),
    ("data.entity_columns=[]", ("data", "entity_columns"), []),
    ("serving.port=9000", ("serving", "port"), 9000),
    ("mlflow.experiment=exp-a", ("mlflow", "experiment"), "exp-a"),
    ("data.source='memory://x/y.csv'", ("data", "source"), "memory://x/y.csv"),
])
def test_override_forms_are_applied(project, mmp, override, path, expected):
    cfg = resolved(mmp("compile", "recipe=model", override))
    for key in path:
        cfg = cfg[key]
    assert cfg == expected


def test_delete_override_removes_a_key(project, mmp):
    cfg = resolved(mmp("compile", "recipe=model", "~model.params.max_iter"))
    assert "max_iter" not in cfg["model"]["params"]


def test_overrides_are_visible_in_the_plan(project, mmp):
    result = mmp("compile", "recipe=model", "model.params.C=0.25", "data.split.seed=9")
    assert "LogisticRegression(C=0.25, max_iter=1000)" in result.out
    assert "seed 9" in result.out


def test_multirun_sweep_composes_one_job_per_value(project, mmp):
    result = mmp("compile", "-m", "recipe=model", "model.params.C=0.1,1.0,10.0")
    assert result.code == 0, result.err
    for c in ("C=0.1", "C=1.0", "C=10.0"):
        assert f"LogisticRegression({c}, max_iter=1000)" in result.out
    assert not (project / "multirun").exists() and not (project / "multirun.yaml").exists()


def test_hydra_cfg_job_and_resolve_flags(project, mmp, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    raw = yaml.safe_load(mmp("compile", "recipe=model", "--cfg", "job").out)
    assert raw["mlflow"]["tracking_uri"] == "${oc.env:MLFLOW_TRACKING_URI,./mlruns}"
    done = yaml.safe_load(mmp("compile", "recipe=model", "--cfg", "job", "--resolve").out)
    assert done["mlflow"]["tracking_uri"] == "http://tracking:5000"


def test_no_outputs_folder_and_no_change_of_directory(project, mmp):
    before = sorted(p.name for p in project.iterdir())
    assert mmp("compile", "recipe=model").code == 0
    assert os.getcwd() == str(project)
    assert sorted(p.name for p in project.iterdir()) == before


def test_seed_flags_recipe_file_env_file_data_and_params(project, mmp, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    recipe = shutil.copy(project / "recipes" / "iris.yaml", elsewhere / "flowers.yaml")
    env = elsewhere / "staging.yaml"
    env.write_text((project / "conf" / "env" / "prod.yaml").read_text().replace("port: 8000", "port: 8111"))
    cfg = resolved(mmp("compile", "-r", str(recipe), "-c", str(env), "-d", "s3://bucket/train.csv",
                       "-p", '{"max_depth": 3, "data.split.seed": 11}'))
    assert cfg["name"] == "iris"
    assert cfg["serving"]["port"] == 8111
    assert cfg["data"]["source"] == "s3://bucket/train.csv"
    assert cfg["model"]["params"]["max_depth"] == 3
    assert cfg["data"]["split"]["seed"] == 11


def test_loose_env_file_without_package_header_still_sits_at_the_root(project, mmp, tmp_path):
    env = tmp_path / "bare.yaml"
    env.write_text("serving:\n  port: 8222\n")
    assert resolved(mmp("compile", "recipe=model", "-c", str(env)))["serving"]["port"] == 8222


def test_loose_recipe_file_wins_over_a_same_named_recipe_in_recipes(project, mmp, tmp_path):
    other = tmp_path / "model.yaml"
    other.write_text((project / "recipes" / "iris.yaml").read_text())
    assert resolved(mmp("compile", "-r", str(other)))["name"] == "iris"


def test_recipe_path_and_config_path_env_vars_are_defaults(project, mmp, monkeypatch):
    monkeypatch.setenv("RECIPE_PATH", str(project / "recipes" / "diabetes.yaml"))
    monkeypatch.setenv("CONFIG_PATH", str(project / "conf" / "env" / "prod.yaml"))
    cfg = resolved(mmp("compile"))
    assert cfg["name"] == "diabetes" and cfg["serving"]["host"] == "0.0.0.0"
    # explicit choices win over the env vars
    cfg = resolved(mmp("compile", "recipe=iris", "env=local"))
    assert cfg["name"] == "iris" and cfg["environment"]["name"] == "local"


def test_recipes_dir_env_var(project, mmp, monkeypatch, tmp_path):
    other = tmp_path / "team_recipes" / "fraud"
    other.mkdir(parents=True)
    shutil.copy(project / "recipes" / "model.yaml", other / "lr.yaml")
    monkeypatch.setenv("MMP_RECIPES_DIR", str(tmp_path / "team_recipes"))
    assert resolved(mmp("compile", "recipe=fraud/lr"))["name"] == "breast_cancer"


def test_conf_dir_on_a_configmap_mount(project, mmp, monkeypatch, configmap_conf):
    shutil.rmtree(project / "conf")  # only the mount is there, as in the image under k8s
    monkeypatch.setenv("MMP_CONF_DIR", str(configmap_conf))
    assert resolved(mmp("compile", "recipe=model", "env=prod"))["serving"]["workers"] == 2
    env_file = configmap_conf / "env" / "prod.yaml"
    assert resolved(mmp("compile", "recipe=model", "-c", str(env_file)))["serving"]["workers"] == 2
    listing = mmp("list", "envs").out.split()
    assert listing == ["local", "prod"]
    result = mmp("compile", "recipe=model", "env=nope")
    assert result.code == 2 and "..data" not in result.err and "\tprod" in result.err


def test_configmap_update_between_two_commands_is_seen(project, mmp, monkeypatch, configmap_conf):
    monkeypatch.setenv("MMP_CONF_DIR", str(configmap_conf))
    assert resolved(mmp("compile", "recipe=model", "env=prod"))["serving"]["workers"] == 2
    prod = (REPO / "conf" / "env" / "prod.yaml").read_text().replace("workers: 2", "workers: 6")
    write_configmap(configmap_conf, "..2026_11_26_11_00_00.000000002",
                    {"config.yaml": (REPO / "conf" / "config.yaml").read_text(), "env/prod.yaml": prod})
    assert resolved(mmp("compile", "recipe=model", "env=prod"))["serving"]["workers"] == 6


def test_recipe_flag_and_recipe_override_together_is_an_error(project, mmp):
    result = mmp("compile", "-r", "recipes/model.yaml", "recipe=iris")
    assert result.code == 2 and "not both" in result.err


def test_missing_conf_dir_says_what_to_do(project, mmp, monkeypatch, tmp_path):
    monkeypatch.setenv("MMP_CONF_DIR", str(tmp_path / "nowhere"))
    result = mmp("compile", "recipe=model")
    assert result.code == 2 and "MMP_CONF_DIR" in result.err and "mmp init" in result.err


FORMS = ["key=value", "+key=value", "++key=value", "~key", "group=option"]
UNSET = "MMP_TEST_SURELY_UNSET"
VAULT_ENV = f"# @package _global_\nmlflow:\n  tracking_uri: ${{oc.env:{UNSET}}}\n"

# name: (what the user typed, files written first {path: text, or a function of the project folder}, what the message says)
HYDRA_ERRORS = {
    "override with no key": (["recipe=model", "=3"], {}, ["override '=3'", "no key before '='", *FORMS]),
    "add with no key": (["recipe=model", "+=x"], {}, ["override '+=x'", "no key before '='", *FORMS]),
    "override with no '='": (["recipe=model", "max_iter"], {}, ["override 'max_iter'", "no '='", *FORMS]),
    "value that does not parse": (["recipe=model", "model.params.C=["], {},
                                  ["override 'model.params.C=['", "cannot read it", *FORMS, "a list [a,b]"]),
    "change a key that is not there": (["recipe=model", "model.params.Cc=2"], {}, [
        "model.params.Cc: there is no key 'Cc' to change", "did you mean 'C'? allowed: C, max_iter",
        "to add it, write '+model.params.Cc=2'", "(from override 'model.params.Cc=2')"]),
    "change a root key that is not there": (["recipe=model", "nosuch.key=1"], {}, [
        "nosuch.key: there is no key 'nosuch' to change",  # Hydra's own settings (hydra.*) are not offered
        "allowed: batch, calibration, data, description, environment, evaluate, forecast, mlflow, model, monitoring, name, output, preprocess, quantiles, registry, serving, source, task, tune;",
        "(from override 'nosuch.key=1')"]),
    "delete a key that is not there": (["recipe=model", "~model.params.tol"], {}, [
        "model.params.tol: there is no such key to delete", "allowed: C, max_iter", "(from override '~model.params.tol')"]),
    "delete a key by the wrong value": (["recipe=model", "~name=other"], {}, [
        "name: its value is breast_cancer, not other", "write '~name'", "(from override '~name=other')"]),
    "add a key that is there": (["recipe=model", "+name=x"], {}, [
        "name: already has a value", "'name=x'", "'++name=x'", "(from override '+name=x')"]),
    "a list where a mapping is": (["recipe=model", "data=[1]"], {}, [
        "data: it holds a mapping and cannot take a list; give a mapping", "(from override 'data=[1]')"]),
    "a sweep without -m": (["recipe=model", "model.params.C=1,2"], {}, [
        "model.params.C: several values make a sweep", "add -m", "model.params.C=[1,2]", "(from override 'model.params.C=1,2')"]),
    "a group given a number": (["recipe=model", "env=3"], {}, [
        "env: 3 is not an option name", "write env=NAME; allowed: dev, local, prod", "(from override 'env=3')"]),
    "a group added twice": (["recipe=model", "+env=prod"], {}, ["env: an option is chosen already", "write 'env=prod'",
                                                                 "(from override '+env=prod')"]),
    "a group force-added": (["recipe=model", "++env=prod"], {}, ["env: '++' does not apply to a config group",
                                                                  "write 'env=prod'", "(from override '++env=prod')"]),
    "an unknown env": (["recipe=model", "env=prdo"], {}, [
        "env: there is no env option 'prdo'; did you mean 'prod'? (from override 'env=prdo')",
        "Available options in 'env':", "\tdev", "\tlocal", "\tprod"]),
    "an unknown recipe": (["recipe=nosuch"], {}, [
        "recipe: there is no recipe option 'nosuch' (from override 'recipe=nosuch')", "\tboosting/breast_cancer_xgb", "\tmodel"]),
    "a misspelt nested recipe": (["recipe=boosting/breast_cancer_xgbb"], {}, [
        "there is no recipe option 'boosting/breast_cancer_xgbb'; did you mean 'boosting/breast_cancer_xgb'?"]),
    "an unknown env named by config.yaml": (["recipe=model"], {"conf/config.yaml": lambda p: (
        p / "conf" / "config.yaml").read_text().replace("env: local", "env: laptop")}, [
        "env: there is no env option 'laptop'", "(from conf/config.yaml)", "\tlocal"]),
    "an unset variable in an override": (["recipe=model", f"mlflow.tracking_uri=${{oc.env:{UNSET}}}"], {}, [
        f"mlflow.tracking_uri: environment variable {UNSET} is not set", f"give a default: ${{oc.env:{UNSET},DEFAULT}}",
        f"(from override 'mlflow.tracking_uri=${{oc.env:{UNSET}}}')"]),
    "an unset variable in an env file": (["recipe=model", "env=vault"], {"conf/env/vault.yaml": VAULT_ENV}, [
        f"mlflow.tracking_uri: environment variable {UNSET} is not set", "(from conf/env/vault.yaml)"]),
    "an unset variable in an env file, with --cfg job --resolve": (
        ["recipe=model", "env=vault", "--cfg", "job", "--resolve"], {"conf/env/vault.yaml": VAULT_ENV}, [
            f"mlflow.tracking_uri: environment variable {UNSET} is not set", "(from conf/env/vault.yaml)"]),
    "an unset variable in a recipe file": (["recipe=secret"], {"recipes/secret.yaml": lambda p: (
        p / "recipes" / "model.yaml").read_text().replace("source: data/breast_cancer.csv", f"source: ${{oc.env:{UNSET}}}")}, [
        f"data.source: environment variable {UNSET} is not set", "(from recipes/secret.yaml)"]),
    "an interpolation to a key that is not there": (["recipe=model", "mlflow.experiment=${nope.key}"], {}, [
        "mlflow.experiment: ${nope.key} refers to a key that is not in the config",
        "(from override 'mlflow.experiment=${nope.key}')"]),
    "an unknown resolver": (["recipe=model", "name=${oc.nosuch:x}"], {}, [
        "name: unknown resolver 'oc.nosuch'", "oc.env", "(from override 'name=${oc.nosuch:x}')"]),
}


@pytest.mark.parametrize("case", HYDRA_ERRORS, ids=list(HYDRA_ERRORS))
def test_hydra_and_omegaconf_errors_read_like_mmps_own(project, mmp, monkeypatch, case):
    words, files, fragments = HYDRA_ERRORS[case]
    monkeypatch.delenv(UNSET, raising=False)
    for rel, text in files.items():
        (project / rel).write_text(text(project) if callable(text) else text)
    result = mmp("compile", *words)
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("mmp: error:") and "Traceback" not in result.err
    missing = [f for f in fragments if f not in result.err]
    assert not missing, f"{missing} not in:\n{result.err}"


def test_an_override_with_no_key_names_it_and_the_forms(project, mmp):
    result = mmp("compile", "recipe=model", "=3")
    assert result.code == 2
    assert "Config group override must be a string" not in result.err
    assert result.err.startswith("mmp: error: override '=3': there is no key before '='; the forms are key=value")


def test_an_unset_variable_in_a_sweep_job_names_the_key(project, mmp, monkeypatch):
    monkeypatch.delenv(UNSET, raising=False)
    result = mmp("compile", "-m", "recipe=model", "model.params.C=0.5,1.0", f"mlflow.tracking_uri=${{oc.env:{UNSET}}}")
    assert result.code == 2
    assert f"mlflow.tracking_uri: environment variable {UNSET} is not set" in result.err


def test_deleting_a_credential_by_the_wrong_value_does_not_show_the_credential(project, mmp):
    result = mmp("compile", "recipe=model", "+source.storage_options.key=AKIA-not-to-be-shown",
                 "~source.storage_options.key=guess")
    assert result.code == 2
    assert "source.storage_options.key: its value is ***, not guess" in result.err
    assert "AKIA-not-to-be-shown" not in result.err
