"""What each camera sees now (``pipeline.camera_view``): the latest frame by reference, its faces with
their widths, gates and quality worked out only when asked, the moving areas, and each track's
verdict, written by the decisions thread and dropped when the track ends."""

from __future__ import annotations

import queue
import time
from types import SimpleNamespace

import numpy as np

from edge_daemon.comms.dispatcher import EventDispatcher
from edge_daemon.config import DecisionConfig, DetectorConfig, GalleryConfig
from edge_daemon.messages import Detection, Frame, Shutdown, TrackEnded
from edge_daemon.pipeline.camera_view import CameraViews, ObservedSceneMotion, moving_areas
from edge_daemon.pipeline.decisions import DecisionMaker
from edge_daemon.pipeline.motion_gate import MotionSettings, SceneMotion
from edge_daemon.pipeline.sinks import decision_sinks
from edge_daemon.pipeline.status import TrackVerdict
from edge_daemon.recognition.matcher import Matcher
from tests.support.tracking_and_decisions import Collect
from tests.unit.test_tracking_and_decisions import identified


class CountingPicture:
    """A decoder's picture that counts its conversions to BGR."""

    def __init__(self, image: np.ndarray):
        self._image = image
        self.conversions = 0

    @property
    def size(self):
        return self._image.shape[1], self._image.shape[0]

    def bgr(self):
        self.conversions += 1
        return self._image.copy()


def camera(name="door", state="streaming"):
    return SimpleNamespace(config=SimpleNamespace(name=name), state=state)


def views(min_face_px=40, **kwargs) -> CameraViews:
    return CameraViews([camera("door"), camera("yard", "reconnecting")], DetectorConfig(min_face_px=min_face_px), **kwargs)


def textured(width=640, height=360, seed=0) -> np.ndarray:
    """A frame with detail everywhere, so no face in it is refused for blur."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def face(x, y, width, score=0.9) -> Detection:
    return Detection((x, y, width, width * 1.2), score, np.zeros((5, 2), np.float32))


def frame(decoded, seq=1, camera_name="door") -> Frame:
    return Frame(camera_name, seq, decoded, time.time(), seq / 25)


def test_a_camera_before_its_first_frame_and_a_name_that_is_no_camera():
    cameras = views()
    yard = cameras.snapshot("yard")
    assert (yard.name, yard.state, yard.image, yard.faces, yard.motion) == ("yard", "reconnecting", None, (), ())
    assert cameras.snapshot("../etc/passwd") is None


def test_the_latest_frame_is_kept_by_reference_and_converted_only_when_asked():
    cameras = views()
    picture = CountingPicture(textured())
    latest = frame(picture, seq=7)
    cameras.frame_seen("door", latest, [(3, face(100, 50, 80))], [(90.0, 40.0, 120.0, 150.0)])
    assert picture.conversions == 0  # the tracking thread pays a reference, no BGR frame
    view = cameras.snapshot("door")
    assert picture.conversions == 1
    assert (view.seq, view.captured_at, view.state) == (7, latest.captured_at, "streaming")
    assert view.motion == ((90.0, 40.0, 120.0, 150.0),)
    assert np.shares_memory(view.image, latest.image) and not view.image.flags.writeable  # no copy, and not to be drawn on
    cameras.frame_seen("door", frame(CountingPicture(textured(seed=1)), seq=8), [], [])
    assert cameras.snapshot("door").seq == 8 and cameras.snapshot("door").faces == ()  # only the latest is kept
    assert cameras.snapshot("yard").image is None  # each camera its own


def test_each_face_has_its_width_quality_and_the_gate_that_refused_it():
    cameras = views(min_face_px=60)
    faces = [(1, face(40, 40, 90)), (2, face(300, 60, 48)), (3, face(450, 60, 70, score=0.5))]
    cameras.frame_seen("door", frame(textured()), faces, [])
    shown = {face.track_id: face for face in cameras.snapshot("door").faces}
    assert {track: (face.width_px, face.refused_by) for track, face in shown.items()} == {
        1: (90, None), 2: (48, "too_small"), 3: (70, "low_score"),
    }
    assert all(0.0 <= face.quality <= 1.0 for face in shown.values())
    assert shown[3].detector_score == 0.5


def test_track_verdicts_are_attached_to_their_faces_and_dropped_when_the_track_ends():
    cameras = views()
    cameras.frame_seen("door", frame(textured()), [(1, face(40, 40, 90)), (2, face(300, 60, 90))], [])
    cameras.track_decided("door", 1, TrackVerdict("recognized", "ada", 0.71))
    cameras.track_decided("yard", 2, TrackVerdict("unknown", None, 0.2))  # the same id on another camera
    verdicts = {face.track_id: face.verdict for face in cameras.snapshot("door").faces}
    assert verdicts == {1: TrackVerdict("recognized", "ada", 0.71), 2: None}
    cameras.track_decided("door", 1, TrackVerdict("recognized", "ada", 0.74))  # the score follows the template
    assert cameras.snapshot("door").faces[0].verdict.score == 0.74
    cameras.track_ended("door", 1)
    assert cameras.snapshot("door").faces[0].verdict is None


def test_the_verdicts_kept_are_bounded_oldest_decided_first_dropped():
    cameras = views(max_verdicts=3)
    cameras.frame_seen("door", frame(textured()), [(track, face(20 + 110 * track, 40, 90)) for track in range(1, 6)], [])
    for track in range(1, 6):
        cameras.track_decided("door", track, TrackVerdict("unknown", None, 0.1 * track))
    cameras.track_decided("door", 3, TrackVerdict("unknown", None, 0.35))  # decided again: now the newest
    kept = [face.track_id for face in cameras.snapshot("door").faces if face.verdict is not None]
    assert kept == [3, 4, 5]
    cameras.track_decided("door", 6, TrackVerdict("unknown", None, 0.6))
    assert [face.track_id for face in cameras.snapshot("door").faces if face.verdict is not None] == [3, 5]


def test_the_decision_maker_writes_each_track_verdict_and_drops_it_at_the_track_end():
    cameras = views()
    cameras.frame_seen("door", frame(textured()), [(1, face(40, 40, 90))], [])
    inbox: queue.Queue = queue.Queue()
    maker = DecisionMaker(
        inbox, decision_sinks(EventDispatcher([Collect()])), "dlib_resnet", "v1", "box", Matcher(GalleryConfig(), None),
        DecisionConfig(mode="vote"), cameras,
    )
    maker.start()
    inbox.put(identified(1, "ada", 0.8))
    deadline = time.monotonic() + 5
    while cameras.snapshot("door").faces[0].verdict is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cameras.snapshot("door").faces[0].verdict == TrackVerdict("recognized", "ada", 0.8)
    inbox.put(TrackEnded("door", 1, (40, 40, 90, 108)))
    inbox.put(Shutdown())
    maker.join(5)
    assert cameras.snapshot("door").faces[0].verdict is None


def test_the_motion_mask_keeps_its_latest_moving_areas_for_the_view():
    motion = ObservedSceneMotion(MotionSettings(width=160))
    still = np.full((360, 640, 3), 40, np.uint8)
    assert moving_areas(motion) == ()  # nothing taken yet
    motion.update(still)
    moved = still.copy()
    moved[100:200, 300:380] = 220
    motion.update(moved)
    (x, y, w, h), = moving_areas(motion)
    assert 280 <= x <= 300 and 80 <= y <= 100 and w >= 80 and h >= 100
    assert moving_areas(SceneMotion()) == () and moving_areas(None) == ()  # a mask that keeps nothing, or none
