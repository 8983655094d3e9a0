"""Keyframe-only decoding of an idle camera (PyAV's source, ``cameras.idle_keyframes_after_s``), and
the decoder's pictures that the motion mask and the detector read without a BGR frame."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edge_daemon.config import CameraConfig
from edge_daemon.messages import Detection, Frame
from edge_daemon.pipeline.capture import Camera, IdleScene
from edge_daemon.pipeline.motion_gate import SceneMotion
from edge_daemon.pipeline.regions import shrunk_frame_detections
from edge_daemon.sources import open_source
from edge_daemon.sources.pyav import PyAvPicture
from tests.support.keyframe_clips import write_h264

KEYFRAME_EVERY = 10
FRAMES = 60


def counting_frames(height: int = 96, width: int = 128):
    """Frame i is flat grey at level 4 * i: a frame's content says which frame it is."""
    for index in range(FRAMES):
        yield np.full((height, width, 3), 4 * index, np.uint8)


@pytest.fixture(scope="module", params=[0, 2], ids=["no-b-frames", "b-frames"])
def clip(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("keyframes") / f"count-{request.param}.mp4"
    write_h264(path, counting_frames(), fps=10, keyframe_every=KEYFRAME_EVERY, b_frames=request.param)
    return path


def read_all(path, keyframes_only) -> list[tuple[int, bool, int]]:
    """(frame index, decoded as keyframe only, the frame's grey level / 4) of every frame the source gives."""
    source = open_source(CameraConfig(name="test", url=str(path), detect_fps=10), keyframes_only)
    frames = []
    try:
        while (media_time := source.grab()) is not None:
            level = int(source.retrieve().bgr()[0, 0, 0])
            frames.append((round(media_time * 10), source.keyframes_only, round(level / 4)))
    finally:
        source.release()
    return frames


class PacketClock:
    """The ``keyframes_only`` check: true for the packets numbered in ``idle``, counting each call."""

    def __init__(self, idle: range):
        self.idle = idle
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls - 1 in self.idle


def test_an_idle_source_decodes_only_keyframes_then_goes_on_from_the_last_one_without_a_gap(clip):
    frames = read_all(clip, PacketClock(range(15, 45)))
    indexes = [index for index, _, _ in frames]
    keyframe_only = [index for index, only, _ in frames if only]
    # Keyframe-only decoding from packet 15 gives the keyframes at 20 and 30 (40 too, when packet
    # order puts it before packet 45), and nothing after 20 but keyframes (before it, the frames a
    # B-frame decoder still held come out).
    assert {20, 30} <= set(keyframe_only)
    assert all(index % KEYFRAME_EVERY == 0 for index in keyframe_only if index >= 20)
    # Back to normal at packet 45: every frame after the last keyframe, once, in order, and right.
    last_keyframe = keyframe_only[-1]
    assert indexes[indexes.index(last_keyframe):] == list(range(last_keyframe, FRAMES))
    assert all(abs(level - index) <= 1 for index, _, level in frames)  # no frame decoded from a missing reference
    assert not any(20 < index < 30 for index in indexes)  # skipped, never decoded


def test_a_source_idle_for_less_than_a_keyframe_interval_goes_on_from_where_it_stopped(clip):
    frames = read_all(clip, PacketClock(range(12, 16)))  # no keyframe comes while idle: nothing to decode
    assert [index for index, _, _ in frames] == list(range(FRAMES))
    assert all(abs(level - index) <= 1 for index, _, level in frames)


def test_a_source_never_told_to_idle_decodes_every_frame(clip):
    frames = read_all(clip, PacketClock(range(0)))
    assert [index for index, _, _ in frames] == list(range(FRAMES))
    assert not any(only for _, only, _ in frames)


def test_idle_after_quiet_for_the_set_time_and_active_again_on_motion():
    scene = IdleScene(after_s=2.0)
    scene.observe(0.0, quiet=True)
    scene.observe(1.9, quiet=True)
    assert not scene.keyframes_only()
    scene.observe(2.0, quiet=True)
    assert scene.keyframes_only()
    scene.observe(4.0, quiet=False)
    assert not scene.keyframes_only()
    scene.observe(4.2, quiet=True)
    assert not scene.keyframes_only()  # quiet again counts from there
    assert not IdleScene(after_s=0.0).keyframes_only()  # 0: never


def test_a_realtime_false_file_never_decodes_keyframes_only(tmp_path):
    camera = Camera(CameraConfig(name="file", url=str(tmp_path / "x.mp4"), realtime=False, idle_keyframes_after_s=1), threading.Event())
    assert camera.idle.after_s == 0


def test_motion_from_the_decoders_picture_matches_motion_from_the_bgr_frame(tmp_path):
    rng = np.random.default_rng(0)
    scene = rng.integers(60, 200, (360, 640, 3), dtype=np.uint8)

    def frames():
        for index in range(12):
            image = scene.copy()
            x = 100 + 30 * index
            image[150:230, x : x + 60] = 250  # a bright box moving right
            yield image

    path = tmp_path / "box.mp4"
    write_h264(path, frames(), fps=10, keyframe_every=50)
    # Deblocked: the scene is pixel noise, the worst case for a codec. Without the filter the blocks'
    # edges come out near the motion threshold, and the two paths' rounding made one box more.
    source = open_source(CameraConfig(name="test", url=str(path), detect_fps=10, deblocking=True))
    from_picture, from_bgr = SceneMotion(), SceneMotion()
    try:
        while source.grab() is not None:
            picture = source.retrieve()
            assert isinstance(picture, PyAvPicture)
            a, b = from_picture.update(picture), from_bgr.update(picture.bgr())
            assert a.relearned == b.relearned
            assert len(a.boxes) == len(b.boxes)
            for box_a, box_b in zip(a.boxes, b.boxes):
                assert np.allclose(box_a, box_b, atol=2 * 640 / 240)  # within two small-frame pixels
            last = a
    finally:
        source.release()
    assert last.boxes  # the box was seen moving


def test_a_frame_converts_its_picture_once_and_only_when_its_image_is_read(tmp_path):
    path = tmp_path / "count.mp4"
    write_h264(path, counting_frames(), fps=10, keyframe_every=KEYFRAME_EVERY)
    source = open_source(CameraConfig(name="test", url=str(path), detect_fps=10))
    try:
        source.grab()
        picture = source.retrieve()
    finally:
        source.release()
    conversions = []
    bgr = picture.bgr

    def counted():
        conversions.append(1)
        return bgr()

    picture.bgr = counted
    frame = Frame("test", 1, picture, 0.0, 0.0)
    assert frame.size == (128, 96) and frame.picture is picture and not conversions
    assert frame.image is frame.image and frame.image.shape == (96, 128, 3) and len(conversions) == 1
    assert picture.bgr_shrunk((64, 48)).shape == (48, 64, 3) and picture.grey((32, 24)).shape == (24, 32)


def test_faces_found_in_the_shrunk_whole_frame_map_back_to_frame_pixels():
    found = [Detection((10.0, 20.0, 30.0, 40.0), 0.9, np.array([[15.0, 30.0]] * 5, np.float32))]
    (mapped,) = shrunk_frame_detections(found, (640, 360), (1920, 1080))
    assert mapped.bbox == (30.0, 60.0, 90.0, 120.0)
    assert np.allclose(mapped.landmarks, [[45.0, 90.0]] * 5)
