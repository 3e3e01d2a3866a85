"""Calibration and quantile settings are checked before anything runs: exit 2, naming the key."""

from __future__ import annotations

import pytest

HELD_OUT = ["data.split.train=0.55", "data.split.calibration=0.15", "calibration.cv=null"]

# (what the user typed, the key path the message must name, words the message must hold)
CORPUS = [
    (["recipe=diabetes", "+calibration.method=sigmoid", "+calibration.cv=5"], "calibration",
     "calibration applies to classifier probabilities; the task is regression"),
    (["recipe=calibrated_nb", "calibration.method=platt"], "calibration.method", "allowed: 'sigmoid' or 'isotonic'"),
    (["recipe=calibrated_nb", "calibration.cv=1"], "calibration.cv", "1 fold cannot cross-validate"),
    (["recipe=calibrated_nb", "calibration.cv=0"], "calibration.cv", "allowed: an integer >= 2"),
    (["recipe=calibrated_nb", "calibration.cv=true"], "calibration.cv", "valid integer"),
    (["recipe=calibrated_nb", "calibration.cv=null"], "data.split.calibration", "needs rows it was not trained on"),
    (["recipe=calibrated_nb", "data.split.train=0.55", "data.split.calibration=0.15"], "calibration.cv",
     "both say where to calibrate"),
    (["recipe=calibrated_nb", "data.split.calibration=1.5"], "data.split.calibration", "ratio 1.5 is outside [0, 1)"),
    (["recipe=calibrated_nb", "data.split.calibration=-0.1", "calibration.cv=null"], "data.split.calibration",
     "outside [0, 1)"),
    (["recipe=calibrated_nb", "data.split.calibration=0.15", "calibration.cv=null"], "data.split",
     "train + calibration + validation + test = 1.15"),
    (["recipe=model", "data.split.train=0.55", "data.split.calibration=0.15"], "data.split.calibration",
     "the recipe has no 'calibration' section"),
    (["recipe=calibrated_nb", "+calibration.methd=isotonic"], "calibration.methd", "did you mean 'method'?"),
    (["recipe=model", "+quantiles=[0.1,0.9]"], "quantiles", "quantiles apply to regression; the task is classification"),
    (["recipe=diabetes_quantiles", "quantiles=[0.05,1.5]"], "quantiles.1", "1.5 is outside (0, 1)"),
    (["recipe=diabetes_quantiles", "quantiles=[0,0.5]"], "quantiles.0", "0 is outside (0, 1)"),
    (["recipe=diabetes_quantiles", "quantiles=[0.5,0.9,0.5]"], "quantiles.2", "0.5 is listed twice"),
    (["recipe=diabetes_quantiles", "quantiles=[]"], "quantiles", "the list is empty"),
    (["recipe=diabetes_quantiles", "quantiles=0.5"], "quantiles", "valid list"),
    (["recipe=diabetes_quantiles", "quantiles=[0.1234567]"], "quantiles.0", "more than 6 decimals"),
    (["recipe=diabetes_quantiles", "model.class_path=sklearn.ensemble.RandomForestRegressor", "~model.params"],
     "model.class_path", "RandomForestRegressor has no quantile loss"),
]


@pytest.mark.parametrize("words, key_path, message", CORPUS, ids=[" ".join(w) for w, _, _ in CORPUS])
def test_bad_calibration_or_quantiles_exit_2_naming_the_key(project, mmp, words, key_path, message):
    result = mmp("compile", *words)
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("mmp: error:") and "Traceback" not in result.err
    assert f"{key_path}:" in result.err and message in result.err


def test_a_model_without_quantile_loss_names_the_ones_allowed_and_the_override(project, mmp):
    result = mmp("compile", "recipe=diabetes", "+quantiles=[0.1,0.9]",
                 "model.class_path=sklearn.linear_model.Ridge", "~model.params")
    err = result.err
    assert result.code == 2 and "model.class_path: Ridge has no quantile loss, so it cannot fit quantiles" in err
    for allowed in ("sklearn.ensemble.GradientBoostingRegressor", "sklearn.ensemble.HistGradientBoostingRegressor",
                    "sklearn.linear_model.QuantileRegressor", "lightgbm.LGBMRegressor"):
        assert allowed in err
    assert "(from override 'model.class_path=sklearn.linear_model.Ridge')" in err


def test_calibration_on_regression_names_the_recipe_file(project, mmp):
    text = (project / "recipes" / "diabetes.yaml").read_text() + "calibration: {method: sigmoid, cv: 3}\n"
    (project / "recipes" / "calibrated_regression.yaml").write_text(text)
    result = mmp("compile", "recipe=calibrated_regression")
    assert result.code == 2
    assert "(from recipes/calibrated_regression.yaml)" in result.err and "calibration:" in result.err


def test_train_refuses_a_bad_calibration_with_exit_2_before_any_run(project, mmp):
    result = mmp("train", "recipe=calibrated_nb", "calibration.cv=1", "-q")
    assert result.code == 2 and "calibration.cv" in result.err
    assert not (project / "mlruns").exists()


@pytest.mark.parametrize("class_path, params", [
    ("sklearn.ensemble.GradientBoostingRegressor", "{n_estimators:50}"),
    ("sklearn.ensemble.HistGradientBoostingRegressor", "{max_iter:50}"),
    ("sklearn.linear_model.QuantileRegressor", "{alpha:0.0}"),
    ("lightgbm.LGBMRegressor", "{n_estimators:50,verbose:-1}"),
    ("xgboost.XGBRegressor", "{n_estimators:50}"),
])
def test_every_regressor_with_a_quantile_loss_compiles_with_quantiles(project, mmp, class_path, params):
    pytest.importorskip(class_path.split(".")[0])
    result = mmp("compile", "recipe=diabetes_quantiles", f"model.class_path={class_path}", "~model.params",
                 f"+model.params={params}", "quantiles=[0.1,0.9]")
    assert result.code == 0, result.err
    assert "per quantile 0.1, 0.9" in result.out and "prediction: one more model with its own loss" in result.out


def test_held_out_and_cross_validated_calibration_both_compile_and_say_where(project, mmp):
    cross = mmp("compile", "recipe=calibrated_nb")
    assert cross.code == 0, cross.err
    assert "calibrate   isotonic, 5-fold cross-validation on train" in cross.out
    held = mmp("compile", "recipe=calibrated_nb", *HELD_OUT, "calibration.method=sigmoid")
    assert held.code == 0, held.err
    assert "train 0.55 / calibration 0.15 / validation 0.15 / test 0.15" in held.out
    assert "calibrate   sigmoid on the calibration split (0.15 of the rows" in held.out
    iris = mmp("compile", "recipe=iris", "+calibration.cv=3")
    assert iris.code == 0, iris.err
    assert [line.split()[1] for line in iris.out[iris.out.index("pipeline iris"):].splitlines()[1:]] == \
        ["load", "split", "preprocess", "fit", "calibrate", "evaluate", "log"]
