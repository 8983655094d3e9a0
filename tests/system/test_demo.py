"""The demo as the README promises it, with the default embedder, on registry-shipped photos only."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.slow


def test_demo_recognises_both_enrolled_people_and_one_unknown(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "edge_daemon.cli", "demo", "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    decided = Counter((e["type"], e["identity"]) for e in events if e["type"] in ("recognized", "unknown", "updated"))
    assert decided[("recognized", "grace_hopper")] == 1 and decided[("recognized", "eileen_collins")] == 1, decided
    assert decided[("unknown", None)] == 1, decided
    assert sum(e["type"] == "ended" for e in events) == 3
    assert all(e["embedder"] == "fused" for e in events)
