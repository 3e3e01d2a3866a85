"""Preprocessing: every step type compiles into one transformer; unseen categories and missing
values at prediction time never crash, through the logged model itself."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl
import pytest

from mmp.config.spec import StepSpec
from tests.conftest import clean_env, run_mmp

ALL_STEPS = [
    {"type": "impute", "strategy": "median", "add_indicator": True},
    {"type": "robust_scale", "columns": ["income"]},
    {"type": "minmax_scale", "columns": ["age"]},
    {"type": "kbins", "columns": ["tenure"], "n_bins": 4},
    {"type": "polynomial", "columns": ["age", "income"], "degree": 2},
    {"type": "standard_scale", "columns": ["tenure"]},
    {"type": "impute", "strategy": "most_frequent", "columns": ["city", "plan", "region"]},
    {"type": "one_hot", "columns": ["city"]},
    {"type": "ordinal", "columns": ["plan"]},
    {"type": "target_encode", "columns": ["region"]},
]


def customers(n: int = 600, seed: int = 0) -> pl.DataFrame:
    """A churn table with numbers, text, gaps and a date: the shapes real tabular data has."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    income = rng.normal(50_000, 15_000, n)
    tenure = rng.integers(0, 120, n)
    city = rng.choice(["paris", "lyon", "nice", "lille"], n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    region = rng.choice(["north", "south", "east", "west"], n)
    score = (tenure < 24) * 1.5 + (plan == "basic") * 1.0 - (income > 60_000) * 0.8 + rng.normal(0, 0.5, n)
    frame = pl.DataFrame({
        "customer_id": np.arange(n), "age": age, "income": income, "tenure": tenure, "city": city,
        "plan": plan, "region": region,
        "signup": [f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
        "churn": np.where(score > 1.0, "yes", "no"),
    })
    gaps = rng.random(n) < 0.05  # missing values in a number and a text column
    return frame.with_columns(
        age=pl.when(pl.Series(gaps)).then(None).otherwise(pl.col("age")),
        city=pl.when(pl.Series(np.roll(gaps, 1))).then(None).otherwise(pl.col("city")),
    )


def test_every_step_type_builds_one_column_transformer():
    from sklearn.compose import ColumnTransformer

    from mmp.training.preprocess import build_preprocessor

    frame = customers().to_pandas()
    features = ["age", "income", "tenure", "city", "plan", "region"]
    numeric = {"age", "income", "tenure"}
    steps = [StepSpec(**s) for s in ALL_STEPS]
    transformer = build_preprocessor(steps, features, numeric, model_accepts_nan=False)
    assert isinstance(transformer, ColumnTransformer)
    X = frame[features].astype({"city": object})
    out = transformer.fit_transform(X, (frame["churn"] == "yes").astype(int))
    assert np.isfinite(out).all() and out.shape[0] == len(frame)
    names = list(transformer.get_feature_names_out())
    assert any(n.startswith("city_") for n in names) and "plan" in names


def test_numeric_columns_without_impute_get_a_guard_only_when_the_model_needs_it():
    from mmp.training.preprocess import build_preprocessor

    steps = [StepSpec(type="standard_scale")]
    guarded = build_preprocessor(steps, ["a", "b"], {"a", "b"}, model_accepts_nan=False)
    assert "missing_guard" in str(guarded.transformers[0][1])
    bare = build_preprocessor(steps, ["a", "b"], {"a", "b"}, model_accepts_nan=True)
    assert "missing_guard" not in str(bare.transformers[0][1])


def test_default_columns_follow_the_dtype():
    from mmp.training.preprocess import step_columns

    features, numeric = ["a", "b", "c"], {"a", "b"}
    assert step_columns("standard_scale", {}, None, features, numeric) == ["a", "b"]
    assert step_columns("one_hot", {}, None, features, numeric) == ["c"]
    assert step_columns("impute", {"strategy": "most_frequent"}, None, features, numeric) == features
    assert step_columns("impute", {}, ["c"], features, numeric) == ["c"]


RECIPE = """
name: churn
task: classification
data:
  source: customers.csv
  entity_columns: [customer_id]
  target: churn
  split: {strategy: temporal, time_column: signup, train: 0.7, validation: 0.15, test: 0.15}
preprocess: %s
model:
  class_path: sklearn.linear_model.LogisticRegression
  params: {max_iter: 2000}
evaluate:
  metrics: [accuracy, roc_auc]
"""

PREDICT_AWKWARD_ROWS = """
import json, sys
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(f"runs:/{sys.argv[2]}/model")
rows = pd.DataFrame([
    {"age": None, "income": 52000.0, "tenure": 3, "city": "marseille", "plan": "enterprise", "region": "mars"},
    {"age": 40.0, "income": None, "tenure": None, "city": None, "plan": None, "region": None},
    {"age": 33, "income": 61000, "tenure": 50, "city": "paris", "plan": "pro", "region": "north"},
])
print(json.dumps(model.predict(rows).to_dict(orient="list")))
"""


def test_unseen_categories_and_missing_values_never_crash_the_logged_model(tmp_path):
    import json

    from mmp.io.tracking import mlflow_uri

    shutil_copy_project(tmp_path)
    customers().write_csv(tmp_path / "customers.csv")
    (tmp_path / "recipes" / "churn.yaml").write_text(RECIPE % ALL_STEPS)
    result = run_mmp("train", "recipe=churn", cwd=tmp_path, env=clean_env())
    assert result.code == 0, result.err
    assert "temporal" in result.err and "fit" in result.err  # progress lines, on stderr
    run_id = result.out.split()[-1]
    proc = subprocess.run([sys.executable, "-c", PREDICT_AWKWARD_ROWS, mlflow_uri(str(tmp_path / "mlruns")), run_id],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out["prediction"]) <= {"yes", "no"} and len(out["prediction"]) == 3
    assert all(0.0 <= p <= 1.0 and not math.isnan(p) for p in out["probability"])


def shutil_copy_project(dest):
    import shutil

    from tests.conftest import REPO

    for name in ("conf", "recipes"):
        shutil.copytree(REPO / name, dest / name)


@pytest.mark.parametrize("values, expected", [([1, 2, None], [1.0, 2.0, None]), (["1.5", "x"], None)])
def test_model_input_coerces_numbers_and_names_bad_columns(values, expected):
    from mmp.models.tabular import InputError, model_input

    frame = pd.DataFrame({"n": values})
    if expected is None:
        with pytest.raises(InputError, match="column 'n' must be numeric, got 'x'"):
            model_input(frame, ["n"], ["n"])
    else:
        out = model_input(frame, ["n"], ["n"])
        assert out["n"].dtype == "float64"
        assert [None if math.isnan(v) else v for v in out["n"]] == expected
    with pytest.raises(InputError, match="missing column: other"):
        model_input(frame, ["n", "other"], ["n"])
