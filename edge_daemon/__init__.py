"""edge-daemon: face recognition for video streams on headless edge boxes."""

__version__ = "0.1.0"
