#!/usr/bin/env bash
# Prove the OpenVINO execution provider on this box: a venv of its own where onnxruntime-openvino
# replaces onnxruntime (both install the same `onnxruntime` module, so they cannot sit side by
# side), the models copied in from models/, the demo with the detector and embedder on OpenVINO
# (the expected names, and each model's "model runs on OpenVINO" log line), and
# tests/integration/test_execution_providers.py (OpenVINO against the CPU provider, devices the box
# lacks, the Hamilton clip on each provider).
#
#   scripts/test-openvino.sh [PYTEST ARGS...]
#
# The venv lives in $EDGE_OPENVINO_VENV (default ${XDG_CACHE_HOME:-~/.cache}/edge-daemon/venv-openvino)
# and is reused while pyproject.toml and the interpreter are the same. It skips with the reason
# (exit 0) where onnxruntime-openvino has no wheel for this machine or OpenVINO finds no device.
set -euo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
log() { printf '[test-openvino +%4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
skip() { log "SKIP: $*"; echo "test-openvino: SKIPPED: $*"; exit 0; }
die() { log "FAIL: $*"; echo "test-openvino: FAIL: $*"; exit 1; }

[ -x .venv/bin/python ] || die "no .venv: run scripts/setup.sh first"
PYTHON="$(.venv/bin/python -c 'import sys; print(sys._base_executable)')"
VENV="${EDGE_OPENVINO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-daemon/venv-openvino}"
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock -w 1800 9 || die "another test-openvino.sh has held $VENV.lock for 30 min"

key="$({ cat pyproject.toml; "$PYTHON" -c 'import sys; print(sys.version, sys.executable)'; } | sha256sum | cut -c1-16)"
has_openvino='import onnxruntime, sys; sys.exit("OpenVINOExecutionProvider" not in onnxruntime.get_available_providers())'
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.edge-daemon-key" 2>/dev/null)" = "$key" ] && "$VENV/bin/python" -c "$has_openvino" 2>/dev/null; then
    log "venv: reusing $VENV"
else
    log "venv: creating $VENV with $("$PYTHON" --version)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v 'is ignored' || true
    t0=$(date +%s)
    # the project and its extras first (they bring the plain onnxruntime), then OpenVINO's build in its place
    "$VENV/bin/python" -m pip install --quiet -e ".[test,demo]" >"$VENV.install.log" 2>&1 \
        || die "pip install -e '.[test,demo]' failed: $(grep -m1 '^ERROR' "$VENV.install.log" || tail -3 "$VENV.install.log")"
    "$VENV/bin/python" -m pip uninstall --quiet -y onnxruntime >>"$VENV.install.log" 2>&1
    if ! "$VENV/bin/python" -m pip install --quiet onnxruntime-openvino >>"$VENV.install.log" 2>&1; then
        grep -q "No matching distribution" "$VENV.install.log" && skip "onnxruntime-openvino has no wheel for $(uname -m) / $("$PYTHON" --version)"
        die "pip install onnxruntime-openvino failed: $(tail -3 "$VENV.install.log")"
    fi
    "$VENV/bin/python" -c "$has_openvino" || die "onnxruntime-openvino is installed but lists no OpenVINO provider"
    echo "$key" >"$VENV/.edge-daemon-key"
    log "venv: ready in $(($(date +%s) - t0)) s"
fi
log "onnxruntime $("$VENV/bin/python" -c 'import onnxruntime; print(onnxruntime.__version__, onnxruntime.get_available_providers())'); OpenVINO devices: $("$VENV/bin/python" -c 'from onnxruntime.capi import _pybind_state as s; print(s.get_available_openvino_device_ids())')"

ED="$VENV/bin/edge-daemon"
"$ED" models prepare --from models/ >"$VENV.models.log" 2>&1 || die "models prepare --from models/ failed: $(tail -3 "$VENV.models.log")"

demo_out="$(mktemp -d "${TMPDIR:-/tmp}/edge-daemon-openvino-demo.XXXXXX")"
trap 'rm -rf "$demo_out"' EXIT
t0=$(date +%s)
log "demo: detector and embedder on OpenVINO (device CPU)"
EDGE_DETECTOR__PROVIDER=openvino EDGE_EMBEDDER__PROVIDER=openvino EDGE_LOGGING__FORMAT=json \
    timeout 600 "$ED" demo --out "$demo_out" >"$demo_out/events.jsonl" 2>"$demo_out/demo.err" \
    || die "edge-daemon demo on OpenVINO failed (rc $?): $(tail -3 "$demo_out/demo.err")"
summary="$("$VENV/bin/python" - "$demo_out/events.jsonl" "$demo_out/demo.err" <<'EOF'
import json, sys
events = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
logs = [json.loads(line) for line in open(sys.argv[2]) if line.startswith("{")]
names = sorted(e["identity"] for e in events if e.get("type") == "recognized")
unknown = sum(e.get("type") == "unknown" for e in events)
on_openvino = sorted({entry.get("model") for entry in logs if entry.get("event") == "model runs on OpenVINO"})
fell_back = [entry for entry in logs if str(entry.get("event", "")).startswith("OpenVINO not used")]
ok = {"grace_hopper", "eileen_collins"} <= set(names) and unknown >= 1 and on_openvino == ["dlib_onnx", "mobilefacenet", "yunet"] and not fell_back
print(("ok" if ok else "BAD") + f": recognized {names}, {unknown} unknown; on OpenVINO: {on_openvino}; fell back: {fell_back}")
EOF
)"
log "demo: $summary ($(($(date +%s) - t0)) s)"
case "$summary" in ok*) ;; *) die "the demo on OpenVINO is not as expected: $summary (logs: $demo_out/demo.err)";; esac

t0=$(date +%s)
unset_edge=()
for name in $(compgen -e); do case "$name" in EDGE_*) unset_edge+=(-u "$name");; esac; done
set +e
env "${unset_edge[@]}" "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/integration/test_execution_providers.py "$@"
rc=$?
set -e
log "tests: pytest exited $rc in $(($(date +%s) - t0)) s"
[ $rc -eq 0 ] || die "pytest of the execution providers failed on OpenVINO (exit $rc)"
