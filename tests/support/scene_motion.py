"""What the motion-gating tests of several tiers share: the per-frame loop a camera runs."""

from __future__ import annotations

from edge_daemon.pipeline.detection import DetectRequest, detect_requests
from edge_daemon.pipeline.motion_gate import DetectionPolicy, SceneMotion

FPS = 5.0  # the default detect_fps


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
