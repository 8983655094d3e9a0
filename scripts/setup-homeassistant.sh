#!/usr/bin/env bash
# Home Assistant core for tests/system/test_homeassistant.py, in its own virtual environment under Python 3.13.
# 2025.4.4 is the newest release that installs on 3.13.0 (2025.5 needs 3.13.2), the version these
# machines' pyenv has. The venv lives in the user's cache, outside the clone, so a fresh CI clone
# reuses it; tests/support/ha_core.py finds it by the same rule. Safe to re-run: a finished venv is
# kept, an unfinished one is made again. Without a Python 3.13 it says why and exits 0: the Home
# Assistant tests then skip with that reason.
set -euo pipefail
version="2025.4.4"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/edge-daemon/homeassistant-$version"

if [ -f "$venv/.complete" ]; then
    echo "home assistant $version: ready in $venv"
    exit 0
fi

python_bin=""
candidates=()
command -v pyenv >/dev/null && candidates+=("$(pyenv root)"/versions/3.13.*/bin/python3.13)
command -v python3.13 >/dev/null && candidates+=("$(command -v python3.13)")
for candidate in "${candidates[@]}"; do
    # A pyenv shim exists even when its version is not selected; only a 3.13 that runs counts.
    if [ -x "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
        python_bin="$candidate"
        break
    fi
done
if [ -z "$python_bin" ]; then
    echo "home assistant tests will skip: no Python 3.13 found (looked in pyenv and for python3.13 on PATH)"
    exit 0
fi

echo "home assistant $version: installing into $venv with $("$python_bin" --version)"
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python_bin" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "homeassistant==$version"

# HA installs an integration's requirements when it first sets it up; the tests start it offline
# with --skip-pip, so install now what it sets up there: its default integrations, MQTT and the
# entity platforms our discovery uses, with their dependencies, at the versions their manifests
# pin (home-assistant-frontend and paho-mqtt among them), held to HA's own constraints.
requirements="$("$venv/bin/python" - <<'EOF'
import json
from pathlib import Path

import homeassistant
from homeassistant import bootstrap

components = Path(homeassistant.__file__).parent / "components"
pending = bootstrap.CORE_INTEGRATIONS | bootstrap.DEFAULT_INTEGRATIONS | {"mqtt", "event", "sensor"}
seen, requirements = set(), set()
while pending:
    domain = pending.pop()
    seen.add(domain)
    manifest = json.loads((components / domain / "manifest.json").read_text())
    requirements.update(manifest.get("requirements", []))
    # hassio is set up under the Supervisor only.
    pending |= (set(manifest.get("dependencies", [])) | set(manifest.get("after_dependencies", []))) - seen - {"hassio"}
print("\n".join(sorted(requirements)))
EOF
)"
constraints="$("$venv/bin/python" -c 'import homeassistant, pathlib; print(pathlib.Path(homeassistant.__file__).parent / "package_constraints.txt")')"
# shellcheck disable=SC2086 # one requirement per word
"$venv/bin/python" -m pip install --quiet -c "$constraints" $requirements
"$venv/bin/hass" --version >/dev/null
touch "$venv/.complete"
echo "home assistant $version: ready in $venv"
