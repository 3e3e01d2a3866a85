#!/usr/bin/env bash
# Install mmp and run the main job on the embedded defaults (conf/ + recipes/model.yaml, data in data/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh "ml-extras"
export PATH="$PWD/.venv/bin:$PATH"
[ -f data/breast_cancer.csv ] || python scripts/make_data.py data
mmp compile recipe=model env=local
mmp validate recipe=model env=local
run_id=$(mmp train recipe=model env=local | tail -n 1)
echo "trained run $run_id (browse: mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db)"
