#!/usr/bin/env bash
# Prove edge-daemon on CPython 3.13: its own venv, the default dependencies plus the test and demo
# extras (not train), the models, the demo, and a fast subset of the tests (config, detection,
# embedding, gallery, recognize, demo; a few minutes); then scripts/test-install.sh with the same
# CPython: a non-editable install of a copy of the repository, models prepare into the user cache,
# gallery build and recognize on the shared photos (it skips with its reason without ../shared).
#
#   scripts/test-py313.sh [PYTEST ARGS...]     extra arguments go to pytest (e.g. -x, -k NAME)
#
# CPython 3.13 is found as $PYTHON313, else `python3.13` on PATH, else the newest
# $(pyenv root)/versions/3.13.*/bin/python3.13. Without one it skips with the reason (exit 0).
# The venv lives outside the repository, in $EDGE_PY313_VENV (default
# ${XDG_CACHE_HOME:-~/.cache}/edge-daemon/venv-py313), and is reused while pyproject.toml and the
# interpreter are the same; the project is installed into it editable, as scripts/setup.sh does
# (the install proof makes a fresh venv of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
log() { printf '[test-py313 +%4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
skip() { log "SKIP: $*"; echo "test-py313: SKIPPED: $*"; exit 0; }
die() { log "FAIL: $*"; echo "test-py313: FAIL: $*"; exit 1; }

# the fast subset: settings, detection, embedders, galleries and enrolment, recognize on photos, demo
TESTS=(
    tests/unit/test_config.py
    tests/unit/test_detection.py tests/integration/test_detection.py
    tests/integration/test_embedders.py tests/system/test_embedders.py
    tests/unit/test_gallery.py tests/system/test_gallery.py
    tests/unit/test_verification.py
    tests/system/test_demo.py
)

is313='import platform, sys; sys.exit(not (platform.python_implementation() == "CPython" and sys.version_info[:2] == (3, 13)))'
find_python() {
    local candidate
    candidate="$(command -v python3.13 || true)"
    # a pyenv shim for a version pyenv has not selected is on PATH but does not run
    if [ -n "$candidate" ] && "$candidate" -c "$is313" 2>/dev/null; then echo "$candidate"; return; fi
    if command -v pyenv >/dev/null; then
        for candidate in $(ls -d "$(pyenv root)"/versions/3.13.*/bin/python3.13 2>/dev/null | sort -V -r); do
            if "$candidate" -c "$is313" 2>/dev/null; then echo "$candidate"; return; fi
        done
    fi
    return 0
}
if [ -n "${PYTHON313:-}" ]; then
    PY313="$(command -v "$PYTHON313" || true)"
    { [ -n "$PY313" ] && "$PY313" -c "$is313" 2>/dev/null; } || die "PYTHON313=$PYTHON313 is not a runnable CPython 3.13"
else
    PY313="$(find_python)"
fi
[ -n "$PY313" ] || skip "no CPython 3.13 here (not \$PYTHON313, not python3.13 on PATH, not in \$(pyenv root)/versions/3.13.*)"
log "CPython: $("$PY313" -c 'import platform, sys; print(platform.python_version(), sys.executable)')"

VENV="${EDGE_PY313_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-daemon/venv-py313}"
mkdir -p "$(dirname "$VENV")"
case "$(cd "$(dirname "$VENV")" && pwd -P)/" in "$(pwd -P)/"*) die "EDGE_PY313_VENV=$VENV is inside the repository; put it outside";; esac
exec 9>"$VENV.lock"
flock -w 1800 9 || die "another test-py313.sh has held $VENV.lock for 30 min"

key="$({ cat pyproject.toml; "$PY313" -c 'import sys; print(sys.version, sys.executable)'; } | sha256sum | cut -c1-16)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.edge-daemon-key" 2>/dev/null)" = "$key" ] && "$VENV/bin/python" -c "$is313" 2>/dev/null; then
    log "venv: reusing $VENV"
    state=cached
else
    log "venv: creating $VENV"
    rm -rf "$VENV"
    "$PY313" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v 'is ignored' || true
    state=new
