"""Detection recall by face width, whole frame against regions, on 1080p crowd-clip frames.

Each sample is a real face (celeb24's aligned crops, ``tests/support/pasted_faces.py``) with a plain body
below it, pasted into a crowd-clip frame at a random place, having stepped one face width since
the previous frame (a slow walk at 5 detect-fps: a brisk one is nearer two). ``SceneMotion`` sees the previous and the current frame (the same background:
only this person moves), so the regions are where motion puts them. Per face width it prints:

- recall (a detection with IoU >= 0.4 with the face) and detector ms per frame for the whole frame
  (the daemon today: the frame shrunk to ``detector.max_side``), for the regions around the motion
  (none when motion missed the person: a miss), and for what ``DetectionPolicy`` does (the regions,
  or the whole frame when the regions would cost more: a person close to the camera, whose body
  fills much of the frame);
- the ratios regions/whole of the detector time, and the regions' planned cost (detector pixels).

Then whether batching helps the shared detection worker on this box: YuNet on ONNX Runtime with a
dynamic batch dimension (the converted model with its batch dimension freed, in memory) running a
batch of N images against N single calls.

  .venv/bin/python -m bench.regions                 # default detector (yunet), in this process
  .venv/bin/python -m bench.regions --faces 12 --widths 20 24 28
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from bench.common import CROWD_CLIP, argument_parser, read_frames, timed
from edge_daemon.config import DetectorConfig
from edge_daemon.detectors import create_detector
from edge_daemon.logs import configure_logging
from edge_daemon.pipeline.detection import DetectRequest, detect_requests
from edge_daemon.pipeline.motion_gate import DetectionPolicy, SceneMotion
from edge_daemon.pipeline.regions import RegionSettings, iou, plan_regions, regions_cost
from tests.support.pasted_faces import load_faces, paste

WIDTHS = (16, 20, 24, 28, 32, 40, 60, 80, 120)
HIT_IOU = 0.4
FPS = 5.0  # the default detect_fps
IDLE_DETECT_S = 3600.0  # no idle full detection within a sample's two frames
BODY_COLOUR = (70, 60, 55)  # a dark coat


def crowd_frames(count: int) -> list[np.ndarray]:
    frames = read_frames(CROWD_CLIP)
    if not frames:
        raise SystemExit(f"cannot read {CROWD_CLIP}")
    return [frames[i * len(frames) // count] for i in range(count)]


def person(background: np.ndarray, face, width: int, centre: tuple[float, float]) -> tuple[np.ndarray, tuple]:
    """The background with a person (a body, then the face over it); returns it and the face's box."""
    frame = background.copy()
    x, y = centre
    cv2.rectangle(frame, (round(x - 1.1 * width), round(y + 0.5 * width)), (round(x + 1.1 * width), round(y + 6.5 * width)), BODY_COLOUR, -1)
    return frame, paste(frame, face, width, centre)


def recall_by_width(detector, max_side: int, faces, backgrounds, widths, rng) -> list[dict]:
    settings = RegionSettings()
    rows = []
    for width in widths:
        hits = {"whole": 0, "regions": 0, "policy": 0}
        ms = {"whole": 0.0, "regions": 0.0, "policy": 0.0}
        cost, fallbacks, region_count, samples = 0.0, 0, 0, 0
        for index, background in enumerate(backgrounds):
            for face in faces:
                height, frame_width = background.shape[:2]
                margin = 2 * width + 20
                centre = (rng.uniform(margin, frame_width - margin), rng.uniform(margin, max(margin + 1, height - 7 * width)))
                before, _ = person(background, face, width, (centre[0] - width, centre[1]))
                frame, truth = person(background, face, width, centre)
                motion, policy = SceneMotion(), DetectionPolicy(IDLE_DETECT_S, max_side, settings)
                policy.plan(0.0, (frame_width, height), motion.update(before), [])  # the first frame's full detection
                moved = motion.update(frame)
                plan = policy.plan(1 / FPS, (frame_width, height), moved, [])
                regions = plan_regions(moved.boxes, (frame_width, height), settings)
                seconds_whole, whole = timed(lambda: detector.detect(frame))
                request = DetectRequest("bench", index, 0.0, frame, tuple(regions), mosaic_side=max_side)  # its mosaics packed when timed
                seconds_regions, (in_regions,) = timed(lambda: detect_requests(detector, [request]))
                ms_whole, ms_regions = seconds_whole * 1000, seconds_regions * 1000
                share = regions_cost(regions, (frame_width, height), max_side)
                fallback = plan.kind == "full"
                # 'skip' (motion missed the person) finds nothing: the idle full detection comes later.
                results = {"whole": whole, "regions": in_regions, "policy": whole if fallback else in_regions}
                for name, found in results.items():
                    hits[name] += any(iou(d.bbox, truth) >= HIT_IOU for d in found)
                ms["whole"] += ms_whole
                ms["regions"] += ms_regions
                ms["policy"] += ms_whole if fallback else ms_regions
                cost += share
                fallbacks += fallback
                region_count += len(regions)
                samples += 1
        rows.append(
            {
                "width": width,
                "samples": samples,
                **{f"recall_{name}": hits[name] / samples for name in hits},
                **{f"ms_{name}": ms[name] / samples for name in ms},
                "regions_per_frame": region_count / samples,
                "planned_cost": cost / samples,
                "fallback_share": fallbacks / samples,
            }
        )
    return rows


