"""Detector benchmark: each backend on 640x480 and 1280x720 frames of the crowd clip, ms/frame.

  .venv/bin/python bench/detect.py            # 40 frames per size
  .venv/bin/python bench/detect.py --quick --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_daemon.config import DetectorConfig  # noqa: E402
from edge_daemon.detectors import create_detector  # noqa: E402

SHARED = ROOT.parent / "shared"
DEFAULT_CLIP = SHARED / "data" / "video" / "crowd" / "crowd_1080p.mp4"
YUNET = SHARED / "models" / "face_detection_yunet.onnx"


def read_frames(clip: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="10 frames per size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.clip.exists():
        parser.error(f"clip not found: {args.clip}")
    cv2.setNumThreads(1)  # as in the daemon's processes: one compute thread each
    frames = read_frames(args.clip, 10 if args.quick else args.frames)
    backends = [("yuface", DetectorConfig())]
    if YUNET.exists():
        backends.append(("yunet_onnx", DetectorConfig(backend="yunet_onnx", model_path=YUNET)))
    rows = []
    for width, height in ((640, 480), (1280, 720)):
        sized = [cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in frames]
        for name, config in backends:
            detector = create_detector(config.model_copy(update={"max_side": width}), separate_process=False)
            detector.detect(sized[0])  # warm-up
            times, faces = [], []
            for frame in sized:
                started = time.perf_counter()
                faces.append(len(detector.detect(frame)))
                times.append((time.perf_counter() - started) * 1000)
            rows.append(
                {
                    "detector": name,
                    "size": f"{width}x{height}",
                    "ms_p50": round(float(np.percentile(times, 50)), 1),
                    "ms_mean": round(float(np.mean(times)), 1),
                    "faces_per_frame": round(float(np.mean(faces)), 2),
                    "fps": round(1000 / float(np.mean(times)), 1),
                }
            )
    print(f"{len(frames)} frames of {args.clip.name}, one thread")
    print(f"{'detector':>12}  {'size':>9}  {'ms p50':>7}  {'ms mean':>7}  {'faces':>6}  {'fps':>6}")
    for row in rows:
        print(f"{row['detector']:>12}  {row['size']:>9}  {row['ms_p50']:>7}  {row['ms_mean']:>7}  {row['faces_per_frame']:>6}  {row['fps']:>6}")
    for size in ("640x480", "1280x720"):
        pair = {row["detector"]: row for row in rows if row["size"] == size}
        if len(pair) == 2:
            print(f"{size}: yunet_onnx is {pair['yuface']['ms_mean'] / pair['yunet_onnx']['ms_mean']:.2f}x the speed of yuface")
    if args.json:
        print(json.dumps({"clip": str(args.clip), "runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
