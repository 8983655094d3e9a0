"""Who may use the review pages: the token in ``review.token_file``, given once as
``/review?token=…`` and then carried by an HttpOnly, SameSite=Strict cookie (compared in constant
time), and a CSRF token in every form, derived from the access token and a secret made at start-up
(so it changes with each start and cannot be guessed from the page's address)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from edge_daemon.service.review.layout import Response, denied, redirect

COOKIE = "edge_review"


class Access:
    def __init__(self, token_file: Path):
        self._token = Path(token_file).read_text(encoding="utf-8").strip()
        if len(self._token) < 16:
            raise ValueError(f"review.token_file {token_file}: the token must be at least 16 characters")
        self.csrf = hmac.new(secrets.token_bytes(32), self._token.encode(), hashlib.sha256).hexdigest()

    def login(self, target: str) -> Response | None:
        """The answer to ``/review?token=…`` (the cookie set, or 401); None for any other request."""
        url = urlsplit(target)
        offered = parse_qs(url.query).get("token", [""])[0]
        if url.path != "/review" or not offered:
            return None
        if not hmac.compare_digest(offered.encode(), self._token.encode()):
            return denied(401)
        response = redirect("/review")
        cookie = f"{COOKIE}={self._token}; HttpOnly; SameSite=Strict; Path=/review"
        return Response(response.status, response.body, headers=(*response.headers, ("Set-Cookie", cookie)))

    def authorised(self, headers) -> bool:
        try:
            cookie = SimpleCookie(headers.get("Cookie", ""))
        except CookieError:
            return False
        offered = cookie[COOKIE].value if COOKIE in cookie else ""
        return hmac.compare_digest(offered.encode(), self._token.encode())

    def csrf_valid(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self.csrf.encode())

    def csrf_field(self) -> str:
        """The hidden input every form carries."""
        return f"<input type='hidden' name='csrf' value='{self.csrf}'>"