def print_recall(rows: list[dict]) -> None:
    print("recall (IoU >= 0.4) and detector ms per 1080p frame: whole frame vs regions around the motion")
    print(
        f"{'face px':>7} {'n':>4} | {'whole':>6} {'regions':>7} {'policy':>6} | {'ms whole':>8} {'ms regions':>10} "
        f"{'ms policy':>9} | {'time regions/whole':>18} {'policy/whole':>12} | {'regions':>7} {'planned cost':>12} {'whole by cost':>13}"
    )
    for row in rows:
        print(
            f"{row['width']:>7} {row['samples']:>4} | {row['recall_whole']:>6.0%} {row['recall_regions']:>7.0%} {row['recall_policy']:>6.0%} | "
            f"{row['ms_whole']:>8.1f} {row['ms_regions']:>10.1f} {row['ms_policy']:>9.1f} | "
            f"{row['ms_regions'] / row['ms_whole']:>18.2f} {row['ms_policy'] / row['ms_whole']:>12.2f} | "
            f"{row['regions_per_frame']:>7.2f} {row['planned_cost']:>12.2f} {row['fallback_share']:>13.0%}"
        )


def batching(repeats: int) -> None:
    """Batch of N against N single calls of YuNet on ONNX Runtime, one thread (as the detector runs)."""
    import onnx

    from edge_daemon.models.onnx import onnx_session
    from edge_daemon.models.prepare.store import ModelStore

    model = onnx.load(str(ModelStore(None).path("yunet")))
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    session = onnx_session(model.SerializeToString(), 1)
    # Names from the converted model itself, whatever the converter calls them.
    input_name, outputs = model.graph.input[0].name, [output.name for output in model.graph.output]
    rng = np.random.default_rng(0)
    print("\nbatching YuNet on ONNX Runtime (1 thread): ms for N images, best of", repeats)
    print(f"{'input':>9} {'N':>2} | {'one batch':>9} {'N singles':>9} | {'batch/singles':>13}")
    for height, width, count in ((320, 320, 4), (384, 640, 2), (384, 640, 4)):
        images = rng.uniform(0, 255, (count, height, width, 3)).astype(np.float32)
        batch, single = [], []
        for _ in range(repeats):
            seconds, _ = timed(lambda: session.run(outputs, {input_name: images}))
            batch.append(seconds * 1000)
            seconds, _ = timed(lambda: [session.run(outputs, {input_name: images[i : i + 1]}) for i in range(count)])
            single.append(seconds * 1000)
        print(f"{width:>4}x{height:<4} {count:>2} | {min(batch):>9.1f} {min(single):>9.1f} | {min(batch) / min(single):>13.2f}")


def main() -> int:
    parser = argument_parser(__doc__, json=False)
    parser.add_argument("--faces", type=int, default=24, help="people (celeb24 has 24)")
    parser.add_argument("--frames", type=int, default=2, help="crowd-clip frames; every face is pasted once into each")
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    parser.add_argument("--batch-repeats", type=int, default=5)
    args = parser.parse_args()
    configure_logging("warning")
    config = DetectorConfig()
    detector = create_detector(config, separate_process=False)
    faces = load_faces(detector, args.faces)
    print(f"detector {detector.name} (max_side {config.max_side}), in this process; regions {RegionSettings()}")
    print_recall(recall_by_width(detector, config.max_side, faces, crowd_frames(args.frames), args.widths, np.random.default_rng(0)))
    batching(args.batch_repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
