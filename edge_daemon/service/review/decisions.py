"""``/review/decisions``: the latest decisions (the face behind each, newest first), filtered by
camera, person and verdict; on each, "not this person" (``/review/reject``) and "this is …", which
adds the face to a person (confirming or correcting the decision). ``Reprocess`` decides the
history's recent unnamed tracks again against the gallery in use (``history.reprocess``, also run
after every gallery change the pages make); ``/review/decisions/revised`` lists what it changed.
Nothing here sends an event."""

from __future__ import annotations

import html
from typing import get_args
from urllib.parse import urlencode

from edge_daemon.history import DecisionRow, RevisedTrack
from edge_daemon.history.reprocess import REPROCESS_WINDOW_S
from edge_daemon.messages import Verdict, utc_iso
from edge_daemon.recognition.gallery import validate_identity
from edge_daemon.service.review.access import Access
from edge_daemon.service.review.changes import enrol_history_faces
from edge_daemon.service.review.context import ReviewContext
from edge_daemon.service.review.forms import Request
from edge_daemon.service.review.layout import Response, page, redirect, refused

PATH = "/review/decisions"
REVISED_PATH = "/review/decisions/revised"
SHOWN_DECISIONS = 100
SHOWN_REVISIONS = 100
VERDICTS = get_args(Verdict)
FILTERS = ("camera", "person", "verdict")
DONE = {"named": "the face was added to the person"}
WINDOW = f"{REPROCESS_WINDOW_S / 3600:g} h"


class DecisionsPage:
    needs_history = True

    def __init__(self, context: ReviewContext, access: Access):
        self._context = context
        self._access = access

    def get_routes(self):
        return {PATH: self._page, REVISED_PATH: self._revised_page}

    def post_routes(self):
        return {f"{PATH}/name": self._name, f"{PATH}/reprocess": self._reprocess}

    # --- what a request asks for ------------------------------------------------------------

    def _filters(self, fields: dict[str, str]) -> dict[str, str]:
        """The filters given (empty ones left out), each checked; ``ValueError`` says which is wrong."""
        filters = {name: fields[name] for name in FILTERS if fields.get(name)}
        if "camera" in filters and filters["camera"] not in self._context.cameras:
            raise ValueError(f"there is no camera {filters['camera']!r}")
        if "person" in filters:
            filters["person"] = validate_identity(filters["person"])
        if "verdict" in filters and filters["verdict"] not in VERDICTS:
            raise ValueError(f"the verdict must be one of {', '.join(VERDICTS)}")
        return filters

    def _people(self) -> list[str]:
        matcher = self._context.matcher
        gallery = matcher.gallery if matcher is not None else None
        return list(gallery.identities()) if gallery is not None else []

    # --- actions --------------------------------------------------------------------------

    def _name(self, request: Request) -> Response:
        """The "this is …" form: the face's stored embedding and crop added to the person named."""
        form = request.form
        filters = self._filters(form)
        name = validate_identity(form["name"])
        face = form["face"]
        row = self._context.history.face(int(face)) if face.isdigit() else None
        if row is None:
            raise ValueError(f"there is no face {face!r} in the history")
        if row.embedder_version != self._context.embedder_version:
            raise ValueError(f"face {row.face_id} was embedded by another embedder version ({row.embedder_version})")
        if row.enrolled_as is not None:
            raise ValueError(f"face {row.face_id} is already enrolled as {row.enrolled_as}")
        enrol_history_faces(
            self._context, name, [row], f"the crop of face {row.face_id} is gone", "face named from the decisions",
            face=row.face_id, decided_as=row.identity,
        )
        return redirect(_listing(filters, done="named"))

    def _reprocess(self, request: Request) -> Response:
        if self._context.reprocess is None:
            raise ValueError("the history cannot be reprocessed here")
        result = self._context.reprocess()
        return redirect(f"{REVISED_PATH}?{urlencode({'checked': result.checked, 'changed': len(result.changed)})}")

    # --- pages ----------------------------------------------------------------------------

    def _page(self, request: Request) -> Response:
        try:
            filters = self._filters(request.query)
            done = request.query.get("done")
            if done is not None and done not in DONE:
                raise ValueError(f"unknown outcome {done!r}")
        except ValueError as exc:
            return refused(str(exc), back=PATH)
        people = self._people()
        rows = self._context.history.decisions(**filters, limit=SHOWN_DECISIONS)
        notice = f"<p class='notice' role='status'>Done: {DONE[done]}.</p>" if done else ""
        listing = (
            f"<table><caption>The latest {SHOWN_DECISIONS} decisions at most, newest first</caption>"
            "<thead><tr><th scope='col'>Face</th><th scope='col'>Decision</th><th scope='col'>Quality</th>"
            "<th scope='col'>Camera and time</th><th scope='col'>Correct it</th></tr></thead>"
            f"<tbody>{''.join(self._row_html(row, filters) for row in rows)}</tbody></table>"
            if rows else "<p>No decisions match.</p>"
        )
        body = (
            f"{notice}<h2>Reprocess</h2><p>Decide the unknown and uncertain tracks of the last {WINDOW} again "
            "against the gallery in use (done after every change made on these pages too). What was decided and "
            "sent at the time stays; no event is sent again.</p>"
            f"<form method='post' action='{PATH}/reprocess'>{self._access.csrf_field()}"
            "<button type='submit'>Reprocess</button></form>"
            f"<p><a href='{REVISED_PATH}'>Decisions revised by reprocessing</a></p>"
            f"<h2>Latest decisions</h2>{self._filter_form(filters, people)}{_datalist(people)}"
            f"<div style='overflow-x:auto'>{listing}</div>"
        )
        return page("Recent decisions", body, PATH)

    def _revised_page(self, request: Request) -> Response:
        counts = {key: request.query[key] for key in ("checked", "changed") if key in request.query}
        if not all(value.isdigit() for value in counts.values()):
            return refused("the counts of a reprocessing are whole numbers", back=REVISED_PATH)
        notice = ""
        if len(counts) == 2:
            notice = (
                f"<p class='notice' role='status'>Reprocessed the unknown and uncertain tracks of the last {WINDOW}: "
                f"{int(counts['checked'])} decided again, {int(counts['changed'])} changed.</p>"
            )
        rows = self._context.history.revised_tracks(SHOWN_REVISIONS)
        listing = (
            f"<table><caption>The latest {SHOWN_REVISIONS} revisions at most, newest first</caption>"
            "<thead><tr><th scope='col'>Face</th><th scope='col'>Track</th><th scope='col'>Seen</th>"
            "<th scope='col'>Then</th><th scope='col'>Now</th><th scope='col'>Revised</th></tr></thead>"
            f"<tbody>{''.join(_revised_html(row) for row in rows)}</tbody></table>"
            if rows else "<p>No decision has been revised yet.</p>"
        )
        body = f"{notice}<div style='overflow-x:auto'>{listing}</div><p><a href='{PATH}'>Recent decisions</a></p>"
        return page("Revised decisions", body, PATH)

    def _filter_form(self, filters: dict[str, str], people: list[str]) -> str:
        cameras = _select("camera", "Camera", "any camera", self._context.cameras, filters.get("camera"))
        person = _select("person", "Person", "anyone", people, filters.get("person"))
        verdict = _select("verdict", "Verdict", "any verdict", VERDICTS, filters.get("verdict"))
        return (
            f"<form method='get' action='{PATH}' aria-label='filters'>{cameras} {person} {verdict} "
            "<button type='submit'>Show</button></form>"
        )

    def _row_html(self, row: DecisionRow, filters: dict[str, str]) -> str:
        who = html.escape(row.identity) if row.identity else "nobody"
        now = ""
        if row.revision is not None:
            now = f"<br>now: {_answer(row.revision.identity, row.revision.verdict)}"
        quality = "–" if row.quality is None else f"{row.quality:.2f}"
        kept = "".join(
            f"<input type='hidden' name='{name}' value='{html.escape(value, quote=True)}'>" for name, value in filters.items()
        )
        back = html.escape(_listing(filters), quote=True)
        actions = ""
        if row.enrolled_as is not None:
            actions = f"enrolled as {html.escape(row.enrolled_as)}"
        else:
            if row.identity:
                actions = (
                    f"<form method='post' action='/review/reject'>{self._access.csrf_field()}"
                    f"<input type='hidden' name='back' value='{back}'><input type='hidden' name='face' value='{row.face_id}'>"
                    f"<button type='submit'>Not this person</button></form>"
                )
            actions += (
                f"<form method='post' action='{PATH}/name'>{self._access.csrf_field()}{kept}"
                f"<input type='hidden' name='back' value='{back}'><input type='hidden' name='face' value='{row.face_id}'>"
                f"<label>This is <input name='name' list='people' required maxlength='128' "
                f"value='{html.escape(row.identity or '', quote=True)}'></label> "
                f"<button type='submit' aria-label='add face {row.face_id} to this person'>Add</button></form>"
            )
        return (
            f"<tr id='face-{row.face_id}'><td><img src='/review/crop/{row.face_id}' alt='face {row.face_id}'></td>"
            f"<td>{row.verdict}: {who}<br>score {row.score:.2f}{now}</td><td>{quality}</td>"
            f"<td>{html.escape(row.camera)}, track {row.track_id}<br>{utc_iso(row.ts)}</td><td>{actions}</td></tr>"
        )


