"""``/review/cameras``: what each camera sees now, to aim it and to choose ``detector.min_face_px``:
its latest frame, scaled down, with the faces found (each with its width, quality, the quality gate
that refused it if any, and its track's verdict) and the moving areas outlined; refreshed every few
seconds. The frame is converted, drawn on and encoded here, only when someone asks."""

from __future__ import annotations

import html
import time
from urllib.parse import quote, unquote

import cv2

from edge_daemon.messages import utc_iso
from edge_daemon.pipeline.status import CameraView, FaceView
from edge_daemon.service.review.context import ReviewContext
from edge_daemon.service.review.forms import Request
from edge_daemon.service.review.layout import Response, document, not_found, page

PAGE = "/review/cameras"
IMAGES = "/review/cameras/"  # + the camera's name (URL-quoted) + ".jpg"
MAX_IMAGE_WIDTH = 640  # enough to aim a camera by, and light to send every few seconds
REFRESH_S = 5
JPEG_QUALITY = 80

# What a gate's refusal means, in the settings' words (recognition.quality.QualityGate's reasons).
GATES = {
    "too_small": "smaller than min_face_px",
    "low_score": "detector score under score_threshold",
    "profile": "turned too far (max_yaw)",
    "blurry": "too blurred (min_sharpness)",
}
# BGR colours of the drawing: faces the gates let through, faces they refuse, moving areas.
PASSED, REFUSED, MOVING = (60, 200, 60), (40, 40, 230), (0, 200, 240)
FRAME_STYLE = "width:100%;max-width:640px;height:auto;object-fit:contain;border:1px solid #ccc"


def gate_text(face: FaceView) -> str:
    return "passed" if face.refused_by is None else GATES.get(face.refused_by, face.refused_by)


def verdict_text(face: FaceView) -> str:
    verdict = face.verdict
    if verdict is None:
        return "not decided"
    return f"{verdict.verdict} {verdict.identity}" if verdict.identity else verdict.verdict


def annotated_jpeg(view: CameraView) -> bytes:
    """The view's frame at most ``MAX_IMAGE_WIDTH`` wide, faces and moving areas drawn on it, as a JPEG."""
    height, width = view.image.shape[:2]
    scale = min(1.0, MAX_IMAGE_WIDTH / width)
    # Always a new image: the view's frame is the pipeline's own and is never drawn on.
    image = cv2.resize(view.image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)

    def scaled(box) -> tuple[tuple[int, int], tuple[int, int]]:
        x, y, w, h = (value * scale for value in box)
        return (round(x), round(y)), (round(x + w), round(y + h))

    for box in view.motion:
        cv2.rectangle(image, *scaled(box), MOVING, 1)
    for face in view.faces:
        colour = PASSED if face.refused_by is None else REFUSED
        top_left, bottom_right = scaled(face.bbox)
        cv2.rectangle(image, top_left, bottom_right, colour, 2)
        outcome = verdict_text(face) if face.refused_by is None else face.refused_by
        _label(image, f"#{face.track_id} {face.width_px:.0f}px q{face.quality:.2f} {outcome}", top_left, colour)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the camera's frame as JPEG")
    return data.tobytes()


def _label(image, text: str, box_top_left: tuple[int, int], colour: tuple[int, int, int]) -> None:
    """``text`` in white on ``colour`` above a box, kept inside the picture: a face at its edge still
    shows its label whole."""
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    (text_width, text_height), baseline = cv2.getTextSize(text, font, font_scale, 1)
    left = max(0, min(box_top_left[0], image.shape[1] - text_width - 2))
    top = max(0, box_top_left[1] - text_height - baseline - 2)
    cv2.rectangle(image, (left, top), (left + text_width + 2, top + text_height + baseline + 2), colour, -1)
    cv2.putText(image, text, (left + 1, top + text_height + 1), font, font_scale, (255, 255, 255), 1, cv2.LINE_AA)


