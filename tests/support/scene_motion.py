"""What the motion-gating tests of several tiers share: a static noisy scene and the per-frame loop a camera runs."""

from __future__ import annotations

import numpy as np
import pytest

from edge_daemon.pipeline.detection import DetectRequest, detect_requests
from edge_daemon.pipeline.motion_gate import DetectionPolicy, SceneMotion
from tests.support.walking_clip import background

FPS = 5.0  # the default detect_fps
IDLE_DETECT_S = 4.0
NOISE_SD = 6.0  # grey levels of sensor noise per pixel and frame: a cheap camera in dim light


def run(frames, policy: DetectionPolicy, motion: SceneMotion, detector=None) -> list:
    """The per-frame loop a camera runs: motion, plan, then the plan's detection."""
    plans = []
    for index, frame in enumerate(frames):
        now = index / FPS
        height, width = frame.shape[:2]
        plan = policy.plan(now, (width, height), motion.update(frame), [])
        found = []
        if detector is not None and plan.kind == "full":
            found = detector.detect(frame)
        elif detector is not None and plan.kind == "regions":
            (found,) = detect_requests(detector, [DetectRequest("test", index, now, frame, plan.regions)])
        plans.append((now, plan, found))
    return plans


def noisy(scene: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(scene + rng.normal(0.0, NOISE_SD, scene.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """The walking clip's empty background: a static view for motion to be measured against."""
    return background().astype(np.float32)
