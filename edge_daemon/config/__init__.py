"""The one configuration tree: TOML file + ``EDGE_...`` environment overrides.

Every section is a pydantic model whose fields carry a title and description, so
``edge-daemon config schema`` documents itself. Each section has its own module, the root
``Settings`` is in ``settings``, reading and validating in ``loader``, the commented example in
``example``. Precedence, highest first: command-line flags, environment
(``EDGE_DETECTOR__BACKEND=yunet_onnx``), TOML file, defaults.
"""

from __future__ import annotations

from edge_daemon.config.base import ConfigError
from edge_daemon.config.cameras import CameraConfig
from edge_daemon.config.decisions import DecisionConfig
from edge_daemon.config.detector import DetectorConfig
from edge_daemon.config.embedder import EmbedderBackend, EmbedderConfig, FusionMember
from edge_daemon.config.events import EventsConfig
from edge_daemon.config.example import example_toml
from edge_daemon.config.gallery import GalleryConfig
from edge_daemon.config.history import HistoryConfig
from edge_daemon.config.loader import load_settings
from edge_daemon.config.logging import LoggingConfig
from edge_daemon.config.motion import MotionConfig
from edge_daemon.config.mqtt import MqttConfig
from edge_daemon.config.review import ReviewConfig
from edge_daemon.config.service import ServiceConfig
from edge_daemon.config.settings import Settings
from edge_daemon.config.spool import SpoolConfig
from edge_daemon.config.threads import ThreadsConfig
from edge_daemon.config.tracker import TrackerConfig

__all__ = [
    "CameraConfig",
    "ConfigError",
    "DecisionConfig",
    "DetectorConfig",
    "EmbedderBackend",
    "EmbedderConfig",
    "EventsConfig",
    "FusionMember",
    "GalleryConfig",
    "HistoryConfig",
    "LoggingConfig",
    "MotionConfig",
    "MqttConfig",
    "ReviewConfig",
    "ServiceConfig",
    "Settings",
    "SpoolConfig",
    "ThreadsConfig",
    "TrackerConfig",
    "example_toml",
    "load_settings",
]
