"""Where a tracked face will be: a constant-velocity Kalman filter over its box.

The state is the box's centre, width and height and their velocities, in pixels and pixels per
second, predicted to a frame's timestamp rather than counted in frames: when frames are dropped the
gap between detections grows, and the prediction (and its uncertainty) grows with it.

Every noise term is a multiple of the face's width. A face 4 m away moves as many of its own widths
per second as one 1 m away walking at the same pace, and detector jitter scales with the box, so
one set of constants holds for small and large faces alike.
"""

from __future__ import annotations

import numpy as np

from edge_daemon.messages import BBox

# Detector jitter, and the shift of the box as the head turns: a tenth of the face's width.
MEASUREMENT_SD = 0.1
# How fast a walker's velocity changes: about half a brisk pace (9 widths/s) within a second when
# stopping or turning. Larger lets a track that lost its face in a crowd take a passer-by's (the
# crowd clip showed such swaps at 10); smaller lags behind a walker who turns.
ACCELERATION_SD = 5.0
# Faces grow or shrink slowly: walking at 1.4 m/s towards a camera 3 m away grows the face by under
# half its width a second. Kept that small so the box's jitter (a small face's width varies
# between detections) is not taken for growth and extrapolated over a gap.
SIZE_SPEED_SD = 0.5
SIZE_ACCELERATION_SD = 0.5

_MEASURED = 4  # centre x, centre y, width, height
_IDENTITY = np.eye(2 * _MEASURED)
_POSITION = np.arange(_MEASURED)  # indices of the measured quantities, and of their velocities
_VELOCITY = _POSITION + _MEASURED
_ACCELERATION_VARIANCE = np.array([ACCELERATION_SD] * 2 + [SIZE_ACCELERATION_SD] * 2) ** 2


class FaceMotion:
    """One track's box as a constant-velocity state: [cx, cy, w, h, vx, vy, vw, vh]."""

    def __init__(self, bbox: BBox, at: float, max_speed: float):
        x, y, w, h = bbox
        self.at = at
        self.state = np.array([x + w / 2, y + h / 2, w, h, 0.0, 0.0, 0.0, 0.0])
        # A new track's velocity is unknown: anything up to max_speed widths per second, in any
        # direction, is within two standard deviations.
        speed_sd = max_speed / 2
        self.covariance = np.diag(
            np.array([MEASUREMENT_SD] * 4 + [speed_sd, speed_sd, SIZE_SPEED_SD, SIZE_SPEED_SD]) ** 2 * w**2
        )
        self._predicted: tuple[float, tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def width(self) -> float:
        return max(float(self.state[2]), 1.0)  # a long-coasting shrinking face must not reach 0

    def predict(self, at: float) -> tuple[np.ndarray, np.ndarray]:
        """The state and its covariance at time ``at`` (seconds, the clock of ``update``), without
        changing the track. The tracker asks several times per frame (gating, regions, ending), so
        the last answer is kept until the time or the state changes."""
        if self._predicted is not None and self._predicted[0] == at:
            return self._predicted[1]
        dt = max(at - self.at, 0.0)
        transition = _IDENTITY.copy()
        transition[_POSITION, _VELOCITY] = dt
        # White-noise acceleration: position takes dt^2/2 of it, velocity dt.
        accel = _ACCELERATION_VARIANCE * self.width**2
        noise = np.zeros((2 * _MEASURED, 2 * _MEASURED))
        noise[_POSITION, _POSITION] = accel * dt**4 / 4
        noise[_POSITION, _VELOCITY] = noise[_VELOCITY, _POSITION] = accel * dt**3 / 2
        noise[_VELOCITY, _VELOCITY] = accel * dt**2
        prediction = transition @ self.state, transition @ self.covariance @ transition.T + noise
        self._predicted = (at, prediction)
        return prediction

    def expected(self, at: float) -> tuple[np.ndarray, np.ndarray]:
        """The box [cx, cy, w, h] expected at ``at`` and its covariance, detector jitter included:
        what a detection of this face is compared with."""
        state, covariance = self.predict(at)
        return state[:_MEASURED], covariance[:_MEASURED, :_MEASURED] + _jitter(state[2])

    def update(self, bbox: BBox, at: float) -> None:
        """Fold in a detection of this face made at ``at``."""
        state, covariance = self.predict(at)
        innovation_covariance = covariance[:_MEASURED, :_MEASURED] + _jitter(state[2])
        x, y, w, h = bbox
        innovation = np.array([x + w / 2, y + h / 2, w, h]) - state[:_MEASURED]
        gain = covariance[:, :_MEASURED] @ np.linalg.inv(innovation_covariance)
        self.state = state + gain @ innovation
        self.covariance = covariance - gain @ covariance[:_MEASURED, :]
        self.at = at
        self._predicted = None


def _jitter(width: float) -> np.ndarray:
    return np.eye(_MEASURED) * (MEASUREMENT_SD * width) ** 2


def centre_distance(expected: np.ndarray, covariance: np.ndarray, bbox: BBox) -> float:
    """How far a detected box's centre is from the expected one, in standard deviations of the
    prediction (Mahalanobis): a gate that widens with the face's size and with the time unseen."""
    x, y, w, h = bbox
    offset = np.array([x + w / 2, y + h / 2]) - expected[:2]
    return float(np.sqrt(offset @ np.linalg.solve(covariance[:2, :2], offset)))


def centre_offset(expected: np.ndarray, bbox: BBox) -> float:
    """How far a detected box's centre is from the expected one, in expected face widths."""
    x, y, w, h = bbox
    return float(np.hypot(x + w / 2 - expected[0], y + h / 2 - expected[1]) / max(float(expected[2]), 1.0))


def _ratio(a: float, b: float) -> float:
    return max(a, b) / max(min(a, b), 1e-6)


def size_ratio(expected: np.ndarray, bbox: BBox, frame_width: float | None = None) -> float:
    """How much larger the larger of the expected and detected widths is (1 = the same). With
    ``frame_width``, the smaller of that and the ratio of the parts inside the frame's left and
    right edges: the detector's box of a face partly out of view is either the part in view or a
    guess at the whole face reaching past the edge, and a walker entering or leaving the frame
    does not become someone else by either."""
    predicted, detected = float(expected[2]), float(bbox[2])
    whole = _ratio(predicted, detected)
    if frame_width is None:
        return whole
    left = float(expected[0]) - predicted / 2
    in_view = [max(min(x + w, frame_width) - max(x, 0.0), 1.0) for x, w in ((left, predicted), (float(bbox[0]), detected))]
    return min(whole, _ratio(*in_view))
