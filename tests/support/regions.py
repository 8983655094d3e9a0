"""What the region tests of several tiers share: a full-HD frame and the default region settings."""

from __future__ import annotations

from edge_daemon.pipeline.regions import RegionSettings

FULL_HD = (1920, 1080)
SETTINGS = RegionSettings()
