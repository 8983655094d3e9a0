"""What every review page shares: the response type, the HTML document around a page's body (its
style and the navigation between the pages), and the standard refusals."""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


# (path, label): the pages a person moves between; each page module serves its own path.
NAVIGATION = (
    ("/review", "Unknown faces"),
    ("/review/people", "People"),
    ("/review/decisions", "Recent decisions"),
    ("/review/cameras", "Cameras"),
)

STYLE = (
    "body{font-family:sans-serif;margin:1em;max-width:72em}img{width:96px;height:96px;object-fit:cover;margin:2px}"
    "figure{display:inline-block;margin:4px;text-align:center;font-size:12px}.faces{display:flex;flex-wrap:wrap}"
    ".cluster{border:1px solid #ccc;padding:8px;margin:8px 0}.notice{background:#efe;padding:6px}"
    ".problem{background:#fee;padding:6px}nav a{margin-right:1em}nav{margin-bottom:1em}"
    "table{border-collapse:collapse}td,th{padding:2px 6px;text-align:left;vertical-align:top}"
    "a:focus,button:focus,input:focus,select:focus{outline:2px solid #06c}"
)


def document(title: str, body: str, current: str | None = None) -> str:
    """A whole page: ``body`` (HTML, already escaped) under ``title``, with the navigation;
    ``current`` is the path of the page shown (marked for screen readers)."""
    links = " ".join(
        f"<a href='{path}'{' aria-current=page' if path == current else ''}>{html.escape(label)}</a>"
        for path, label in NAVIGATION
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><nav aria-label='pages'>{links}</nav><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def page(title: str, body: str, current: str | None = None, status: int = 200) -> Response:
    return Response(status, document(title, body, current).encode())


def redirect(location: str) -> Response:
    return Response(303, b"", headers=(("Location", location),))


def not_found() -> Response:
    return Response(404, b"not found\n", "text/plain")


def refused(reason: str, back: str = "/review", status: int = 400) -> Response:
    """A request the page could not carry out, with the reason, a way back, and nothing changed."""
    back = back if back.startswith("/review") else "/review"  # never a link to elsewhere
    body = f"<p class='problem'>{html.escape(reason)}</p><p><a href='{html.escape(back, quote=True)}'>Back</a></p>"
    return page("Not done", body, status=status)


def denied(status: int) -> Response:
    text = "a valid review token is needed" if status == 401 else "the form's CSRF token is missing or wrong"
    return page("Refused", f"<p>{text}</p>", status=status)


def unavailable() -> Response:
    return page("Unavailable", "<p>the face history could not be opened: see the daemon's log</p>", status=503)
