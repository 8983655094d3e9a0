#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Installs from apt what the tests start for real when it
# is missing: mosquitto (MQTT broker) and GStreamer's RTSP server (camera tests), both on free
# loopback ports, and Chromium with its driver (the review page's browser test).
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
exec .venv/bin/python -m pytest "$@"
