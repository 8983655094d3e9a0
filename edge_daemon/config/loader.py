"""Loading the configuration: the TOML file, the ``EDGE_<SECTION>__<OPTION>`` environment variables
and the caller's overrides, validated together; every problem becomes one ``ConfigError`` naming the
path of each bad field (``cameras.1.detect_fps``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from edge_daemon.config.base import ConfigError
from edge_daemon.config.settings import Settings, toml_file_to_read


def load_settings(path: Path | None = None, **overrides: object) -> Settings:
    """Read the TOML file (if any), apply ``EDGE_`` env vars and then ``overrides``; validate everything."""
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"config file not found: {path}")
    token = toml_file_to_read.set(Path(path) if path is not None else None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except ValueError as exc:  # TOML syntax errors and undecodable env values
        raise ConfigError(f"cannot read configuration: {exc}") from None
    finally:
        toml_file_to_read.reset(token)


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"{location}: {error['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
