#!/usr/bin/env bash
# Install mmp with every extra and the test tools into .venv, then run the whole test suite.
#   scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh "dev,all,spark-extras"
exec .venv/bin/python -m pytest "$@"
