"""One detection worker for every camera (the design card's detection queue).

Each camera submits ``DetectRequest``s (a frame, whole or as regions) to its own bounded queue and
reads a ``DetectResult`` for every request, in submission order, from its own result queue.
Tracking stays with the camera; only the detector is shared, so one model (one process, one set of
threads) serves all cameras instead of one per camera.

- Fair: cameras are served round-robin, one request each per turn, so a camera that floods its
  queue waits for its turn like the others and cannot starve a quiet one; each camera's requests
  are served oldest first.
- Never stale: a request captured more than ``max_age_s`` before its turn is answered ``stale``
  (counted) without being detected; a request pushed out of a full camera queue is answered
  ``dropped`` (counted). The oldest goes: the newest frame is the one worth detecting.
- Batching: a detector with ``detect_batch(images) -> [detections per image]`` (ONNX Runtime with
  a dynamic batch dimension) gets up to ``max_batch`` requests a turn, one per camera, all their
  images in one call. Any other detector gets one request a turn. YuNet on ONNX Runtime with one
  thread gains nothing from batches on a small box (``python -m bench.regions`` measures it;
  docs/design/detection-cost.md), so the shipped detectors have no ``detect_batch`` and are
  served one at a time.

``detect_requests`` is what a worker does with its turn's requests: detect their images, map what
the regions' mosaics found back to each frame. Tests and benchmarks that detect a frame's regions
without a queue call it too.

``CameraDetection`` is a camera's whole side of it: motion gating (``motion_gate``), the request,
the wait for its answer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from queue import Empty, SimpleQueue
from typing import Literal

import numpy as np

from edge_daemon.counters import StageCounters
from edge_daemon.detectors.base import Detector
from edge_daemon.logs import get_logger
from edge_daemon.messages import Detection, Frame, Picture, TrackedFace
from edge_daemon.pipeline.motion_gate import DetectionPolicy, SceneMotion
from edge_daemon.pipeline.regions import (
    Mosaic,
    Region,
    RegionSettings,
    merge_mosaic_detections,
    pack_mosaics,
    shrunk_frame_detections,
)

log = get_logger(__name__)

Status = Literal["detected", "stale", "dropped", "failed"]
ANSWER_POLL_S = 1.0  # how often a waiting camera checks that the worker is still alive


@dataclass(frozen=True)
class DetectRequest:
    camera: str
    seq: int
    captured_at: float  # the clock of the queue's ``clock`` (time.time(), as Frame.captured_at)
    image: np.ndarray  # the whole frame, BGR uint8
    regions: tuple[Region, ...] | None = None  # None: detect the whole frame
    may_expire: bool = True  # False: detected however late (a file read as fast as the pipeline takes it)
    mosaic_side: int = 0  # the detector's max_side: small regions are packed into mosaics; 0: each alone
    # The whole frame already shrunk to the detector's max_side by the decoder (``Picture.bgr_shrunk``),
    # detected instead of ``image`` when the whole frame is: cheaper than shrinking the BGR frame.
    shrunk: np.ndarray | None = None

    @cached_property
    def mosaics(self) -> list[Mosaic]:
        return pack_mosaics(self.regions or (), self.mosaic_side)

    @property
    def images(self) -> list[np.ndarray]:
        """What the detector runs on: the frame, or the regions' mosaics (``regions.pack_mosaics``)."""
        if self.regions is None:
            return [self.image if self.shrunk is None else self.shrunk]
        return [mosaic.image(self.image) for mosaic in self.mosaics]


def detect_requests(
    detector: Detector,
    requests: Sequence[DetectRequest],
    duplicate_iou: float = RegionSettings.duplicate_iou,
    detector_time: Callable[[float], None] = lambda seconds: None,
) -> list[list[Detection]]:
    """Each request's faces, in frame coordinates, each face once: every request's images (its
    frame, or its regions' mosaics) in one ``detect_batch`` call when the detector has one, else
    one ``detect`` call an image; what a mosaic found mapped back to its frame
    (``regions.merge_mosaic_detections``). ``detector_time`` is told the seconds spent in the
    detector itself."""
    images = [request.images for request in requests]
    flat = [image for per_request in images for image in per_request]
    started = time.perf_counter()
    if callable(getattr(detector, "detect_batch", None)):
        found = detector.detect_batch(flat)
    else:
        found = [detector.detect(image) for image in flat]
    detector_time(time.perf_counter() - started)
    if len(found) != len(flat):
        raise RuntimeError(f"the detector answered {len(found)} images of {len(flat)}")
    detections = []
    start = 0
    for request, per_request in zip(requests, images):
        per_image = found[start : start + len(per_request)]
        start += len(per_request)
        height, width = request.image.shape[:2]
        if request.regions is None and request.shrunk is None:
            detections.append(list(per_image[0]))
        elif request.regions is None:
            shrunk_size = request.shrunk.shape[1], request.shrunk.shape[0]
            detections.append(shrunk_frame_detections(per_image[0], shrunk_size, (width, height)))
        else:
            detections.append(merge_mosaic_detections(request.mosaics, per_image, (width, height), duplicate_iou))
    return detections


