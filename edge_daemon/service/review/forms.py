"""A request as the page modules see it: its path, query and form fields (URL-encoded, or
``multipart/form-data`` with uploaded files), parsed once by the router so that every POST's CSRF
token is checked in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


class FormError(ValueError):
    """A request body that cannot be read as a form; the message says why."""


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the name the browser gave it (never used as a path) and its bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, str]  # the first value of each query parameter
    form: dict[str, str] = field(default_factory=dict)  # the first value of each form field
    uploads: dict[str, list[Upload]] = field(default_factory=dict)  # file fields, every file given


def parse_get(target: str) -> Request:
    url = urlsplit(target)
    return Request(url.path, _first_values(url.query))


def parse_post(target: str, content_type: str, body: bytes) -> Request:
    url = urlsplit(target)
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in ("", "application/x-www-form-urlencoded"):
        return Request(url.path, _first_values(url.query), _first_values(body.decode("utf-8", "replace")))
    raise FormError(f"a form of type {media_type!r} is not accepted here")


def _first_values(encoded: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(encoded).items()}
