#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Installs mosquitto from apt when it is missing:
# the MQTT tests start a real broker on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get install -y --no-install-recommends mosquitto \
        || { $sudo_cmd apt-get update && $sudo_cmd apt-get install -y --no-install-recommends mosquitto; }
fi
scripts/setup.sh train,test
exec .venv/bin/python -m pytest "$@"
