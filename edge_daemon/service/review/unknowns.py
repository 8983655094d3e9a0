"""The first review page, ``/review``: recent faces, unknown faces grouped by person, enrol a
group, "not this person". Each action is logged with what it changed."""

from __future__ import annotations

import html
import time

from edge_daemon.messages import utc_iso
from edge_daemon.recognition.gallery import validate_identity
from edge_daemon.service.review.access import Access
from edge_daemon.service.review.changes import change_gallery, enrol_history_faces
from edge_daemon.service.review.context import ReviewContext
from edge_daemon.service.review.forms import Request
from edge_daemon.service.review.layout import Response, not_found, page, redirect

RECENT_FACES = 24
SHOWN_GROUPS = 60  # the largest; a busy day has thousands of small ones
UNKNOWN_WINDOW_S = 24 * 3600


def crop_response(context: ReviewContext, face_id: str) -> Response:
    """A history face's crop (JPEG) by its id; 404 for anything else."""
    if not face_id.isdigit():
        return not_found()
    row = context.history.face(int(face_id))
    try:
        data = row.crop_path.read_bytes() if row else None
    except OSError:
        data = None
    if data is None:
        return not_found()
    return Response(200, data, "image/jpeg", (("Cache-Control", "private, max-age=3600"),))


class UnknownFacesPage:
    needs_history = True

    def __init__(self, context: ReviewContext, access: Access):
        self._context = context
        self._access = access

    def get_routes(self):
        return {"/review": self._page, "/review/crop/": self._crop}

    def post_routes(self):
        return {"/review/enrol": self._enrol, "/review/reject": self._reject}

    # --- actions --------------------------------------------------------------------------

    def _enrol(self, request: Request) -> Response:
        form = request.form
        name = validate_identity(form["name"])
        history = self._context.history
        rows = [history.face(int(face_id)) for face_id in form["faces"].split(",") if face_id.strip().isdigit()]
        rows = [row for row in rows if row is not None and row.embedder_version == self._context.embedder_version]
        if not rows:
            raise ValueError("none of these faces can be enrolled with this embedder")
        enrol_history_faces(
            self._context, name, rows, "the crops of these faces are gone", "faces enrolled",
            faces=[row.face_id for row in rows],
        )
        return redirect("/review?done=enrolled")

    def _reject(self, request: Request) -> Response:
        face = request.form["face"]
        row = self._context.history.face(int(face)) if face.isdigit() else None
        if row is None or row.identity is None:
            raise ValueError("that face was not recognised as anyone")
        change_gallery(
            self._context,
            lambda gallery: gallery.reject(row.identity, row.embedding, f"history:{row.face_id}"),
            "not this person", identity=row.identity, face=row.face_id,
        )
        back = request.form.get("back", "/review")
        back = back if back.startswith("/review") else "/review"  # never a redirect to elsewhere
        return redirect(f"{back}{'&' if '?' in back else '?'}done=rejected")

    # --- pages ----------------------------------------------------------------------------

    def _crop(self, request: Request) -> Response:
        return crop_response(self._context, request.path.removeprefix("/review/crop/"))

    def _page(self, request: Request) -> Response:
        message = request.query.get("done", "")
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
        return page("edge-daemon review", body, "/review")

    def _cluster_html(self, cluster) -> str:
        crops = "".join(f"<img src='/review/crop/{face_id}' alt='face {face_id}'>" for face_id in cluster.face_ids[:8])
        faces = ",".join(str(face_id) for face_id in cluster.face_ids)
        return (
            f"<section class='cluster' id='cluster-{cluster.cluster_id}'><h3>Group {cluster.cluster_id}: {cluster.size} faces "
            f"in {cluster.tracks} track{'s' if cluster.tracks != 1 else ''}, "
            f"{html.escape(', '.join(cluster.cameras))}, {utc_iso(cluster.first_seen)} to {utc_iso(cluster.last_seen)}</h3>"
            f"<div class='faces'>{crops}</div>"
            f"<form method='post' action='/review/enrol'>{self._access.csrf_field()}"
            f"<input type='hidden' name='faces' value='{faces}'>"
            f"<label>Name <input name='name' required maxlength='128'></label> <button type='submit'>Enrol</button></form>"
            f"</section>"
        )

    def _face_html(self, row) -> str:
        who = html.escape(row.identity) if row.identity else "unknown"
        action = ""
        if row.identity:
            action = (
                f"<form method='post' action='/review/reject'>{self._access.csrf_field()}"
                f"<input type='hidden' name='face' value='{row.face_id}'><button type='submit'>Not this person</button></form>"
            )
        return (
            f"<figure><img src='/review/crop/{row.face_id}' alt='face {row.face_id}'><figcaption>{who} "
            f"{row.score:.2f}<br>{html.escape(row.camera)} {utc_iso(row.ts)}</figcaption>{action}</figure>"
        )
