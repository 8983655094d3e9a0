#!/usr/bin/env bash
# Install edge-daemon as a systemd service on this box (run as root from the repository root):
#   sudo deploy/install.sh
# Idempotent: re-running upgrades the code and keeps /etc/edge-daemon/config.toml and all state.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/opt/edge-daemon

if [ "$(id -u)" -ne 0 ]; then
    echo "run as root (sudo deploy/install.sh)" >&2
    exit 1
fi
python_bin="$(command -v python3.11 || true)"
if [ -z "$python_bin" ]; then
    echo "python3.11 is required (yuface ships cp311 wheels only)" >&2
    exit 1
fi

# A system user that may read video devices and nothing else of note.
if ! id edge-daemon >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/edge-daemon --no-create-home --shell /usr/sbin/nologin edge-daemon
fi
usermod -a -G video edge-daemon

# Code and its virtual environment, owned by root and readable by the service.
install -d -m 0755 "$prefix"
tar --exclude=.venv --exclude=.git --exclude=demo-out -cf - . | tar -xf - -C "$prefix"
[ -x "$prefix/.venv/bin/python" ] || "$python_bin" -m venv "$prefix/.venv"
"$prefix/.venv/bin/python" -m pip install --quiet --upgrade pip
# Editable, so that $prefix is a checkout: the code (with its model manifest, package data in
# edge_daemon/models/) stays in $prefix, read-only, and the service finds the converted models in
# $prefix/models. The demo extra holds the sample photos `models prepare` checks each model it
# converts on.
"$prefix/.venv/bin/python" -m pip install --quiet -e "$prefix[demo]"
# Convert and verify the face models into $prefix/models (a no-op when the checkout brought them;
# the MobileFaceNet source is fetched once with npm otherwise).
"$prefix/.venv/bin/edge-daemon" models prepare --cache "$prefix/models"

# Configuration: never overwritten once it exists.
install -d -m 0750 -g edge-daemon /etc/edge-daemon
if [ ! -f /etc/edge-daemon/config.toml ]; then
    install -m 0640 -g edge-daemon deploy/edge-daemon.example.toml /etc/edge-daemon/config.toml
    echo "wrote /etc/edge-daemon/config.toml: add your cameras, then start the service"
fi

install -m 0644 systemd/edge-daemon.service /etc/systemd/system/edge-daemon.service
systemctl daemon-reload
echo "installed. Next:"
echo "  edit /etc/edge-daemon/config.toml (cameras, gallery.path = \"/var/lib/edge-daemon/gallery\", mqtt.url)"
echo "  sudo -u edge-daemon $prefix/.venv/bin/edge-daemon gallery build PHOTOS --out /var/lib/edge-daemon/gallery"
echo "  systemctl enable --now edge-daemon && journalctl -u edge-daemon -f"
