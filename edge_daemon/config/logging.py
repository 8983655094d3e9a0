"""``[logging]``: log level and format."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge_daemon.config.base import Section


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = Field("info", title="Log level", description="Least severity logged.")
    format: Literal["auto", "json", "console"] = Field(
        "auto", title="Log format", description="'auto': readable on a terminal, JSON otherwise."
    )
