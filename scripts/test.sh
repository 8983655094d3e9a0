#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Installs from apt what the tests start for real when it
# is missing: mosquitto (MQTT broker) and GStreamer's RTSP server (camera tests), both on free
# loopback ports, and Chromium with its driver (the review page's browser test). Home Assistant
# core goes into its own Python 3.13 venv in the user's cache (scripts/setup-homeassistant.sh).
#
# After pytest (the suite under the .venv's Python), it proves the portable install:
#   - scripts/test-py313.sh: install, models, demo and a fast subset under CPython 3.13;
#   - scripts/test-openvino.sh: the OpenVINO execution provider in a venv where onnxruntime-openvino
#     replaces onnxruntime (the demo and tests/integration/test_execution_providers.py);
#   - scripts/test-arm64.sh with EDGE_ARM64_EMULATE=0: the default install resolves from wheels
#     for manylinux aarch64 (CPython 3.11-3.13).
# Each of those skips with its reason where it cannot run. The run under arm64 emulation itself is
# longer and is .ci/run's (see there). Exit status: pytest's, else the first failing check's.
set -euo pipefail
cd "$(dirname "$0")/.."
packages="mosquitto python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad chromium chromium-driver"
missing=""
for package in $packages; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
done
if [ -n "$missing" ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get install -y --no-install-recommends $missing \
        || { $sudo_cmd apt-get update && $sudo_cmd apt-get install -y --no-install-recommends $missing; }
fi
scripts/setup.sh train,test
scripts/setup-homeassistant.sh

status=0
.venv/bin/python -m pytest "$@" || status=$?
scripts/test-py313.sh || { [ "$status" -ne 0 ] || status=$?; }
scripts/test-openvino.sh || { [ "$status" -ne 0 ] || status=$?; }
EDGE_ARM64_EMULATE=0 scripts/test-arm64.sh || { [ "$status" -ne 0 ] || status=$?; }
exit "$status"
