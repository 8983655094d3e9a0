"""``/review/people``: everyone enrolled, with their photos (the face crops the gallery keeps), how
many, when they were added and when last seen; add a person from uploaded photos or add photos to
someone, rename a person, remove a photo or a person. Every change goes through ``change_gallery``
(the running daemon takes it at once, it is logged, and a shared gallery goes to the fleet).

Works without a face history (only "last seen" needs it). A photo is identified by its row in the
gallery and the name of its face file (a content hash), both checked against the gallery: a page
left open while the gallery changed cannot remove or show the wrong face, and no file name is ever
taken from the request."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from edge_daemon.logs import get_logger
from edge_daemon.messages import utc_iso
from edge_daemon.recognition.gallery import Gallery, GalleryError, validate_identity
from edge_daemon.service.review.access import Access
from edge_daemon.service.review.changes import change_gallery, gallery_path
from edge_daemon.service.review.context import ReviewContext
from edge_daemon.service.review.forms import Request, Upload
from edge_daemon.service.review.layout import Response, not_found, page, redirect
from edge_daemon.service.review.photos import MAX_PHOTO_PIXELS, AcceptedFace, PhotoRefused

log = get_logger(__name__)

PATH = "/review/people"
FACE_PATH = "/review/people/face/"
SHOWN_PEOPLE = 200  # beyond, the page asks for a filter: a gallery may hold thousands
SHOWN_PHOTOS = 24  # per person in the list; one person's page shows them all
MAX_PHOTOS_PER_UPLOAD = 20
# Below this quality a face is a poor reference (the poorest fifth of the faces the open-set table
# was calibrated on, as history.group_min_quality): said so, but kept, since it may be all there is.
POOR_QUALITY = 0.35
DONE = {
    "renamed": "the person was renamed",
    "photo-removed": "the photo was removed",
    "removed": "the person was removed",
}


@dataclass(frozen=True)
class PhotoOutcome:
    """What became of one uploaded photo: its face (and the row it was added as), or why not."""

    filename: str
    face: AcceptedFace | None
    reason: str = ""
    row: int = -1


class PeoplePage:
    needs_history = False

    def __init__(self, context: ReviewContext, access: Access):
        self._context = context
        self._access = access

    def get_routes(self):
        return {PATH: self._page, FACE_PATH: self._face}

    def post_routes(self):
        return {
            f"{PATH}/add": self._add,
            f"{PATH}/rename": self._rename,
            f"{PATH}/remove-photo": self._remove_photo,
            f"{PATH}/remove": self._remove,
        }

    # --- the gallery ------------------------------------------------------------------------

    def _gallery(self) -> Gallery | None:
        """The gallery the daemon decides with (read from disk when the pages have no matcher)."""
        if self._context.matcher is not None:
            return self._context.matcher.gallery
        path = self._context.gallery_path
        try:
            return Gallery.load(path) if path is not None else None
        except GalleryError:
            return None

    def _change(self, change, what: str, **details) -> Gallery:
        try:
            return change_gallery(self._context, change, what, **details)
        except GalleryError as exc:  # no gallery on disk yet, or one that cannot be read
            raise ValueError(str(exc)) from None

    # --- actions ------------------------------------------------------------------------------

    def _add(self, request: Request) -> Response:
        form = request.form
        existing = form.get("person")
        name = existing if existing is not None else validate_identity(form["name"])
        uploads = request.uploads.get("photos", [])
        if not uploads:
            raise ValueError("no photo was chosen")
        if len(uploads) > MAX_PHOTOS_PER_UPLOAD:
            raise ValueError(f"{len(uploads)} photos at once: at most {MAX_PHOTOS_PER_UPLOAD}")
        if self._context.photo_faces is None:
            raise ValueError("photos cannot be added on this box (no detector for them)")
        if existing is None:
            _refuse_if_enrolled(self._gallery(), name)  # said before the photos are read, and again under the lock
        outcomes = [self._examine(upload) for upload in uploads]
        accepted = [outcome for outcome in outcomes if outcome.face is not None]
        if not accepted:
            return self._result(name, outcomes, status=400)

        def add(gallery: Gallery) -> None:
            if gallery.embedder_version != self._context.embedder_version:
                raise ValueError("the gallery was made by another embedder: rebuild it (edge-daemon gallery rebuild)")
            if existing is not None and existing not in gallery.labels:
                raise ValueError(f"{existing!r} is no longer enrolled")
            if existing is None:
                _refuse_if_enrolled(gallery, name)
            vectors = [outcome.face.embedding for outcome in accepted]
            sources = [f"upload:{_printable(outcome.filename)}" for outcome in accepted]
            gallery.add(name, vectors, sources, [outcome.face.crop for outcome in accepted])

        gallery = self._change(
            add, "photos added" if existing is not None else "person added", identity=name,
            photos=len(accepted), refused=len(outcomes) - len(accepted),
        )
        first_row = len(gallery.labels) - len(accepted)
        rows = iter(range(first_row, len(gallery.labels)))
        outcomes = [
            PhotoOutcome(outcome.filename, outcome.face, row=next(rows)) if outcome.face is not None else outcome
            for outcome in outcomes
        ]
        return self._result(name, outcomes, gallery=gallery)

    def _examine(self, upload: Upload) -> PhotoOutcome:
        try:
            return PhotoOutcome(upload.filename, self._context.photo_faces.find(upload.data))
        except PhotoRefused as exc:
            return PhotoOutcome(upload.filename, None, str(exc))
        except RuntimeError as exc:  # a model failed (its process died, say): this photo is not used
            log.error("review: a photo could not be examined", photo=upload.filename, error=str(exc))
            return PhotoOutcome(upload.filename, None, "the box could not examine it (see the daemon's log)")

    def _rename(self, request: Request) -> Response:
        old, new = request.form["person"], validate_identity(request.form["name"])
        self._change(lambda gallery: gallery.rename(old, new), "person renamed", identity=new, was=old)
        return redirect(f"{PATH}?done=renamed")

    def _remove_photo(self, request: Request) -> Response:
        form = request.form
        person, row, face = form["person"], form["row"], form["face"]
        if not row.isdecimal():
            raise ValueError("no such photo")

        def remove(gallery: Gallery) -> None:
            if int(row) >= len(gallery.faces) or gallery.faces[int(row)] != face:
                raise ValueError("that photo is no longer in the gallery (it changed meanwhile): reload the page")
            gallery.remove_row(int(row), person)

        self._change(remove, "photo removed", identity=person, face=face)
        return redirect(f"{PATH}?done=photo-removed")

    def _remove(self, request: Request) -> Response:
        person = request.form["person"]
        if request.form.get("confirm") != "yes":
            raise ValueError(f"tick the box to confirm that {person!r} is to be removed")

        def remove(gallery: Gallery) -> None:
            if not gallery.remove(person):
                raise ValueError(f"{person!r} is not enrolled")

        self._change(remove, "person removed", identity=person)
        return redirect(f"{PATH}?done=removed")

    # --- pages ----------------------------------------------------------------------------

    def _face(self, request: Request) -> Response:
        """A gallery face crop by its row, if the row still holds that face file."""
        row, face = request.path.removeprefix(FACE_PATH), request.query.get("face", "")
        gallery = self._gallery()
        if gallery is None or not row.isdecimal() or int(row) >= len(gallery.faces) or not face or gallery.faces[int(row)] != face:
            return not_found()
        path = gallery.face_path(gallery_path(self._context), int(row))
        try:
            data = path.read_bytes()
        except OSError:
            return not_found()
        return Response(200, data, "image/jpeg", (("Cache-Control", "private, max-age=86400"),))

    def _page(self, request: Request) -> Response:
        gallery = self._gallery()
        people = gallery.identities() if gallery is not None else {}
        wanted = request.query.get("person")
        search = request.query.get("q", "").strip()
        if wanted is not None:
            shown = [wanted] if wanted in people else []
        else:
            shown = [name for name in people if search.casefold() in name.casefold()][:SHOWN_PEOPLE]
        history = self._context.history
        seen = history.last_seen(shown) if history is not None else None
        done = DONE.get(request.query.get("done", ""))
        notice = f"<p class='notice' role='status'>Done: {done}.</p>" if done else ""
        if gallery is None:
            listing = "<p>No gallery yet (gallery.path): build one with <code>edge-daemon gallery build</code>.</p>"
        else:
            rows_by_person: dict[str, list[int]] = {}
            for row, label in enumerate(gallery.labels):
                rows_by_person.setdefault(label, []).append(row)
            limit = None if wanted is not None else SHOWN_PHOTOS
            listing = "".join(self._person_html(gallery, name, rows_by_person[name], seen, limit) for name in shown)
            if not listing:
                listing = "<p>Nobody by that name.</p>" if search or wanted is not None else "<p>Nobody enrolled yet.</p>"
        more = ""
        if wanted is None and len(people) > len(shown) and not search:
            more = f"<p>The first {len(shown)} of {len(people)} people; find others by name.</p>"
        body = (
            f"{notice}<p>{len(people)} {'person' if len(people) == 1 else 'people'} enrolled. "
            f"Photos: JPEG, PNG, WebP or BMP, one face each, at most {MAX_PHOTO_PIXELS // 1_000_000} megapixels, "
            f"{MAX_PHOTOS_PER_UPLOAD} at a time.</p>"
            f"{self._add_person_form()}{self._search_form(search)}{more}{listing}"
        )
        return page("People", body, PATH)

    def _search_form(self, search: str) -> str:
        return (
            f"<form method='get' action='{PATH}' role='search'><label>Find by name "
            f"<input name='q' value='{html.escape(search, quote=True)}' maxlength='128'></label> "
            f"<button type='submit'>Find</button></form>"
        )

    def _add_person_form(self) -> str:
        return (
            f"<section class='cluster'><h2>Add a person</h2>"
            f"<form method='post' action='{PATH}/add' enctype='multipart/form-data'>{self._hidden()}"
            f"<p><label>Name <input name='name' required maxlength='128' autocomplete='off'></label></p>"
            f"<p><label>Photos <input type='file' name='photos' multiple required accept='image/*'></label></p>"
            f"<button type='submit'>Add person</button></form></section>"
        )

    def _hidden(self, person: str | None = None) -> str:
        fields = f"{self._access.csrf_field()}<input type='hidden' name='back' value='{PATH}'>"
        if person is not None:
            fields += f"<input type='hidden' name='person' value='{html.escape(person, quote=True)}'>"
        return fields

    def _person_html(self, gallery: Gallery, name: str, rows: list[int], seen, limit: int | None) -> str:
        shown = html.escape(name)
        anchor = f"person-{quote(name, safe='')}"
        photos = "".join(self._photo_html(gallery, name, number, row) for number, row in enumerate(rows[:limit], start=1))
        if limit is not None and len(rows) > limit:
            link = f"{PATH}?{urlencode({'person': name})}"
            photos += f"<p><a href='{html.escape(link, quote=True)}'>All {len(rows)} photos of {shown}</a></p>"
        return (
            f"<section class='cluster' id='{html.escape(anchor, quote=True)}' aria-label='{html.escape(name, quote=True)}'>"
            f"<h2>{shown}</h2><p>{len(rows)} photo{'s' if len(rows) != 1 else ''}; added {_added(gallery, rows)}; "
            f"last seen {_last_seen(seen, name)}</p><div class='faces'>{photos}</div>"
            f"<form method='post' action='{PATH}/add' enctype='multipart/form-data'>{self._hidden(name)}"
            f"<label>Add photos of {shown} <input type='file' name='photos' multiple required accept='image/*'></label> "
            f"<button type='submit'>Add photos</button></form>"
            f"<form method='post' action='{PATH}/rename'>{self._hidden(name)}"
            f"<label>New name for {shown} <input name='name' required maxlength='128' autocomplete='off'></label> "
            f"<button type='submit'>Rename</button></form>"
            f"<form method='post' action='{PATH}/remove'>{self._hidden(name)}"
            f"<label><input type='checkbox' name='confirm' value='yes' required> remove {shown} and all their photos</label> "
            f"<button type='submit'>Remove person</button></form></section>"
        )

    def _photo_html(self, gallery: Gallery, name: str, number: int, row: int) -> str:
        face = gallery.faces[row]
        when = gallery.added[row][:10] or "date not kept"
        if not face:
            image = "<p>no face kept</p>"
            remove = ""
        else:
            image = f"<img src='{_face_url(row, face)}' alt='photo {number} of {html.escape(name, quote=True)}' loading='lazy'>"
            remove = (
                f"<form method='post' action='{PATH}/remove-photo'>{self._hidden(name)}"
                f"<input type='hidden' name='row' value='{row}'><input type='hidden' name='face' value='{html.escape(face, quote=True)}'>"
                f"<button type='submit' aria-label='remove photo {number} of {html.escape(name, quote=True)}'>Remove</button></form>"
            )
        return f"<figure>{image}<figcaption>{html.escape(when)}</figcaption>{remove}</figure>"

    def _result(self, name: str, outcomes: list[PhotoOutcome], gallery: Gallery | None = None, status: int = 200) -> Response:
        """The page after an upload: each photo's face and its quality, or why it was refused."""
        accepted = sum(1 for outcome in outcomes if outcome.face is not None)
        items = "".join(_outcome_html(name, outcome, gallery) for outcome in outcomes)
        summary = (
            f"<p class='notice' role='status'>{accepted} of {len(outcomes)} photos added to {html.escape(name)}.</p>"
            if accepted else
            "<p class='problem' role='alert'>No photo added: none gave exactly one face. Nothing was changed.</p>"
        )
        body = (
            f"{summary}<table><caption>The photos</caption><thead><tr><th scope='col'>Photo</th><th scope='col'>Face</th>"
            f"<th scope='col'>Result</th></tr></thead><tbody>{items}</tbody></table>"
            f"<p><a href='{PATH}#person-{quote(name, safe='')}'>Back to people</a></p>"
        )
        return page("Photos added" if accepted else "No photo added", body, PATH, status)


