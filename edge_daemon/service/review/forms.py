"""A request as the page modules see it: its path, query and form fields (URL-encoded, or
``multipart/form-data`` with uploaded files), parsed once by the router so that every POST's CSRF
token is checked in one place."""

from __future__ import annotations

import email.policy
from dataclasses import dataclass, field
from email.parser import BytesParser
from urllib.parse import parse_qs, urlsplit

MULTIPART = "multipart/form-data"


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
    if media_type == MULTIPART:
        form, uploads = _multipart(content_type, body)
        return Request(url.path, _first_values(url.query), form, uploads)
    raise FormError(f"a form of type {media_type!r} is not accepted here")


def _first_values(encoded: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(encoded).items()}


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, list[Upload]]]:
    """The fields (first value of each) and the files of a ``multipart/form-data`` body. The
    standard library's MIME parser reads it, given the request's Content-Type as its header; any
    defect it reports (no boundary, a part cut short) refuses the whole form."""
    try:
        header = f"Content-Type: {content_type}\r\n\r\n".encode("ascii")
    except UnicodeEncodeError:
        raise FormError("the form's Content-Type is not plain ASCII") from None
    message = BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if message.defects or not message.is_multipart():
        raise FormError(f"the form's body is not valid multipart/form-data ({_defects(message) or 'no parts'})")
    form: dict[str, str] = {}
    uploads: dict[str, list[Upload]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.defects or part.get_content_disposition() != "form-data" or not name:
            raise FormError(f"a part of the form has no form-data name ({_defects(part) or 'no Content-Disposition'})")
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            if filename or data:  # a file input left empty sends a nameless, empty part
                uploads.setdefault(name, []).append(Upload(filename, data))
        else:
            try:
                form.setdefault(name, data.decode(part.get_content_charset() or "utf-8"))
            except (UnicodeDecodeError, LookupError):
                raise FormError(f"form field {name!r} is not valid text") from None
    return form, uploads


def _defects(part) -> str:
    return ", ".join(type(defect).__name__ for defect in part.defects)