@dataclass(frozen=True)
class DetectResult:
    request: DetectRequest
    status: Status
    detections: list[Detection]  # frame coordinates; empty unless detected
    detected_at: float


@dataclass
class _Camera:
    pending: deque
    results: SimpleQueue
    counters: StageCounters
    in_flight: DetectRequest | None = None
    # Answers to requests newer than the one in the detector, sent after its answer to keep order.
    held: list = field(default_factory=list)


class DetectionQueue(threading.Thread):
    """The worker thread and the cameras' queues. ``add_camera`` for each camera, ``start``, then
    ``submit`` from each camera's thread and read its ``results``; ``close`` answers what is queued
    and stops. With ``more_detectors`` (each its own model process), one more worker thread per
    detector takes turns from the same queues: a camera has one request in flight at a time, so
    each camera's frames are still detected in order."""

    def __init__(
        self,
        detector: Detector,
        max_age_s: float = 1.0,
        queue_size: int = 2,
        max_batch: int = 8,
        duplicate_iou: float = RegionSettings.duplicate_iou,
        clock: Callable[[], float] = time.time,
        more_detectors: Sequence[Detector] = (),
    ):
        super().__init__(name="detect-queue", daemon=True)
        if max_age_s <= 0 or queue_size < 1 or max_batch < 1:
            raise ValueError(
                f"max_age_s must be positive and queue_size, max_batch at least 1; got {max_age_s}, {queue_size}, {max_batch}"
            )
        self.detector = detector
        self._helpers = [
            threading.Thread(target=self._serve, args=(extra,), name=f"detect-queue-{number}", daemon=True)
            for number, extra in enumerate(more_detectors, start=2)
        ]
        self.max_age_s = max_age_s
        self.queue_size = queue_size
        batches = callable(getattr(detector, "detect_batch", None))  # every worker's detector is of one kind
        self.max_batch = max_batch if batches else 1
        self.duplicate_iou = duplicate_iou
        self.batch_sizes = StageCounters()  # requests per detector call -> calls
        self.busy_s = 0.0  # seconds spent in the detectors, all workers together
        self._clock = clock
        self._cameras: dict[str, _Camera] = {}
        self._order: list[str] = []
        self._next = 0  # index in _order of the camera whose turn is next
        self._ready = threading.Condition()
        self._closing = False

    def add_camera(self, camera: str) -> SimpleQueue:
        """Register a camera; returns the queue its ``DetectResult``s arrive on (one per request)."""
        with self._ready:
            if camera in self._cameras:
                raise ValueError(f"camera {camera!r} is already registered")
            self._cameras[camera] = _Camera(deque(), SimpleQueue(), StageCounters())
            self._order.append(camera)
            return self._cameras[camera].results

    def counters(self, camera: str) -> StageCounters:
        return self._camera(camera).counters

    def _camera(self, camera: str) -> _Camera:
        try:
            return self._cameras[camera]
        except KeyError:
            raise ValueError(f"camera {camera!r} is not registered (add_camera first)") from None

    def submit(self, request: DetectRequest) -> None:
        """Queue a request; never blocks. A full camera queue answers its oldest request 'dropped'."""
        if request.image.ndim != 3 or request.image.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 frame, got {request.image.dtype} of shape {request.image.shape}")
        if request.regions is not None and not request.regions:
            raise ValueError("regions must name at least one region, or be None for the whole frame")
        for region in request.regions or ():  # a region outside the frame fails here, in the camera's thread, not in a batch
            region.crop(request.image)
        with self._ready:
            if self._closing:
                raise RuntimeError("the detection queue is closed")
            camera = self._camera(request.camera)
            camera.counters.add("detect_submitted")
            if len(camera.pending) >= self.queue_size:
                self._answer(camera.pending.popleft(), "dropped")
            camera.pending.append(request)
            self._ready.notify()

    def start(self) -> None:
        super().start()
        for helper in self._helpers:
            helper.start()

    def close(self) -> None:
        """Answer every queued request (detected, or stale when too old), then stop the workers."""
        with self._ready:
            self._closing = True
            self._ready.notify_all()
        for worker in (self, *self._helpers):
            if worker.is_alive():
                worker.join()

    def run(self) -> None:
        log.info(
            "detection queue started", detector=self.detector.name, workers=1 + len(self._helpers),
            max_batch=self.max_batch, max_age_s=self.max_age_s,
        )
        self._serve(self.detector)

    def _serve(self, detector: Detector) -> None:
        while True:
            with self._ready:
                while not self._closing and not any(camera.pending for camera in self._cameras.values()):
                    self._ready.wait()
                batch = self._take_turns()
                if not batch and self._closing:
                    return
            if batch:
                self._detect(batch, detector)

    def _take_turns(self) -> list[DetectRequest]:
        """Round-robin from the camera whose turn is next: each camera's oldest fresh request (its
        stale ones answered on the way), until ``max_batch`` or every camera has had its turn."""
        batch: list[DetectRequest] = []
        now, first = self._clock(), self._next
        for step in range(len(self._order)):
            index = (first + step) % len(self._order)
            camera = self._cameras[self._order[index]]
            if camera.in_flight is not None:
                continue  # with several workers: another one is detecting this camera's frame
            while camera.pending:
                request = camera.pending.popleft()
                if request.may_expire and now - request.captured_at > self.max_age_s:
                    self._answer(request, "stale")
                    continue
                batch.append(request)
                camera.in_flight = request
                self._next = (index + 1) % len(self._order)
                break
            if len(batch) == self.max_batch:
                break
        return batch

    def _detect(self, batch: list[DetectRequest], detector: Detector) -> None:
        try:
            detections = detect_requests(detector, batch, self.duplicate_iou, self._add_busy)
        except Exception:  # one bad batch must not stop detection for every camera
            log.exception("detection failed", cameras=[request.camera for request in batch])
            for request in batch:
                self._answer(request, "failed")
            return
        self.batch_sizes.add(len(batch))
        for request, found in zip(batch, detections):
            self._answer(request, "detected", found)

    def _add_busy(self, seconds: float) -> None:
        with self._ready:
            self.busy_s += seconds

    def _answer(self, request: DetectRequest, status: Status, detections: Sequence[Detection] = ()) -> None:
        with self._ready:
            camera = self._cameras[request.camera]
            camera.counters.add(f"detect_{status}")
            result = DetectResult(request, status, list(detections), self._clock())
            if camera.in_flight is not None and camera.in_flight is not request:
                camera.held.append(result)
                return
            camera.results.put(result)
            if camera.in_flight is request:
                camera.in_flight = None
                for held in camera.held:
                    camera.results.put(held)
                camera.held.clear()