def _refuse_if_enrolled(gallery: Gallery | None, name: str) -> None:
    if gallery is not None and name in gallery.labels:
        raise ValueError(f"{name!r} is already enrolled: add the photos to them in their own section")


def _outcome_html(name: str, outcome: PhotoOutcome, gallery: Gallery | None) -> str:
    filename = html.escape(outcome.filename or "(no name)")
    if outcome.face is None:
        return f"<tr><td>{filename}</td><td></td><td>refused: {html.escape(outcome.reason)}</td></tr>"
    face = outcome.face
    image = ""
    if gallery is not None and gallery.faces[outcome.row]:
        image = f"<img src='{_face_url(outcome.row, gallery.faces[outcome.row])}' alt='the face found in {filename}'>"
    advice = " (poor: a sharper, more frontal photo would be a better reference)" if face.quality < POOR_QUALITY else ""
    return (
        f"<tr><td>{filename}</td><td>{image}</td><td>added to {html.escape(name)}: quality {face.quality:.2f}{advice}, "
        f"face {face.width} px wide</td></tr>"
    )


def _face_url(row: int, face: str) -> str:
    return html.escape(f"{FACE_PATH}{row}?{urlencode({'face': face})}", quote=True)


def _added(gallery: Gallery, rows: list[int]) -> str:
    """When the person's first photo still in the gallery was added (galleries from before dates
    were kept have none)."""
    times = []
    for row in rows:
        try:
            times.append(datetime.fromisoformat(gallery.added[row]).timestamp())
        except ValueError:  # not kept ("") or not a time
            continue
    return utc_iso(min(times)) if times else "before the gallery kept dates"


def _last_seen(seen, name: str) -> str:
    if seen is None:
        return "unknown (no face history)"
    sighting = seen.get(name)
    if sighting is None:
        return "not in the face history"
    return f"{utc_iso(sighting.ts)} by {html.escape(sighting.camera)}, score {sighting.score:.2f}"


def _printable(text: str) -> str:
    """A browser's file name as a gallery source: printable characters only, at most 200."""
    return "".join(char for char in text if char.isprintable())[:200]
