"""The review pages' form parsing: URL-encoded forms, and multipart/form-data with fields and files."""

from __future__ import annotations

import pytest

from edge_daemon.service.review.forms import FormError, Upload, parse_post

BOUNDARY = "----edge-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(*parts: tuple[str, str | None, bytes], close: bool = True) -> bytes:
    """A body as a browser sends it: (field name, file name or None, content) per part."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            body += b"Content-Type: image/jpeg\r\n"
        body += b"\r\n" + data + b"\r\n"
    return body + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


def test_url_encoded_form_and_query():
    request = parse_post("/review/people/rename?x=1", "application/x-www-form-urlencoded", b"csrf=abc&name=Ada+L")
    assert (request.path, request.query, request.form, request.uploads) == ("/review/people/rename", {"x": "1"},
                                                                           {"csrf": "abc", "name": "Ada L"}, {})


def test_multipart_fields_and_several_files():
    binary = bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n\r\n"
    body = multipart(
        ("csrf", None, b"token"),
        ("name", None, "Zoë O'Brien".encode()),
        ("photos", "first.jpg", binary),
        ("photos", "zweite Aufnahme.png", b"\x89PNG\r\n\x1a\n"),
        ("photos", "", b""),  # a file input left empty
    )
    request = parse_post("/review/people/add", CONTENT_TYPE, body)
    assert request.form == {"csrf": "token", "name": "Zoë O'Brien"}
    assert request.uploads == {"photos": [Upload("first.jpg", binary), Upload("zweite Aufnahme.png", b"\x89PNG\r\n\x1a\n")]}


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("multipart/form-data", multipart(("csrf", None, b"x")), "not valid multipart"),  # no boundary
        (CONTENT_TYPE, b"just some bytes", "not valid multipart"),
        (CONTENT_TYPE, multipart(("photos", "a.jpg", b"\xff\xd8"), close=False), "not valid multipart"),  # cut short
        (CONTENT_TYPE, f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(), "no form-data name"),
        (CONTENT_TYPE, multipart(("name", None, b"\xff\xfe not utf-8")), "not valid text"),
        ("multipart/form-data; boundary=é", b"", "not plain ASCII"),
        ("text/plain", b"csrf=x", "not accepted"),
    ],
)
def test_malformed_forms_are_refused_with_a_reason(content_type, body, reason):
    with pytest.raises(FormError, match=reason):
        parse_post("/review/people/add", content_type, body)