class CamerasPage:
    needs_history = False

    def __init__(self, context: ReviewContext):
        self._context = context
        # The JPEG each camera's section was last shown with, by camera: (frame number, JPEG), so the
        # picture a page asks for is the frame its table describes even when newer frames came since.
        self._shown: dict[str, tuple[int, bytes]] = {}

    def get_routes(self):
        return {PAGE: self._page, IMAGES: self._image}

    def post_routes(self):
        return {}

    def _image(self, request: Request) -> Response:
        """A camera's latest frame, annotated; 404 for a name that is not a configured camera's."""
        name = unquote(request.path.removeprefix(IMAGES))
        camera = name.removesuffix(".jpg")
        if not name.endswith(".jpg") or camera not in self._context.cameras or self._context.camera_views is None:
            return not_found()
        shown = self._shown.get(camera)
        if shown is None or str(shown[0]) != request.query.get("frame"):
            view = self._context.camera_views(camera)
            if view is None or view.image is None:
                return not_found()
            shown = self._show(view)
        return Response(200, shown[1], "image/jpeg", (("Cache-Control", "no-store"),))

    def _show(self, view: CameraView) -> tuple[int, bytes]:
        shown = (view.seq, annotated_jpeg(view))
        self._shown[view.name] = shown
        return shown

    def _page(self, request: Request) -> Response:
        title = "Cameras"
        if self._context.camera_views is None:
            return page(title, "<p>This daemon gives no camera views.</p>", PAGE)
        refreshing = request.query.get("refresh") != "off"
        if refreshing:
            control = f"<p>Refreshed every {REFRESH_S} s. <a href='{PAGE}?refresh=off'>Stop refreshing</a></p>"
        else:
            control = f"<p>Not refreshing. <a href='{PAGE}'>Refresh every {REFRESH_S} s</a></p>"
        views = [self._context.camera_views(name) for name in self._context.cameras]
        cameras = "".join(self._camera_html(view) for view in views if view is not None) or "<p>No cameras.</p>"
        body = f"{control}{cameras}{self._min_face_px_html()}"
        headers = (("Refresh", str(REFRESH_S)),) if refreshing else ()
        return Response(200, document(title, body, PAGE).encode(), headers=headers)

    def _camera_html(self, view: CameraView) -> str:
        name = html.escape(view.name)
        heading = f"<h2>{name}</h2><p>State: {html.escape(view.state)}."
        if view.image is None:
            return f"<section class='camera'>{heading} No frame looked at yet.</p></section>"
        height, width = view.image.shape[:2]
        self._show(view)
        age = max(0.0, time.time() - view.captured_at)
        faces = len(view.faces)
        alt = (f"latest frame of camera {view.name}: {faces} face{'s' if faces != 1 else ''}, "
               f"{len(view.motion)} moving area{'s' if len(view.motion) != 1 else ''}")
        image = (
            f"<img src='{IMAGES}{quote(view.name, safe='')}.jpg?frame={view.seq}' alt='{html.escape(alt, quote=True)}' "
            f"style='{FRAME_STYLE}'>"
        )
        return (
            f"<section class='camera' id='camera-{quote(view.name, safe='')}'>{heading} Frame {view.seq}, taken "
            f"{utc_iso(view.captured_at)} ({age:.1f} s ago), {width}×{height} pixels.</p>"
            f"<figure style='display:block'>{image}<figcaption>Green: faces the quality gates let through; red: faces "
            f"they refuse; yellow: moving areas.</figcaption></figure>"
            f"{self._faces_html(view)}{self._motion_html(view)}</section>"
        )

    def _faces_html(self, view: CameraView) -> str:
        if not view.faces:
            return "<p>No faces found in this frame.</p>"
        header = "".join(
            f"<th scope='col'>{label}</th>"
            for label in ("Track", "Width (px)", "Detector score", "Quality", "Gate", "Verdict", "Score")
        )
        rows = "".join(
            f"<tr class='face'><td>{face.track_id}</td><td class='width'>{face.width_px:.0f}</td>"
            f"<td>{face.detector_score:.2f}</td><td>{face.quality:.2f}</td>"
            f"<td class='gate'>{html.escape(gate_text(face))}</td><td class='verdict'>{html.escape(verdict_text(face))}</td>"
            f"<td>{'' if face.verdict is None else f'{face.verdict.score:.2f}'}</td></tr>"
            for face in view.faces
        )
        return f"<table><caption>Faces in this frame</caption><tr>{header}</tr>{rows}</table>"

    def _motion_html(self, view: CameraView) -> str:
        if not view.motion:
            return "<p>No moving areas in this frame.</p>"
        boxes = ", ".join(f"{w:.0f}×{h:.0f} at ({x:.0f}, {y:.0f})" for x, y, w, h in view.motion)
        return f"<p>Moving areas (frame pixels): {boxes}.</p>"

    def _min_face_px_html(self) -> str:
        value = self._context.min_face_px
        now = f"It is <strong>{value} px</strong> on this box." if value is not None else ""
        return (
            "<h2 id='min-face-px'>Choosing min_face_px</h2>"
            f"<p><code>detector.min_face_px</code> is the smallest face the daemon tries to recognise. {now} "
            "A face whose box is narrower or shorter than that, in the camera's own pixels (the widths above, not "
            "the scaled picture's), is tracked but not recognised: its gate reads “smaller than min_face_px”, "
            "and a track with no larger face is decided <code>uncertain</code>.</p>"
            "<p>Watch people pass where they should be recognised. Their faces should be wider than min_face_px: "
            "if they are not, aim or zoom the camera so that they are, rather than lowering it, since small faces "
            "hold little detail and are recognised less often and less surely. The default, 20 px, is the smallest "
            "width the detector finds reliably; raising it spares a busy box embedding far-away faces nobody needs "
            "recognised.</p>"
        )
