"""Where the daemon keeps its state by default: systemd's directories when it runs as a service, the
user's XDG directories otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def state_directory() -> Path:
    """systemd's StateDirectory when it is set, else the user's state directory."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "edge-daemon"