class CameraDetection:
    """One camera's side of detection, called from its tracking thread: motion gating decides what
    to detect (``policy`` and ``motion``; None for both detects every frame whole), the shared
    queue detects it. One request in flight per camera, so the camera's queue never overflows."""

    def __init__(
        self,
        camera: str,
        detect_queue: DetectionQueue,
        policy: DetectionPolicy | None = None,
        motion: SceneMotion | None = None,
        every_frame: bool = False,
        scene_observer: Callable[[float, bool], None] | None = None,
    ):
        """``every_frame``: no frame of this camera is skipped as stale (``realtime = false`` files
        promise to lose nothing; the queue still serves them in turn with the others).
        ``scene_observer``: told each frame's ``stream_time`` and whether its scene was quiet (no
        motion, no live track), with motion gating (the capture's ``IdleScene``)."""
        if (policy is None) != (motion is None):
            raise ValueError("motion gating needs both a policy and a motion mask, or neither")
        self.camera = camera
        self.policy = policy
        self.motion = motion
        self._queue = detect_queue
        self._every_frame = every_frame
        self._scene_observer = scene_observer
        self._results = detect_queue.add_camera(camera)

    def detect(self, frame: Frame, tracked: Sequence[TrackedFace] = ()) -> list[Detection] | None:
        """The faces in the frame, in frame coordinates; [] when nothing moves and nothing is tracked
        (nobody to find, so a tracker may take it as a frame without faces); None when the frame was
        not looked at (stale, dropped or failed in the queue), which a tracker must not count as a miss.
        ``tracked``: the live tracks' faces predicted to the frame's ``stream_time``.

        The policy runs on ``stream_time`` (the tracker's clock: video seconds, so a file read faster
        or slower than real time still gets a full detection every ``idle_detect_s`` of its video);
        the queue's staleness on ``captured_at`` (wall time, how late the answer would come)."""
        regions = None
        shrunk = None
        picture = frame.picture
        if self.policy is not None:
            # The motion mask reads the decoder's picture when there is one: a skipped frame is never made BGR.
            motion = self.motion.update(frame.image if picture is None else picture)
            if self._scene_observer is not None:
                self._scene_observer(frame.stream_time, not (motion.boxes or motion.relearned or tracked))
            plan = self.policy.plan(frame.stream_time, frame.size, motion, tracked)
            if plan.kind == "skip":
                return []
            regions = plan.regions or None
            if regions is None and picture is not None:
                shrunk = _shrunk_whole_frame(picture, self.policy.max_side)
        self._queue.submit(
            DetectRequest(
                self.camera, frame.seq, frame.captured_at, frame.image, regions, may_expire=not self._every_frame,
                mosaic_side=self.policy.max_side if self.policy is not None else 0, shrunk=shrunk,
            )
        )
        while True:
            try:
                result = self._results.get(timeout=ANSWER_POLL_S)
            except Empty:
                if not self._queue.is_alive():  # its death is the health check's to report; this camera goes on
                    return None
                continue
            return result.detections if result.status == "detected" else None


def _shrunk_whole_frame(picture: Picture, max_side: int) -> np.ndarray | None:
    """The whole frame at the detector's size (its longer side ``max_side``, as the detector's own
    downscale rounds it), scaled and converted by the decoder in one pass; None when it needs no shrinking."""
    width, height = picture.size
    scale = max_side / max(width, height)
    if scale >= 1:
        return None
    return picture.bgr_shrunk((max(1, round(width * scale)), max(1, round(height * scale))))