def _listing(filters: dict[str, str], **extra: str) -> str:
    """The address of the decisions listing with these filters (and ``extra`` parameters)."""
    query = urlencode({**filters, **extra})
    return f"{PATH}?{query}" if query else PATH


def _select(name: str, label: str, empty: str, options, chosen: str | None) -> str:
    choices = "".join(
        f"<option value='{html.escape(option, quote=True)}'{' selected' if option == chosen else ''}>"
        f"{html.escape(option)}</option>"
        for option in options
    )
    return f"<label>{label} <select name='{name}'><option value=''>{empty}</option>{choices}</select></label>"


def _datalist(people: list[str]) -> str:
    options = "".join(f"<option value='{html.escape(person, quote=True)}'>" for person in people)
    return f"<datalist id='people'>{options}</datalist>"


def _answer(identity: str | None, verdict: str) -> str:
    return html.escape(identity) if identity else verdict


def _revised_html(row: RevisedTrack) -> str:
    revision = row.revision
    face = (
        f"<img src='/review/crop/{row.face_id}' alt='face of track {row.track_id} on {html.escape(row.camera, quote=True)}'>"
        if row.face_id is not None else "no face kept"
    )
    seen = utc_iso(row.first_ts) if row.first_ts == row.last_ts else f"{utc_iso(row.first_ts)} to {utc_iso(row.last_ts)}"
    return (
        f"<tr id='track-{row.track_ref}'><td>{face}</td><td>{html.escape(row.camera)}, track {row.track_id}</td>"
        f"<td>{seen}</td><td>{_answer(row.identity, row.verdict)}</td>"
        f"<td>{_answer(revision.identity, revision.verdict)} (score {revision.score:.2f})</td>"
        f"<td>{utc_iso(revision.at)}, gallery {html.escape(revision.gallery_version or 'none')}</td></tr>"
    )