fi
t0=$(date +%s)
log "install: pip install -e '.[test,demo]' (default dependencies + test + demo; not train)"
"$VENV/bin/python" -m pip install --quiet -e ".[test,demo]" >"$VENV.install.log" 2>&1 \
    || die "pip install -e '.[test,demo]' failed on $("$PY313" --version): $(grep -m1 '^ERROR' "$VENV.install.log" || tail -3 "$VENV.install.log") (log: $VENV.install.log)"
echo "$key" >"$VENV/.edge-daemon-key"
log "install: done in $(($(date +%s) - t0)) s ($state venv): $("$VENV/bin/python" -c 'import numpy, onnxruntime, cv2, faiss; print("numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__, "opencv", cv2.__version__, "faiss", faiss.__version__)')"

ED="$VENV/bin/edge-daemon"
t0=$(date +%s)
if [ -d models ] && "$ED" models prepare --help 2>/dev/null | grep -q -- '--from'; then
    # the models prepared here (by scripts/setup.sh on the main Python), copied in and sha256-checked
    log "models: edge-daemon models prepare --from models/"
    "$ED" models prepare --from models/ >"$VENV.models.log" 2>&1 || die "models prepare --from models/ failed: $(tail -3 "$VENV.models.log")"
else
    log "models: edge-daemon models prepare"
    "$ED" models prepare >"$VENV.models.log" 2>&1 || die "models prepare failed on 3.13: $(tail -3 "$VENV.models.log")"
fi
log "models: ready in $(($(date +%s) - t0)) s"

demo_out="$(mktemp -d "${TMPDIR:-/tmp}/edge-daemon-py313-demo.XXXXXX")"
trap 'rm -rf "$demo_out"' EXIT
t0=$(date +%s)
log "demo: edge-daemon demo --out $demo_out"
timeout 600 "$ED" demo --out "$demo_out" >"$demo_out/events.jsonl" 2>"$demo_out/demo.err" \
    || die "edge-daemon demo failed on 3.13 (rc $?): $(tail -3 "$demo_out/demo.err")"
summary="$("$VENV/bin/python" - "$demo_out/events.jsonl" <<'EOF'
import json, sys
events = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
names = sorted(e["identity"] for e in events if e.get("type") == "recognized")
unknown = sum(e.get("type") == "unknown" for e in events)
ended = sum(e.get("type") == "ended" for e in events)
ok = {"grace_hopper", "eileen_collins"} <= set(names) and unknown >= 1 and ended >= 3
print(("ok" if ok else "BAD") + f": recognized {names}, {unknown} unknown, {ended} ended")
EOF
)"
log "demo: $summary ($(($(date +%s) - t0)) s)"
case "$summary" in ok*) ;; *) die "the demo's events on 3.13 are not the expected ones: $summary (events: $demo_out/events.jsonl)";; esac

t0=$(date +%s)
log "tests: ${TESTS[*]}"
# the tests check the defaults: EDGE_* settings meant for the demo do not reach them
unset_edge=()
for name in $(compgen -e); do case "$name" in EDGE_*) unset_edge+=(-u "$name");; esac; done
set +e
env "${unset_edge[@]}" "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}" "$@"
rc=$?
set -e
log "tests: pytest exited $rc in $(($(date +%s) - t0)) s"
[ $rc -eq 0 ] || die "pytest failed on $("$PY313" --version) (exit $rc)"

t0=$(date +%s)
log "install proof: scripts/test-install.sh $PY313"
scripts/test-install.sh "$PY313" | tee "$VENV.install-proof.log" || die "the install proof failed on $("$PY313" --version)"
case "$(tail -1 "$VENV.install-proof.log")" in *SKIPPED*) proof="the install proof skipped";; *) proof="the install proof";; esac
log "install proof: $(($(date +%s) - t0)) s"
echo "test-py313: PASS: install, models, demo, ${#TESTS[@]} test files and $proof on $("$PY313" --version) ($(($(date +%s) - START)) s)"
