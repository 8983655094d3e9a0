"""``ReviewPages``: the router of the review pages under ``/review``. Every request but the login
needs the access cookie (401 without); every POST is parsed here and needs the form's CSRF token
(403 without), so no page can forget either. Each page module owns its paths: ``get_routes`` and
``post_routes`` map a path (or, ending in ``/``, a path prefix) to a handler taking a ``Request``.
A handler's ``ValueError`` is a refusal shown with its reason (400), nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge_daemon.logs import get_logger
from edge_daemon.service.review.access import Access
from edge_daemon.service.review.cameras import CamerasPage
from edge_daemon.service.review.context import ReviewContext
from edge_daemon.service.review.decisions import DecisionsPage
from edge_daemon.service.review.forms import FormError, Request, parse_get, parse_post
from edge_daemon.service.review.layout import Response, denied, not_found, refused, unavailable
from edge_daemon.service.review.people import PeoplePage
from edge_daemon.service.review.unknowns import UnknownFacesPage

log = get_logger(__name__)

Handler = Callable[[Request], Response]


class ReviewPages:
    def __init__(self, context: ReviewContext, token_file: Path):
        self._context = context
        self._access = Access(token_file)
        self._pages = [
            UnknownFacesPage(context, self._access),
            PeoplePage(context, self._access),
            CamerasPage(context),
            DecisionsPage(context, self._access),
        ]

    def get(self, target: str, headers) -> Response:
        login = self._access.login(target)
        if login is not None:
            return login
        if not self._access.authorised(headers):
            return denied(401)
        request = parse_get(target)
        handler = self._handler(request.path, "get_routes")
        return handler if isinstance(handler, Response) else handler(request)

    def authorised(self, headers) -> bool:
        """Whether the request carries the access cookie (the HTTP server asks before it reads an upload)."""
        return self._access.authorised(headers)

    def post(self, target: str, headers, body: bytes) -> Response:
        if not self._access.authorised(headers):
            return denied(401)
        try:
            request = parse_post(target, headers.get("Content-Type", ""), body)
        except FormError as exc:
            return refused(str(exc))
        if not self._access.csrf_valid(request.form.get("csrf", "")):
            log.warning("review form without a valid CSRF token refused", path=request.path)
            return denied(403)
        handler = self._handler(request.path, "post_routes")
        if isinstance(handler, Response):
            return handler
        try:
            return handler(request)
        except (ValueError, KeyError) as exc:
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            log.info("review request refused", path=request.path, reason=reason)
            return refused(reason, back=request.form.get("back", "/review"))

    def _handler(self, path: str, table: str) -> Handler | Response:
        """The handler of ``path`` in each page's ``table`` (``get_routes`` or ``post_routes``), or
        the answer when there is none: 404, or 503 for a page that needs the history without one."""
        for page in self._pages:
            for route, handler in getattr(page, table)().items():
                if path == route or (route.endswith("/") and path.startswith(route)):
                    if page.needs_history and self._context.history is None:
                        return unavailable()
                    return handler
        return not_found()
