"""What a camera's scene needs detected this frame: the whole frame, regions around what moves and
what is tracked, or nothing.

``SceneMotion`` keeps one camera's motion mask on a small grey copy of the frame (``width`` pixels
wide): the frame differenced against a running background and thresholded; a dilation joins the
changed pixels into blobs, and each blob of at least ``min_area`` is returned as the box of its
changed pixels, in frame pixels. It costs a fraction of detecting the frame, most of it making the
small grey copy (docs/design/detection-cost.md); from a decoder's picture (``messages.Picture``)
that copy is made from the luma plane in one pass, with no BGR frame at all.

- Sensor noise: shrinking with area averaging and a blur average each small pixel over many
  sensor pixels, so per-pixel noise falls far below ``threshold`` grey levels; a static noisy scene
  gives no motion.
- Light: when more than ``light_change`` of the frame changes at once (lights switched, the camera's
  day/night switch, auto exposure), nothing is reported as moving and the background is learnt
  again from that frame; the policy detects the whole frame once, since a person may be anywhere.
- A person standing still fades into the background within seconds (``learning_rate``; a wider
  small frame keeps sharper edges, which take longer to fade);
  their live track keeps a region on them, and ``idle_detect_s`` brings a whole-frame detection
  that finds them again after their track has ended.

``DetectionPolicy`` turns the motion and the live tracks into a ``DetectPlan``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from edge_daemon.counters import StageCounters
from edge_daemon.messages import BBox, Picture, TrackedFace
from edge_daemon.pipeline.regions import Region, RegionSettings, face_scale, plan_regions, regions_cost, require_fractions

BLUR_PX = 5  # on the small frame: smooths what the area averaging left of the sensor noise
MIN_MAX_SIDE = 64  # the smallest detector.max_side the configuration allows
CLOCK_SLACK_S = 1e-6  # a full detection due at a frame's time is not put off by float rounding
# A moving blob no larger than this many face widths and heights around a live track's face is
# that person moving. bench.pipeline's idle crossing (a head and shoulders) gives 2x2; a whole
# walker is an estimate, not measured: shoulders about 3 face widths, a body about 7.5 face heights,
# grown by the mask's dilation and the step since the frame before. Anyone else in such a blob
# stands beside them, at about their distance, so their face is about as large: the blob is
# detected at the track's scale. A larger blob (a group) is detected at full resolution.
PERSON_FACE_WIDTHS, PERSON_FACE_HEIGHTS = 6, 12


@dataclass(frozen=True)
class MotionSettings:
    width: int = 240  # pixels of the small grey frame
    threshold: int = 15  # grey levels from the background
    min_area: int = 6  # small-frame pixels of a moving blob, after dilation
    dilate_px: int = 2  # small-frame pixels: joins the edges of one moving person into one blob
    learning_rate: float = 0.05  # of the background replaced by each frame
    light_change: float = 0.5  # share of the frame changing at once that is light, not motion

    def __post_init__(self) -> None:
        if not 16 <= self.width <= 1920:
            raise ValueError(f"width must be 16-1920 pixels, got {self.width}")
        if not 1 <= self.threshold <= 255:
            raise ValueError(f"threshold must be 1-255 grey levels, got {self.threshold}")
        if self.min_area < 1 or self.dilate_px < 0:
            raise ValueError(f"min_area must be at least 1 and dilate_px not negative, got {self.min_area}, {self.dilate_px}")
        require_fractions(self, "learning_rate", "light_change")


@dataclass(frozen=True)
class Motion:
    boxes: list[BBox]  # moving areas, in frame pixels
    changed: float  # share of the small frame above the threshold
    relearned: bool  # no background to compare with: the first frame, a new geometry, a light change


class SceneMotion:
    """One camera's motion mask; call ``update`` with every frame that could be detected."""

    def __init__(self, settings: MotionSettings | None = None):
        self.settings = settings or MotionSettings()
        self._background: np.ndarray | None = None
        self._geometry: tuple[int, ...] | None = None
        self._kernel = np.ones((2 * self.settings.dilate_px + 1,) * 2, np.uint8)

    def _small_size(self, width: int, height: int) -> tuple[int, int]:
        small_width = min(self.settings.width, width)
        return small_width, max(1, round(height * small_width / width))

    def _small_grey(self, frame: np.ndarray | Picture) -> np.ndarray:
        if isinstance(frame, np.ndarray):
            grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            small = cv2.resize(grey, self._small_size(grey.shape[1], grey.shape[0]), interpolation=cv2.INTER_AREA)
        else:  # the decoder's picture: only its luma plane is read, shrunk in one pass
            small = frame.grey(self._small_size(*frame.size))
        return cv2.GaussianBlur(small, (BLUR_PX, BLUR_PX), 0).astype(np.float32)

    def update(self, frame: np.ndarray | Picture) -> Motion:
        """``frame``: a BGR or grey uint8 image, or a decoder's picture (``messages.Picture``)."""
        if isinstance(frame, np.ndarray):
            if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)) or frame.dtype != np.uint8 or frame.size == 0:
                raise ValueError(f"expected a BGR or grey uint8 frame, got {frame.dtype} of shape {frame.shape}")
            geometry = frame.shape[:2]
        else:
            geometry = frame.size[::-1]
        small = self._small_grey(frame)
        if self._background is None or geometry != self._geometry:
            self._background, self._geometry = small, geometry
            return Motion([], 1.0, True)
        moving = (cv2.absdiff(small, self._background) > self.settings.threshold).astype(np.uint8)
        changed = float(moving.mean())
        if changed > self.settings.light_change:
            self._background = small
            return Motion([], changed, True)
        cv2.accumulateWeighted(small, self._background, self.settings.learning_rate)
        scale_x, scale_y = geometry[1] / small.shape[1], geometry[0] / small.shape[0]
        boxes = [
            (float(x * scale_x), float(y * scale_y), float(w * scale_x), float(h * scale_y))
            for x, y, w, h in self._blobs(moving)
        ]
        return Motion(boxes, changed, False)

    def _blobs(self, moving: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Boxes (small-frame pixels) of the blobs the dilated mask joins, at least ``min_area``
        dilated: each the bounds of its changed pixels, not of the dilation, which grows every side
        by ``dilate_px`` (16 frame pixels in 1080p at 240 px wide) that a region's padding would add
        again: small moving faces cost the detector clearly less in these boxes than in the dilated
        ones (docs/design/detection-cost.md)."""
        joined = cv2.dilate(moving, self._kernel) if self.settings.dilate_px else moving
        count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        ys, xs = np.nonzero(moving)
        blob = labels[ys, xs]
        left, top = np.full(count, moving.shape[1]), np.full(count, moving.shape[0])
        right, bottom = np.zeros(count, np.int64), np.zeros(count, np.int64)
        np.minimum.at(left, blob, xs)
        np.minimum.at(top, blob, ys)
        np.maximum.at(right, blob, xs + 1)
        np.maximum.at(bottom, blob, ys + 1)
        return [
            (int(left[i]), int(top[i]), int(right[i] - left[i]), int(bottom[i] - top[i]))
            for i in range(1, count)
            if stats[i, cv2.CC_STAT_AREA] >= self.settings.min_area
        ]


Kind = Literal["full", "regions", "skip"]


@dataclass(frozen=True)
class DetectPlan:
    kind: Kind
    reason: str  # full: 'idle', 'relearned', 'cost'; regions: 'motion'; skip: 'no_motion', 'first_frame'
    regions: tuple[Region, ...] = field(default=())


class DetectionPolicy:
    """Per camera and frame: detect the whole frame, some regions, or nothing.

    - whole frame: every ``idle_detect_s`` (the first at the camera's ``phase``), so a person
      standing still, who makes no motion, is found within that time; when the motion mask learnt its background
      again (a light change, a new geometry); and when the regions would cost more than
      ``max_region_cost`` times the whole frame (motion everywhere: a crowd);
    - regions: around the moving areas and the live tracks' boxes; a track's region at the scale its
      face needs, a moving blob of one tracked person's size at that person's (``_scales``);
    - skip: nothing moves and nothing is tracked (counted as ``frames_skipped_no_motion``).
    """

    def __init__(
        self,
        idle_detect_s: float,
        max_side: int,
        regions: RegionSettings | None = None,
        max_region_cost: float = 1.0,
        phase: float | None = None,
    ):
        """``phase``: None detects the first frame whole (a file read as fast as the pipeline takes
        it, which must lose nothing). A share of ``idle_detect_s`` (0-1) staggers cameras started
        together: the first frame only teaches the motion mask its background (counted as skipped
        for no motion: there is nothing to compare it with), and the first whole-frame detection
        comes ``phase * idle_detect_s`` later, so the cameras do not all detect whole frames at
        once on the one detection worker, at start or every ``idle_detect_s`` after: every camera's
        whole frame queued at once ahead of the first person's regions delays the first decisions
        (docs/design/detection-cost.md, ``idle_detect_s`` and its phases)."""
        if idle_detect_s <= 0:
            raise ValueError(f"idle_detect_s must be positive, got {idle_detect_s}")
        if max_side < MIN_MAX_SIDE or max_region_cost <= 0:
            raise ValueError(f"max_side must be at least {MIN_MAX_SIDE} and max_region_cost positive, got {max_side}, {max_region_cost}")
        self.idle_detect_s = idle_detect_s
        self.max_side = max_side
        self.regions = regions or RegionSettings()
        self.max_region_cost = max_region_cost
        if phase is not None and not 0 <= phase < 1:
            raise ValueError(f"phase must be None or in [0, 1), got {phase}")
        self.phase = phase
        self.counters = StageCounters()
        self._last_full: float | None = None

    def plan(self, now: float, frame_size: tuple[int, int], motion: Motion, tracked: Sequence[TrackedFace]) -> DetectPlan:
        """``now``: the frame's capture time (seconds, one clock per camera); ``frame_size``: width,
        height; ``tracked``: where the camera's live tracks' faces are expected."""
        if self._last_full is None and self.phase is not None:
            self._last_full = now - (1 - self.phase) * self.idle_detect_s  # the first full detection at the phase
            self.counters.add("frames_skipped_no_motion")
            return DetectPlan("skip", "first_frame")
        # A clock that went back (a looping file restarting) must not postpone the next full detection.
        if self._last_full is None or not 0 <= now - self._last_full < self.idle_detect_s - CLOCK_SLACK_S:
            return self._full(now, "idle")
        if motion.relearned:
            return self._full(now, "relearned")
        boxes = [*motion.boxes, *(face.area for face in tracked)]
        if not boxes:
            self.counters.add("frames_skipped_no_motion")
            return DetectPlan("skip", "no_motion")
        regions = plan_regions(boxes, frame_size, self.regions, self._scales(frame_size, motion.boxes, tracked))
        if regions_cost(regions, frame_size, self.max_side) > self.max_region_cost:
            return self._full(now, "cost")
        self.counters.add("frames_detected_regions")
        self.counters.add("regions_detected", len(regions))
        return DetectPlan("regions", "motion", tuple(regions))

    def _scales(self, frame_size: tuple[int, int], motion_boxes: Sequence[BBox], tracked: Sequence[TrackedFace]) -> list[float]:
        """Detection scales for the motion boxes, then the tracked faces' areas: a track's from its
        face's width; a moving blob around tracked faces the largest of theirs (its smallest face);
        other motion 1."""
        frame_scale = min(1.0, self.max_side / max(frame_size))
        track_scales = [face_scale(face.face[2], frame_scale, self.regions.face_px) for face in tracked]
        motion_scales = []
        for mx, my, mw, mh in motion_boxes:
            around = [
                scale
                for (fx, fy, fw, fh), scale in zip((face.face for face in tracked), track_scales)
                if mx <= fx + fw / 2 <= mx + mw and my <= fy + fh / 2 <= my + mh
                and mw <= PERSON_FACE_WIDTHS * fw and mh <= PERSON_FACE_HEIGHTS * fh
            ]
            motion_scales.append(max(around) if around else 1.0)
        return [*motion_scales, *track_scales]

    def _full(self, now: float, reason: str) -> DetectPlan:
        self._last_full = now
        self.counters.add(f"frames_detected_full_{reason}")
        return DetectPlan("full", reason)

