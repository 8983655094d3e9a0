"""Fixtures every tier shares: the real models and a gallery enrolled with them; the real servers'
fixtures (mosquitto, the RTSP server, Home Assistant core) come from their support modules. Each
test is marked by its tier's folder (unit, integration, system), so ``pytest -m unit`` runs the
fast tier alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import HAMILTON, need

# fixtures of the real servers, and those that one topic's tests in several tiers share
pytest_plugins = [
    "tests.support.broker",
    "tests.support.rtsp",
    "tests.support.ha_core",
    "tests.support.convert_mobilefacenet",
    "tests.support.scene_motion",
]

TIERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = next((part for part in Path(str(item.path)).parts if part in TIERS), None)
        if tier is not None:
            item.add_marker(tier)


@pytest.fixture(scope="session")
def default_detector():
    """The default detector configuration (``yunet``), in this process."""
    from edge_daemon.config import DetectorConfig
    from edge_daemon.detectors import create_detector

    return create_detector(DetectorConfig(), separate_process=False)


@pytest.fixture(scope="session")
def yuface_detector():
    """libfacedetection's own code (the ``yuface`` wheel: x86_64, CPython 3.10-3.11), in this process."""
    pytest.importorskip("yuface", reason="yuface has wheels for x86_64 CPython 3.10-3.11 only")
    from edge_daemon.config import DetectorConfig
    from edge_daemon.detectors import create_detector

    return create_detector(DetectorConfig(backend="yuface"), separate_process=False)


@pytest.fixture(scope="session")
def default_embedder():
    """The default embedder configuration, in this process."""
    from edge_daemon.config import EmbedderConfig
    from edge_daemon.embedders import create_embedder

    return create_embedder(EmbedderConfig(), separate_process=False)


@pytest.fixture(scope="session")
def hamilton_gallery(tmp_path_factory, default_detector, default_embedder) -> Path:
    """The Hamilton gallery enrolled with the default detector and embedder."""
    from edge_daemon.api import build_gallery

    gallery, _ = build_gallery(need(HAMILTON / "gallery"), default_detector, default_embedder)
    path = tmp_path_factory.mktemp("hamilton") / "gallery"
    gallery.save(path)
    return path
