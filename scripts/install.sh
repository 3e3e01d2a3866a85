#!/usr/bin/env bash
# Create (or reuse) a virtual environment and install mmp into it.
#   scripts/install.sh [EXTRAS]      e.g. scripts/install.sh dev,ml-extras
# VENV selects the environment folder (default .venv). Every install goes through
# scripts/constraints.txt, so torch stays the CPU build and bentoml stays on its tested pin, and
# through the image's locked versions (requirements/image-pins.txt, from scripts/lock.sh), so a
# checkout runs what the image runs; packages outside the lock (dev tools, torch) resolve around them.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
venv="${VENV:-.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
"$venv/bin/python" -m pip install --quiet -c scripts/constraints.txt -c requirements/image-pins.txt -e "$spec"
echo "installed mmp${extras:+[$extras]} into $venv"
