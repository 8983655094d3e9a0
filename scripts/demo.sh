#!/usr/bin/env bash
# Set up (if needed) and run the demo: enrol two people, run the daemon on a synthesised clip,
# print one JSON event per line. No broker, no network, no shared data needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/edge-daemon demo --out demo-out "$@"
