"""Anchor: the classic face_recognition-style loop against edge-daemon, side by side, same clip.

The loop (as in face_recognition's realtime example): every frame is downscaled, dlib's HOG
detector runs on it (upsample 1, the library's default), and every face found is embedded by
dlib's ResNet (5-point landmarks) and compared with the gallery -- every face, every frame.
edge-daemon: YuNet detection on every frame (detect_fps = the clip's rate, nothing dropped),
tracking, and embedding only when it helps.

Printed per configuration: video frames per second processed, faces found per frame, faces
embedded. A speed figure only counts next to the faces it found: the comparison is made against
the loop configuration that finds at least as many faces per frame as edge-daemon, or the most.

  .venv/bin/python -m bench.anchor                 # crowd clip, 40 frames for the loop
  .venv/bin/python -m bench.anchor --quick --json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import CROWD_CLIP, argument_parser, clip_facts
from edge_daemon.config import Settings
from edge_daemon.logs import configure_logging
from edge_daemon.pipeline.daemon import Daemon


def face_recognition_loop(clip: Path, scale: float, frames: int) -> dict:
    import dlib
    import face_recognition_models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    network = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    capture = cv2.VideoCapture(str(clip))
    found = embedded = processed = 0
    started = time.perf_counter()
    while processed < frames:
        ok, frame = capture.read()
        if not ok:
            break
        small = cv2.resize(frame, None, fx=scale, fy=scale) if scale != 1 else frame
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        boxes = detector(rgb, 1)
        for box in boxes:
            network.compute_face_descriptor(rgb, predictor(rgb, box))
        found += len(boxes)
        embedded += len(boxes)
        processed += 1
    seconds = time.perf_counter() - started
    return {
        "pipeline": f"face_recognition loop, scale {scale:g}",
        "frames": processed,
        "video_fps": round(processed / seconds, 2),
        "faces_per_frame": round(found / max(processed, 1), 2),
        "faces_embedded": embedded,
        "embedded_per_frame": round(embedded / max(processed, 1), 2),
    }


def edge_daemon_run(clip: Path, fps: float, frames: int, track: bool) -> dict:
    tracker = {} if track else {"max_attempts": 50, "better_face_ratio": 0.0}
    settings = Settings(
        cameras=[{"name": "anchor", "url": str(clip), "realtime": False, "detect_fps": fps}],
        events={"jsonl": ""},
        tracker=tracker,
        detector={"min_face_px": 0, "min_sharpness": 0, "max_yaw": 100} if not track else {},
    )
    daemon = Daemon(settings)
    started = time.perf_counter()
    daemon.start()
    daemon.cameras[0].join()
    daemon.shutdown()
    seconds = time.perf_counter() - started
    camera = daemon.stats()["cameras"]["anchor"]
    processed = camera.get("frames_processed", 0)
    embedded = daemon.stats()["embedder"].get("faces_embedded", 0)
    return {
        "pipeline": "edge-daemon, tracking" if track else "edge-daemon, embed every face",
        "frames": processed,
        "video_fps": round(processed / seconds, 2),
        "faces_per_frame": round(camera.get("faces_detected", 0) / max(processed, 1), 2),
        "faces_embedded": embedded,
        "embedded_per_frame": round(embedded / max(processed, 1), 2),
    }


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--clip", type=Path, default=CROWD_CLIP)
    parser.add_argument("--loop-frames", type=int, default=40, help="frames the (slow) loop configurations process")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--quick", action="store_true", help="10 loop frames, scales 0.25 and 0.5")
    args = parser.parse_args()
    if not args.clip.exists():
        parser.error(f"clip not found: {args.clip}")
    configure_logging("warning")
    native_fps = clip_facts(args.clip)[1]
    loop_frames, scales = (10, [0.25, 0.5]) if args.quick else (args.loop_frames, args.scales)
    rows = [face_recognition_loop(args.clip, scale, loop_frames) for scale in scales]
    ours = edge_daemon_run(args.clip, native_fps, 10**9, track=True)
    rows.append(ours)
    if not args.quick:
        rows.append(edge_daemon_run(args.clip, native_fps, 10**9, track=False))
    print(f"clip {args.clip.name} ({native_fps:g} fps); the loop processes {loop_frames} frames, edge-daemon the whole clip")
    print(f"{'pipeline':>38} {'frames':>6} {'video fps':>9} {'faces/frame':>11} {'embedded':>8} {'emb/frame':>9}")
    for row in rows:
        print(f"{row['pipeline']:>38} {row['frames']:>6} {row['video_fps']:>9} {row['faces_per_frame']:>11} "
              f"{row['faces_embedded']:>8} {row['embedded_per_frame']:>9}")
    loops = [row for row in rows if row["pipeline"].startswith("face_recognition")]
    matching = [row for row in loops if row["faces_per_frame"] >= ours["faces_per_frame"]]
    reference = max(matching, key=lambda r: r["video_fps"]) if matching else max(loops, key=lambda r: r["faces_per_frame"])
    speedup = ours["video_fps"] / reference["video_fps"]
    qualifier = "finds at least as many faces" if matching else "finds the most faces, still fewer than edge-daemon"
    print(f"edge-daemon vs '{reference['pipeline']}' ({qualifier}): {speedup:.1f}x the video frames per second")
    if args.json:
        print(json.dumps({"clip": str(args.clip), "runs": rows, "reference": reference["pipeline"], "speedup": round(speedup, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
