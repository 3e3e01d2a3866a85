"""A model preset trains end to end: `mmp train recipe=model model=catboost`, its logged model loads
in a fresh process and pins catboost among its requirements."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import clean_env, run_mmp

pytestmark = pytest.mark.slow

LOAD_AND_PREDICT = """
import sys
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
uri = f"runs:/{sys.argv[2]}/model"
predicted = mlflow.pyfunc.load_model(uri).predict(pd.read_csv("data/breast_cancer.csv").drop(columns=["diagnosis"]).head(5))
print(list(predicted.columns), len(predicted))
print(open(mlflow.artifacts.download_artifacts(uri + "/requirements.txt")).read())
"""


def test_catboost_preset_trains_logs_and_its_model_loads(project):
    pytest.importorskip("catboost")
    from mmp.io.tracking import mlflow_uri

    trained = run_mmp("train", "recipe=model", "model=catboost", "model.params.iterations=50", "-q",
                      cwd=project, env=clean_env())
    assert trained.code == 0, trained.err
    run_id = trained.out.strip().splitlines()[-1]
    assert not (project / "catboost_info").exists()  # the preset keeps CatBoost from writing its own folder
    proc = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, mlflow_uri(str(project / "mlruns")), run_id],
                          cwd=project, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    columns, requirements = proc.stdout.split("\n", 1)
    assert columns == "['prediction', 'probability'] 5"
    assert any(line.startswith("catboost==") for line in requirements.splitlines())


def test_a_sweep_over_presets_trains_each_with_the_shared_overrides(project):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    swept = run_mmp("train", "-m", "recipe=iris", "model=random_forest,extra_trees", "model.params.n_estimators=20", "-q",
                    cwd=project, env=clean_env())
    assert swept.code == 0, swept.err
    runs = [line for line in swept.out.split() if len(line) == 32][:2]
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri(str(project / "mlruns")))
    params = [client.get_run(run_id).data.params for run_id in runs]
    assert sorted(p["model.class_path"] for p in params) == ["sklearn.ensemble.ExtraTreesClassifier",
                                                             "sklearn.ensemble.RandomForestClassifier"]
    assert all(p["model.params.n_estimators"] == "20" and "model.params.max_depth" not in p for p in params)
    assert sorted(client.get_run(run_id).data.tags["mmp.model_preset"] for run_id in runs) == ["extra_trees",
                                                                                               "random_forest"]
