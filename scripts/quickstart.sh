#!/usr/bin/env bash
# Install mmp and run the main job on the embedded defaults (conf/ + recipes/model.yaml + data/):
# train the example recipe, batch-predict its data, start the service and ask it one question.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh "ml-extras"
export PATH="$PWD/.venv/bin:$PATH" BENTOML_DO_NOT_TRACK=true
[ -f data/breast_cancer.csv ] || python scripts/make_data.py data

mmp validate recipe=model env=local
run_id=$(mmp train recipe=model env=local | tail -n 1)
mmp batch-inference --run-id "$run_id" -d data/breast_cancer.csv -o predictions/

port=${PORT:-8000}
mmp serve-api --run-id "$run_id" --port "$port" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
  kill -0 $server 2>/dev/null || { echo "the service did not start" >&2; exit 1; }
  sleep 0.2
done
row=$(python -c "import pandas as pd, json; print(json.dumps(pd.read_csv('data/breast_cancer.csv').drop(columns=['id','diagnosis']).iloc[0].to_dict()))")
echo "POST /predict -> $(curl -sf -X POST "http://127.0.0.1:$port/predict" -H 'Content-Type: application/json' -d "$row")"
echo
echo "run $run_id: serve it with  .venv/bin/mmp serve-api --run-id $run_id   (docs: http://127.0.0.1:$port/docs)"
echo "browse runs with           .venv/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --default-artifact-root ./mlruns/artifacts"
