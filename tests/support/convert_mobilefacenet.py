"""What the MobileFaceNet converter tests of several tiers share: the npm sources as shipped and repaired."""

from __future__ import annotations

import pytest

from edge_daemon.models.prepare.converters.tfjs_graph import read_tfjs_graph, repair_mobilefacenet
from tests.support.paths import ROOT

SOURCES = ROOT / "models" / "sources" / "mobilefacenet"
MODEL_JSON = SOURCES / "mobilefacenet.json"


@pytest.fixture(scope="module")
def shipped():
    if not MODEL_JSON.exists():
        pytest.skip(f"MobileFaceNet sources not found in {SOURCES} (the setup script puts them there)")
    return read_tfjs_graph(MODEL_JSON)


@pytest.fixture(scope="module")
def repaired(shipped):
    return repair_mobilefacenet(shipped)
