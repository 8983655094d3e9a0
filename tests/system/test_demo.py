"""The demo as the README promises it, with the default embedder, on registry-shipped photos only, and
with the int8 precision (scripts/test-openvino.sh runs it on OpenVINO)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_demo_recognises_both_enrolled_people_and_one_unknown(tmp_path, precision):
    result = subprocess.run(
        [sys.executable, "-m", "edge_daemon.cli", "demo", "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "EDGE_EMBEDDER__PRECISION": precision},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    decided = Counter((e["type"], e["identity"]) for e in events if e["type"] in ("recognized", "unknown", "updated"))
    assert decided[("recognized", "grace_hopper")] == 1 and decided[("recognized", "eileen_collins")] == 1, decided
    assert decided[("unknown", None)] == 1, decided
    assert sum(e["type"] == "ended" for e in events) == 3
    assert all(e["embedder"] == "fused" for e in events)
    assert all(("+int8" in e["embedder_version"]) == (precision == "int8") for e in events)
