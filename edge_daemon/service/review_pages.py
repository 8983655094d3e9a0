"""The review page: recent faces, unknown faces grouped by person, enrol a group, "not this person".

Served on the daemon's HTTP port under ``/review`` when ``review.enabled``; server-rendered HTML,
no scripts, no external assets. Access needs the token in ``review.token_file``: the first visit
is ``/review?token=…``, which sets an HttpOnly, SameSite=Strict cookie (the token is compared in
constant time, a request without it gets 401). Every form carries a CSRF token derived from the
access token and a secret made at start-up; a POST without it gets 403. Each action is logged with
what it changed.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from edge_daemon.history import FaceHistory, HistoryGroups
from edge_daemon.logs import get_logger
from edge_daemon.messages import utc_iso
from edge_daemon.recognition.enrolment import enrolment_from_history
from edge_daemon.recognition.gallery import Gallery, locked, validate_identity

log = get_logger(__name__)

COOKIE = "edge_review"
RECENT_FACES = 24
SHOWN_GROUPS = 60  # the largest; a busy day has thousands of small ones
UNKNOWN_WINDOW_S = 24 * 3600


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ReviewContext:
    """What the pages work with: the daemon's history and groups, its gallery on disk and how to
    make the running daemon take a changed gallery."""

    history: FaceHistory | None  # None: it could not be opened (the pages answer 503)
    groups: HistoryGroups | None  # None: tracks are not grouped (no groups are listed)
    gallery_path: Path | None  # gallery.path; None: nothing can be enrolled
    embedder_version: str  # only faces embedded by this version can be enrolled
    reload_gallery: Callable[[], None]  # after the pages changed the gallery on disk


class ReviewPages:
    def __init__(self, context: ReviewContext, token_file: Path):
        self._context = context
        self._token = Path(token_file).read_text(encoding="utf-8").strip()
        if len(self._token) < 16:
            raise ValueError(f"review.token_file {token_file}: the token must be at least 16 characters")
        self._csrf = hmac.new(secrets.token_bytes(32), self._token.encode(), hashlib.sha256).hexdigest()

    # --- access ---------------------------------------------------------------------------

    def _authorised(self, headers) -> bool:
        cookie = SimpleCookie(headers.get("Cookie", ""))
        offered = cookie[COOKIE].value if COOKIE in cookie else ""
        return hmac.compare_digest(offered.encode(), self._token.encode())

    def get(self, target: str, headers) -> Response:
        url = urlsplit(target)
        offered = parse_qs(url.query).get("token", [""])[0]
        if url.path == "/review" and offered:
            if not hmac.compare_digest(offered.encode(), self._token.encode()):
                return _denied(401)
            cookie = f"{COOKIE}={self._token}; HttpOnly; SameSite=Strict; Path=/review"
            return Response(303, b"", headers=(("Location", "/review"), ("Set-Cookie", cookie)))
        if not self._authorised(headers):
            return _denied(401)
        if self._context.history is None:
            return _unavailable()
        if url.path == "/review":
            message = parse_qs(url.query).get("done", [""])[0]
            return Response(200, self._page(message).encode())
        if url.path.startswith("/review/crop/"):
            return self._crop(url.path.removeprefix("/review/crop/"))
        return Response(404, b"not found\n", "text/plain")

    def post(self, target: str, headers, body: bytes) -> Response:
        if not self._authorised(headers):
            return _denied(401)
        if self._context.history is None:
            return _unavailable()
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
        if not hmac.compare_digest(form.get("csrf", "").encode(), self._csrf.encode()):
            log.warning("review form without a valid CSRF token refused", path=target)
            return _denied(403)
        try:
            if urlsplit(target).path == "/review/enrol":
                done = self._enrol(form)
            elif urlsplit(target).path == "/review/reject":
                done = self._reject(form)
            else:
                return Response(404, b"not found\n", "text/plain")
        except (ValueError, KeyError) as exc:
            return Response(400, _document("Not done", f"<p>{html.escape(str(exc))}</p><p><a href='/review'>Back</a></p>").encode())
        return Response(303, b"", headers=(("Location", f"/review?done={done}"),))

    # --- actions --------------------------------------------------------------------------

    def _gallery_path(self) -> Path:
        path = self._context.gallery_path
        if path is None:
            raise ValueError("no gallery configured (gallery.path)")
        return Path(path)

    def _enrol(self, form: dict) -> str:
        name = validate_identity(form["name"])
        history = self._context.history
        rows = [history.face(int(face_id)) for face_id in form["faces"].split(",") if face_id]
        rows = [row for row in rows if row is not None and row.embedder_version == self._context.embedder_version]
        if not rows:
            raise ValueError("none of these faces can be enrolled with this embedder")
        enrolment = enrolment_from_history(rows)
        if not enrolment.vectors:
            raise ValueError("the crops of these faces are gone")
        path = self._gallery_path()
        with locked(path):
            gallery = Gallery.load(path)
            gallery.add(name, enrolment.matrix(gallery.dim), enrolment.sources, enrolment.faces)
            gallery.save(path)
        history.mark_enrolled([row.face_id for row in rows], name)
        self._context.reload_gallery()
        log.info("review: faces enrolled", identity=name, faces=[row.face_id for row in rows], gallery=gallery.version)
        return "enrolled"

    def _reject(self, form: dict) -> str:
        row = self._context.history.face(int(form["face"]))
        if row is None or row.identity is None:
            raise ValueError("that face was not recognised as anyone")
        path = self._gallery_path()
        with locked(path):
            gallery = Gallery.load(path)
            gallery.reject(row.identity, row.embedding, f"history:{row.face_id}")
            gallery.save(path)
        self._context.reload_gallery()
        log.info("review: not this person", identity=row.identity, face=row.face_id, gallery=gallery.version)
        return "rejected"

    # --- pages ----------------------------------------------------------------------------

    def _crop(self, name: str) -> Response:
        if not name.isdigit():
            return Response(404, b"not found\n", "text/plain")
        row = self._context.history.face(int(name))
        try:
            data = row.crop_path.read_bytes() if row else None
        except OSError:
            data = None
        if data is None:
            return Response(404, b"not found\n", "text/plain")
        return Response(200, data, "image/jpeg", (("Cache-Control", "private, max-age=3600"),))

    def _page(self, message: str) -> str:
        history = self._context.history
        recent = history.faces(limit=RECENT_FACES)
        groups = self._context.groups
        since = time.time() - UNKNOWN_WINDOW_S
        shown = groups.listing(since, min_faces=2, limit=SHOWN_GROUPS) if groups is not None else []
        notice = f"<p class='notice'>Done: {html.escape(message)}.</p>" if message else ""
        groups = "".join(self._cluster_html(cluster) for cluster in shown) or "<p>No groups of unknown faces.</p>"
        if len(shown) == SHOWN_GROUPS:
            groups += f"<p>The {SHOWN_GROUPS} largest groups; <code>edge-daemon unknowns</code> lists them all.</p>"
        faces = "".join(self._face_html(row) for row in recent) or "<p>No faces yet.</p>"
        body = (
            f"{notice}<h2>Unknown people, last 24 h</h2>{groups}"
            f"<h2>Recent faces</h2><div class='faces'>{faces}</div>"
        )
        return _document("edge-daemon review", body)

    def _cluster_html(self, cluster) -> str:
        crops = "".join(f"<img src='/review/crop/{face_id}' alt='face {face_id}'>" for face_id in cluster.face_ids[:8])
        faces = ",".join(str(face_id) for face_id in cluster.face_ids)
        return (
            f"<section class='cluster' id='cluster-{cluster.cluster_id}'><h3>Group {cluster.cluster_id}: {cluster.size} faces "
            f"in {cluster.tracks} track{'s' if cluster.tracks != 1 else ''}, "
            f"{html.escape(', '.join(cluster.cameras))}, {utc_iso(cluster.first_seen)} to {utc_iso(cluster.last_seen)}</h3>"
            f"<div class='faces'>{crops}</div>"
            f"<form method='post' action='/review/enrol'><input type='hidden' name='csrf' value='{self._csrf}'>"
            f"<input type='hidden' name='faces' value='{faces}'>"
            f"<label>Name <input name='name' required maxlength='128'></label> <button type='submit'>Enrol</button></form>"
            f"</section>"
        )

    def _face_html(self, row) -> str:
        who = html.escape(row.identity) if row.identity else "unknown"
        action = ""
        if row.identity:
            action = (
                f"<form method='post' action='/review/reject'><input type='hidden' name='csrf' value='{self._csrf}'>"
                f"<input type='hidden' name='face' value='{row.face_id}'><button type='submit'>Not this person</button></form>"
            )
        return (
            f"<figure><img src='/review/crop/{row.face_id}' alt='face {row.face_id}'><figcaption>{who} "
            f"{row.score:.2f}<br>{html.escape(row.camera)} {utc_iso(row.ts)}</figcaption>{action}</figure>"
        )


def _denied(status: int) -> Response:
    text = "a valid review token is needed" if status == 401 else "the form's CSRF token is missing or wrong"
    return Response(status, _document("Refused", f"<p>{text}</p>").encode())


def _unavailable() -> Response:
    return Response(503, _document("Unavailable", "<p>the face history could not be opened: see the daemon's log</p>").encode())


def _document(title: str, body: str) -> str:
    style = (
        "body{font-family:sans-serif;margin:1.5em}img{width:96px;height:96px;object-fit:cover;margin:2px}"
        "figure{display:inline-block;margin:4px;text-align:center;font-size:12px}.faces{display:flex;flex-wrap:wrap}"
        ".cluster{border:1px solid #ccc;padding:8px;margin:8px 0}.notice{background:#efe;padding:6px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
