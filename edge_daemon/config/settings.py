"""The root of the configuration tree: every section, the checks across sections, and where values
come from. Precedence, highest first: the arguments given to ``Settings`` (command-line flags), the
environment (``EDGE_DETECTOR__BACKEND=yunet_onnx``), the TOML file, the defaults."""

from __future__ import annotations

import contextvars
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from edge_daemon.config.cameras import CameraConfig
from edge_daemon.config.decisions import DecisionConfig
from edge_daemon.config.detector import DetectorConfig
from edge_daemon.config.embedder import EmbedderConfig
from edge_daemon.config.events import EventsConfig
from edge_daemon.config.gallery import GalleryConfig
from edge_daemon.config.history import HistoryConfig
from edge_daemon.config.logging import LoggingConfig
from edge_daemon.config.motion import MotionConfig
from edge_daemon.config.mqtt import MqttConfig
from edge_daemon.config.review import ReviewConfig
from edge_daemon.config.service import ServiceConfig
from edge_daemon.config.spool import SpoolConfig
from edge_daemon.config.threads import ThreadsConfig
from edge_daemon.config.tracker import TrackerConfig

# The TOML file the loader is reading. pydantic-settings asks the class, not the instance, for its
# sources, so the path reaches settings_customise_sources through here; a context variable keeps
# loads in different threads apart.
toml_file_to_read: contextvars.ContextVar[Path | None] = contextvars.ContextVar("toml_file", default=None)


class Settings(BaseSettings):
    """The daemon's whole configuration."""

    model_config = SettingsConfigDict(env_prefix="EDGE_", env_nested_delimiter="__", extra="forbid")

    cameras: list[CameraConfig] = Field(
        default_factory=list, title="Cameras", description="Streams to watch, one capture thread each."
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig, title="Face detection")
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig, title="Face embedding")
    gallery: GalleryConfig = Field(default_factory=GalleryConfig, title="Enrolled people")
    motion: MotionConfig = Field(default_factory=MotionConfig, title="Motion gating and regions")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, title="Tracking and decisions")
    decisions: DecisionConfig = Field(default_factory=DecisionConfig, title="Decisions (templates, verdicts)")
    events: EventsConfig = Field(default_factory=EventsConfig, title="Event outputs")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, title="MQTT")
    spool: SpoolConfig = Field(default_factory=SpoolConfig, title="Event spool (MQTT delivery)")
    history: HistoryConfig = Field(default_factory=HistoryConfig, title="Face history (review, unknowns, search)")
    review: ReviewConfig = Field(default_factory=ReviewConfig, title="Review page (needs a token)")
    service: ServiceConfig = Field(default_factory=ServiceConfig, title="Service (systemd, metrics, health)")
    threads: ThreadsConfig = Field(default_factory=ThreadsConfig, title="Threads (two cores are shared by every stage)")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, title="Logging")

    @model_validator(mode="after")
    def _review_needs(self) -> Settings:
        if self.review.enabled and (
            self.review.token_file is None or not self.service.metrics_port or not self.history.enabled
        ):
            raise ValueError("review.enabled needs review.token_file, service.metrics_port and history.enabled")
        return self

    @model_validator(mode="after")
    def _gallery_sync_needs(self) -> Settings:
        if self.gallery.sync == "mqtt" and (not self.mqtt.url or self.gallery.path is None):
            raise ValueError("gallery.sync = 'mqtt' needs mqtt.url and gallery.path (where revisions are kept)")
        return self

    @field_validator("cameras")
    @classmethod
    def _unique_camera_names(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        names = [camera.name for camera in cameras]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"camera names must be unique, repeated: {', '.join(duplicates)}")
        return cameras

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        toml_file = toml_file_to_read.get()
        if toml_file is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=toml_file),)
        return sources
