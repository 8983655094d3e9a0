"""What every section shares: the base class, the pattern names are held to, and the error a bad
configuration raises."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# Camera and box names end up in MQTT topics, Home Assistant unique ids and event fields.
CAMERA_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
BOX_NAME_PATTERN = CAMERA_NAME_PATTERN


class Section(BaseModel):
    """A table of the configuration; it refuses keys it does not know, so a misspelt option is an
    error and not a line silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ConfigError(Exception):
    """Invalid configuration; the message lists every bad field with its path and reason."""
