"""The `mmp` command as a user runs it: a separate process, exit codes, help, listings."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, run_mmp

HEAVY = ("mlflow", "bentoml", "torch", "xgboost", "lightgbm")


def _imported_after(*args: str) -> list[str]:
    code = ("import sys\nfrom mmp.cli import run\ntry:\n    rc = run(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules]); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return eval(proc.stdout.strip().splitlines()[-1])


def test_help_compile_and_validate_import_no_heavy_library():
    assert _imported_after("--help") == []
    assert _imported_after("compile", "recipe=model", "env=prod") == []
    assert _imported_after("validate", "recipe=diabetes") == []


def test_version_and_help():
    from mmp import __version__

    assert run_mmp("--version").out.strip() == f"mmp {__version__}"
    out = run_mmp("--help").out
    for command in ("compile", "validate", "list"):
        assert command in out


def test_user_error_exits_2_with_one_message_and_no_traceback(project):
    result = run_mmp("compile", "recipe=model", "model.params.C=-1", cwd=project)
    assert result.code == 2
    assert result.err.startswith("mmp: error:") and "Traceback" not in result.err
    assert "Error executing job" not in result.err


def test_verbose_shows_the_traceback(project):
    result = run_mmp("--verbose", "compile", "recipe=model", "model.params.C=-1", cwd=project)
    assert result.code == 2 and "Traceback" in result.err


def test_unknown_flag_is_a_usage_error(project):
    result = run_mmp("compile", "--frobnicate", cwd=project)
    assert result.code == 2 and "--frobnicate" in result.err


def test_list_models_preprocessors_metrics(project, mmp):
    models = mmp("list", "models").out
    assert "sklearn.ensemble.RandomForestClassifier" in models and "xgboost.XGBClassifier" in models
    assert "mmp[ml-extras]" in models
    steps = mmp("list", "preprocessors").out
    for step in ("impute", "standard_scale", "minmax_scale", "robust_scale", "one_hot", "ordinal",
                 "target_encode", "kbins", "polynomial"):
        assert step in steps
    metrics = mmp("list", "metrics").out
    for metric in ("roc_auc", "log_loss", "rmse", "mape", "silhouette", "davies_bouldin"):
        assert metric in metrics


def test_list_recipes_and_envs(project, mmp):
    recipes = mmp("list", "recipes").out
    assert "boosting/breast_cancer_xgb" in recipes and "wine_clusters" in recipes and "clustering" in recipes
    assert mmp("list", "envs").out.split() == ["dev", "local", "prod"]


def test_listings_skip_configmap_hidden_folders(project, mmp, monkeypatch, configmap_conf):
    monkeypatch.setenv("MMP_CONF_DIR", str(configmap_conf))
    (project / "recipes" / "..data").mkdir()
    (project / "recipes" / "..data" / "ghost.yaml").write_text("name: ghost\n")
    assert "..data" not in mmp("list", "envs").out
    assert "ghost" not in mmp("list", "recipes").out


def test_list_models_shows_what_compile_accepts(project, mmp):
    table = mmp("list", "models").out.split("\n\n")[0]
    listed = {line.split()[0]: line.split()[1] for line in table.splitlines()[1:]}
    assert listed["sklearn.mixture.GaussianMixture"] == "clusterer"
    assert listed["statsforecast.models.AutoETS"] == "forecaster"
    assert listed["econml.metalearners.XLearner"] == "causal"  # kind "causal learner"
    assert "sklearn.cluster.DBSCAN" not in listed  # no predict: a logged model could not score new rows
    assert "sklearn.ensemble.IsolationForest" not in listed
    for class_path, kind in list(listed.items())[:: max(1, len(listed) // 12)]:  # a spread of them compiles
        if kind in ("classifier", "regressor") and class_path.startswith("sklearn."):
            recipe = "iris" if kind == "classifier" else "diabetes"
            assert mmp("compile", f"recipe={recipe}", f"model.class_path={class_path}", "~model.params").code == 0, class_path
    mixture = mmp("train", "recipe=wine_clusters", "model.class_path=sklearn.mixture.GaussianMixture",
                  "~model.params", "+model.params={n_components: 3, random_state: 0}", "mlflow.tracking_uri=./mlruns-mixture", "-q")
    assert mixture.code == 0, mixture.err


def test_compile_refuses_models_that_cannot_predict_the_task(project, mmp):
    outlier = mmp("compile", "recipe=iris", "model.class_path=sklearn.ensemble.IsolationForest", "~model.params")
    assert outlier.code == 2 and "IsolationForest is an outlier detector but the task is classification" in outlier.err
    dbscan = mmp("compile", "recipe=wine_clusters", "model.class_path=sklearn.cluster.DBSCAN", "~model.params")
    assert dbscan.code == 2 and "DBSCAN has no fit/predict" in dbscan.err
