"""Detector benchmark: the default ``yunet`` (libfacedetection's YuNet on ONNX Runtime) against
``yuface`` (libfacedetection's own compiled code, the default before), side by side in one run,
one compute thread each, frames handed to the detectors in turn so that load on the machine falls
on all alike:

1. recall and precision on ../shared/data/photos/dlib_boxes (43 hand-drawn boxes, IoU >= 0.4);
2. recall by face width on a distance set made here: aligned 112-px faces from train/celeb24
   pasted into crowd-clip 1080p frames so that the face spans 16-120 px (seeded; nothing written);
3. ms per 1080p crowd frame at the daemon's settings (the downscale to max_side included);
4. agreement with yuface frame by frame on the Hamilton and crowd clips (IoU >= 0.5), and the
   largest box and landmark difference in frame pixels;
5. ms per frame at 640x480 and 1280x720 (the frame's own size as max_side), with ``yunet_onnx``
   (OpenCV's FaceDetectorYN) too where ../shared/models/face_detection_yunet.onnx exists;
6. the same distance set with motion: each face one width further left in the frame before, and
   the regions ``DetectionPolicy`` plans from it detected, against the whole frame (``yunet``);
7. with ``--cost-model``: what a call to the daemon's detector process costs beside its network's
   pixels (a fixed cost per call, and shrinking per source pixel), fitted over crops of a crowd
   frame, against ``regions.CALL_COST_PX`` and ``SHRINK_COST_PER_PX``, which the policy prices by;
8. with ``--lfw`` (about a minute here): whether every LFW View 1 dev image (4,992) gives ``yunet``
   exactly yuface's detections, which is what keeps the embedders' LFW accuracy and calibrated
   thresholds as they were measured.

``yunet`` is also run at max_side 960 and 1280, to show what a larger detection size buys. Needs
yuface (x86_64, CPython 3.10-3.11) and ../shared/data.

  .venv/bin/python -m bench.detect
  .venv/bin/python -m bench.detect --quick --json
  .venv/bin/python -m bench.detect --lfw
  .venv/bin/python -m bench.detect --regions-only     # section 6 alone (no yuface needed)
  .venv/bin/python -m bench.detect --cost-model       # section 7 alone (no yuface needed)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # yuface's OpenMP pool, as in the daemon's processes

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import CROWD_CLIP, DATA, HAMILTON_CLIP, LFW, YUNET_ONNX, argument_parser, read_frames  # noqa: E402
from edge_daemon.config import DetectorConfig  # noqa: E402
from edge_daemon.detectors import create_detector  # noqa: E402
from edge_daemon.evaluation.lfw import lfw_image_path, read_pairs  # noqa: E402
from edge_daemon.pipeline.regions import iou  # noqa: E402
from edge_daemon.recognition.images import load_image  # noqa: E402

DLIB_BOXES = DATA / "photos" / "dlib_boxes"
FACES = DATA / "train" / "celeb24"

REFERENCE = "yuface@640"
VARIANTS = {
    REFERENCE: DetectorConfig(backend="yuface"),
    "yunet@640": DetectorConfig(backend="yunet"),
    "yunet@960": DetectorConfig(backend="yunet", max_side=960),
    "yunet@1280": DetectorConfig(backend="yunet", max_side=1280),
}
WIDTHS = (16, 20, 24, 28, 32, 40, 48, 64, 80, 96, 120)
GOAL_WIDTH = 24  # the goal: recall of faces at least this wide in 1080p
SMALL_WIDTHS = (20, 30)  # the regions' goal: faces this wide in 1080p
# Where the face sits in an aligned 112-px crop (x, y, w, h as shares of the crop): yuface's box on
# 42 celeb24 crops shown at 224 px on a plain background (width 0.707 +- 0.035).
FACE_IN_CROP = (0.15, 0.09, 0.71, 0.93)
CELLS = (4, 3)  # faces per distance frame: one in each cell of this grid
MATCH_IOU = 0.4
AGREE_IOU = 0.5


def greedy_matches(truth: list, found: list, min_iou: float) -> list[tuple[int, int]]:
    """(truth index, found index) pairs, each truth box taking its best unused detection."""
    pairs, used = [], set()
    for i, box in enumerate(truth):
        overlap, best = max(((iou(box, f), j) for j, f in enumerate(found) if j not in used), default=(0.0, None))
        if overlap >= min_iou:
            pairs.append((i, best))
            used.add(best)
    return pairs


def in_turn(detectors: dict, images: list[np.ndarray]) -> tuple[dict, dict]:
    """Every detector on every image, the detectors taking turns per image: detections and ms."""
    found = {name: [] for name in detectors}
    times = {name: [] for name in detectors}
    for image in images:
        for name, detector in detectors.items():
            started = time.perf_counter()
            found[name].append(detector.detect(image))
            times[name].append((time.perf_counter() - started) * 1000)
    return found, times


def dlib_boxes(detectors: dict) -> dict:
    images, truth = [], []
    for xml in ("training.xml", "testing.xml"):
        for node in ET.parse(DLIB_BOXES / xml).getroot().iter("image"):
            images.append(cv2.imread(str(DLIB_BOXES / node.get("file"))))
            truth.append([tuple(float(b.get(k)) for k in ("left", "top", "width", "height")) for b in node.iter("box")])
    found, _ = in_turn(detectors, images)
    rows = {}
    for name in detectors:
        boxes = [[d.bbox for d in frame] for frame in found[name]]
        matched = sum(len(greedy_matches(t, f, MATCH_IOU)) for t, f in zip(truth, boxes))
        detected = sum(len(f) for f in boxes)
        total = sum(len(t) for t in truth)
        rows[name] = {"boxes": total, "found": matched, "recall": matched / total, "precision": matched / max(detected, 1)}
    return rows


def distance_set(backgrounds: list[np.ndarray], frames_per_width: int, seed: int) -> list[tuple]:
    """(face width, 1080p frame, face boxes, the frame before): celeb24 faces pasted one per grid
    cell; in the frame before, each face one face width further left (a slow walk at 5 detect-fps),
    for the motion that plans regions."""
    rng = np.random.default_rng(seed)
    photos = sorted(FACES.glob("*/*.jpg"))
    columns, rows = CELLS
    made = []
    for width in WIDTHS:
        crop_size = round(width / FACE_IN_CROP[2])
        for _ in range(frames_per_width):
            background = backgrounds[rng.integers(len(backgrounds))]
            frame, before = background.copy(), background.copy()
            cell_w, cell_h = frame.shape[1] // columns, frame.shape[0] // rows
            boxes = []
            for cell in range(columns * rows):
                face = cv2.imread(str(photos[rng.integers(len(photos))]))
                face = cv2.resize(face, (crop_size, crop_size), interpolation=cv2.INTER_AREA)
                x = (cell % columns) * cell_w + int(rng.integers(0, cell_w - crop_size))
                y = (cell // columns) * cell_h + int(rng.integers(0, cell_h - crop_size))
                frame[y:y + crop_size, x:x + crop_size] = face
                earlier = max(0, x - width)
                before[y:y + crop_size, earlier:earlier + crop_size] = face
                fx, fy, fw, fh = FACE_IN_CROP
                boxes.append((x + fx * crop_size, y + fy * crop_size, fw * crop_size, fh * crop_size))
            made.append((width, frame, boxes, before))
    return made


def distance_recall(detectors: dict, frames_per_width: int, seed: int) -> dict:
    made = distance_set(read_frames(CROWD_CLIP), frames_per_width, seed)
    found, _ = in_turn(detectors, [frame for _, frame, _, _ in made])
    result = {}
    for name in detectors:
        by_width = {width: [0, 0] for width in WIDTHS}
        for (width, _, boxes, _), detections in zip(made, found[name]):
            by_width[width][0] += len(greedy_matches(boxes, [d.bbox for d in detections], MATCH_IOU))
            by_width[width][1] += len(boxes)
        at_goal = [v for w, v in by_width.items() if w >= GOAL_WIDTH]
        result[name] = {
            "by_width": {w: hit / total for w, (hit, total) in by_width.items()},
            "faces_per_width": by_width[WIDTHS[0]][1],
            f"recall_{GOAL_WIDTH}px_up": sum(h for h, _ in at_goal) / sum(t for _, t in at_goal),
        }
    return result


def distance_regions(detector, full_size, max_side: int, frames_per_width: int, seed: int) -> dict:
    """The distance set as the daemon detects it when people move: the whole frame at ``max_side``
    and at full size (``full_size``, the detector without a downscale); the regions the motion
    between each frame and the one before plans, all of them, packed into mosaics as the daemon
    packs them; and what ``DetectionPolicy`` does (those regions, or the whole frame where they
    would cost more than it). Recall and detector ms per frame, by width."""
    from edge_daemon.pipeline.detection import DetectRequest, detect_requests
    from edge_daemon.pipeline.motion_gate import DetectionPolicy, SceneMotion
    from edge_daemon.pipeline.regions import RegionSettings, plan_regions

    kinds = ("whole", "whole_full", "regions", "policy")
    rows = {width: {**{kind: [0, 0.0] for kind in kinds}, "faces": 0, "full": 0} for width in WIDTHS}
    for width, frame, boxes, before in distance_set(read_frames(CROWD_CLIP), frames_per_width, seed):
        size = frame.shape[1], frame.shape[0]
        motion, policy = SceneMotion(), DetectionPolicy(3600.0, max_side)
        policy.plan(0.0, size, motion.update(before), [])  # the first frame: whole
        moved = motion.update(frame)
        plan = policy.plan(0.2, size, moved, [])
        regions = plan_regions(moved.boxes, size, RegionSettings())
        request = DetectRequest("bench", 0, 0.0, frame, tuple(regions), mosaic_side=max_side)  # its mosaics packed when timed
        found = {}
        for kind, call in (("whole", lambda: detector.detect(frame)),
                           ("whole_full", lambda: full_size.detect(frame)),
                           ("regions", lambda: detect_requests(detector, [request])[0] if regions else [])):
            started = time.perf_counter()
            found[kind] = (call(), (time.perf_counter() - started) * 1000)
        found["policy"] = found["whole"] if plan.kind == "full" else found["regions"]
        row = rows[width]
        for kind, (detections, ms) in found.items():
            row[kind][0] += len(greedy_matches(boxes, [d.bbox for d in detections], MATCH_IOU))
            row[kind][1] += ms
        row["faces"] += len(boxes)
        row["full"] += plan.kind == "full"
    return {
        width: {**{f"recall_{kind}": r[kind][0] / r["faces"] for kind in kinds},
                **{f"ms_{kind}": r[kind][1] / frames_per_width for kind in kinds},
                "faces": r["faces"], "policy_whole_frames": r["full"], "frames": frames_per_width}
        for width, r in rows.items()
    }


def agreement(detectors: dict, clip: Path, step: int) -> dict:
    """Each detector against the reference, frame by frame."""
    found, times = in_turn(detectors, read_frames(clip, step=step))
    reference = found[REFERENCE]
    rows = {}
    for name in detectors:
        matched = mine = theirs = 0
        box_px, landmark_px = [0.0], [0.0]  # per matched face: the largest coordinate difference
        for ours, ref in zip(found[name], reference):
            pairs = greedy_matches([d.bbox for d in ref], [d.bbox for d in ours], AGREE_IOU)
            matched += len(pairs)
            mine += len(ours)
            theirs += len(ref)
            for i, j in pairs:
                box_px.append(float(np.abs(np.subtract(ref[i].bbox, ours[j].bbox)).max()))
                landmark_px.append(float(np.abs(ref[i].landmarks - ours[j].landmarks).max()))
        rows[name] = {
            "frames": len(reference),
            "faces": mine,
            "yuface_faces": theirs,
            "of_yuface_found": matched / max(theirs, 1),
            "of_own_in_yuface": matched / max(mine, 1),
            "max_box_px": round(max(box_px), 2),
            "median_box_px": round(float(np.median(box_px[1:] or box_px)), 2),
            "max_landmark_px": round(max(landmark_px), 2),
            "ms_mean": float(np.mean(times[name])),
        }
    return rows


def frame_cost(detectors: dict, frames: list[np.ndarray]) -> dict:
    for detector in detectors.values():
        detector.detect(frames[0])  # warm-up
    found, times = in_turn(detectors, frames)
    return {
        name: {
            "ms_p50": float(np.percentile(times[name], 50)),
            "ms_mean": float(np.mean(times[name])),
            "faces_per_frame": float(np.mean([len(f) for f in found[name]])),
        }
        for name in detectors
    }


def sized_cost(frames: list[np.ndarray]) -> list[dict]:
    backends = {"yuface": DetectorConfig(backend="yuface"), "yunet": DetectorConfig(backend="yunet")}
    if YUNET_ONNX.exists():
        backends["yunet_onnx"] = DetectorConfig(backend="yunet_onnx", model_path=YUNET_ONNX)
    rows = []
    for width, height in ((640, 480), (1280, 720)):
        sized = [cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in frames]
        detectors = {
            name: create_detector(config.model_copy(update={"max_side": width}), separate_process=False)
            for name, config in backends.items()
        }
        for name, row in frame_cost(detectors, sized).items():
            rows.append({"detector": name, "size": f"{width}x{height}", **row})
    return rows


def lfw_identity(detectors: dict) -> dict:
    """Images of the LFW View 1 dev pairs where each detector's detections equal the reference's."""
    keys = sorted({
        key
        for name in ("pairsDevTrain.txt", "pairsDevTest.txt")
        for pair in read_pairs(LFW / "_protocol" / name).pairs
        for key in (pair.first, pair.second)
    })
    identical = {name: 0 for name in detectors}
    for key in keys:
        found, _ = in_turn(detectors, [load_image(lfw_image_path(LFW, *key))])
        rows = {name: [(d.bbox, d.landmarks.tolist(), d.score) for d in faces[0]] for name, faces in found.items()}
        for name in detectors:
            identical[name] += rows[name] == rows[REFERENCE]
    return {"images": len(keys), "identical": identical}


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference else "-"


def report(results: dict) -> None:
    names = list(VARIANTS)
    print(f"\n1. dlib_boxes ({results['dlib_boxes'][REFERENCE]['boxes']} boxes, IoU >= {MATCH_IOU})")
    print(f"{'detector':>11}  {'found':>5}  {'recall':>6}  {'precision':>9}  {'recall / yuface':>15}")
    ref = results["dlib_boxes"][REFERENCE]
    for name, row in results["dlib_boxes"].items():
        print(f"{name:>11}  {row['found']:>5}  {row['recall']:>6.3f}  {row['precision']:>9.3f}  {ratio(row['recall'], ref['recall']):>15}")

    distance = results["distance"]
    per = distance[REFERENCE]["faces_per_width"]
    print(f"\n2. recall by face width, 1080p crowd frames, {per} pasted faces per width (IoU >= {MATCH_IOU})")
    print(f"{'width px':>8}  " + "  ".join(f"{n:>10}" for n in names))
    for width in WIDTHS:
        print(f"{width:>8}  " + "  ".join(f"{distance[n]['by_width'][width]:>10.3f}" for n in names))
    key = f"recall_{GOAL_WIDTH}px_up"
    print(f"{'>= ' + str(GOAL_WIDTH):>8}  " + "  ".join(f"{distance[n][key]:>10.3f}" for n in names))
    print(f"{'/ yuface':>8}  " + "  ".join(f"{ratio(distance[n][key], distance[REFERENCE][key]):>10}" for n in names))

    cost = results["cost_1080p"]
    print(f"\n3. ms per 1080p crowd frame (downscale included), one thread, {results['cost_frames']} frames")
    print(f"{'detector':>11}  {'ms p50':>7}  {'ms mean':>7}  {'faces':>6}  {'cost / yuface':>13}")
    for name, row in cost.items():
        print(f"{name:>11}  {row['ms_p50']:>7.1f}  {row['ms_mean']:>7.1f}  {row['faces_per_frame']:>6.2f}  "
              f"{ratio(row['ms_mean'], cost[REFERENCE]['ms_mean']):>13}")

    print("\n4. agreement with yuface@640, frame by frame (IoU >= 0.5)")
    print(f"{'clip':>9}  {'detector':>11}  {'frames':>6}  {'faces':>6}  {'yuface':>6}  {'of yuface found':>15}  "
          f"{'own in yuface':>13}  {'median box px':>13}  {'max box px':>10}  {'max lm px':>9}")
    for clip, rows in results["agreement"].items():
        for name, row in rows.items():
            print(f"{clip:>9}  {name:>11}  {row['frames']:>6}  {row['faces']:>6}  {row['yuface_faces']:>6}  "
                  f"{row['of_yuface_found']:>15.3f}  {row['of_own_in_yuface']:>13.3f}  {row['median_box_px']:>13}  "
                  f"{row['max_box_px']:>10}  {row['max_landmark_px']:>9}")

    print("\n5. ms per frame at the frame's own size (max_side = width), one thread")
    print(f"{'detector':>11}  {'size':>9}  {'ms p50':>7}  {'ms mean':>7}  {'faces':>6}  {'speed / yuface':>14}")
    by_size = {}
    for row in results["sized"]:
        by_size.setdefault(row["size"], {})[row["detector"]] = row
    for size, rows in by_size.items():
        for name, row in rows.items():
            print(f"{name:>11}  {size:>9}  {row['ms_p50']:>7.1f}  {row['ms_mean']:>7.1f}  {row['faces_per_frame']:>6.2f}  "
                  f"{ratio(rows['yuface']['ms_mean'], row['ms_mean']):>14}")
    report_distance_regions(results["distance_regions"])
    if "lfw" in results:
        lfw = results["lfw"]
        print(f"\n8. LFW View 1 dev images whose detections equal yuface@640's: of {lfw['images']}")
        for name, count in lfw["identical"].items():
            print(f"{name:>11}  {count}")


COST_MODEL_SIZES = ((64, 64), (128, 128), (256, 128), (256, 256), (384, 256), (384, 384), (640, 384))


def cost_model(repeats: int = 40) -> dict:
    """The daemon's detector (its own process, as the daemon runs it) timed on crops of a crowd
    frame no larger than max_side, in turn, median of ``repeats``: a straight line through ms
    against the network's pixels gives a call's fixed cost and the cost of a pixel; shrinking a
    1080p frame to max_side, timed alone, gives the cost of a source pixel shrunk."""
    from edge_daemon.pipeline.regions import CALL_COST_PX, SHRINK_COST_PER_PX, detector_pixels

    config = VARIANTS["yunet@640"]
    detector = create_detector(config)
    try:
        frame = read_frames(CROWD_CLIP, 1)[0]
        crops = {size: np.ascontiguousarray(frame[:size[1], :size[0]]) for size in COST_MODEL_SIZES}
        times: dict = {size: [] for size in crops}
        for _ in range(repeats + 2):  # the first two rounds warm the detector up
            for size, crop in crops.items():
                started = time.perf_counter()
                detector.detect(crop)
                times[size].append(time.perf_counter() - started)
    finally:
        detector.close()
    pixels = np.array([detector_pixels(*size, config.max_side) for size in crops])
    ms = np.array([1000 * float(np.median(t[2:])) for t in times.values()])
    ms_per_px, call_ms = np.polyfit(pixels, ms, 1)
    height, width = frame.shape[:2]
    small = (config.max_side, round(height * config.max_side / width))
    started = time.perf_counter()
    for _ in range(repeats):
        cv2.resize(frame, small, interpolation=cv2.INTER_AREA)
    shrink_ms_per_px = 1000 * (time.perf_counter() - started) / repeats / (width * height)
    return {
        "ms_by_size": {f"{w}x{h}": round(float(v), 3) for (w, h), v in zip(crops, ms)},
        "call_ms": round(float(call_ms), 3),
        "ms_per_megapixel": round(float(ms_per_px) * 1e6, 2),
        "shrink_ms_per_source_megapixel": round(shrink_ms_per_px * 1e6, 2),
        "call_cost_px": round(float(call_ms / ms_per_px)),
        "shrink_cost_per_px": round(float(shrink_ms_per_px / ms_per_px), 4),
        "shipped": {"call_cost_px": CALL_COST_PX, "shrink_cost_per_px": SHRINK_COST_PER_PX},
    }


def report_cost_model(model: dict) -> None:
    print("\n7. what a call to the detector process costs (median ms per crop size, one compute thread):")
    print("  " + "  ".join(f"{size} {ms:.2f}" for size, ms in model["ms_by_size"].items()))
    print(f"fit: {model['call_ms']:.2f} ms a call + {model['ms_per_megapixel']:.1f} ms per megapixel of network input; "
          f"shrinking {model['shrink_ms_per_source_megapixel']:.2f} ms per source megapixel")
    print(f"in network pixels: a call {model['call_cost_px']}, a source pixel shrunk {model['shrink_cost_per_px']} "
          f"(shipped: {model['shipped']['call_cost_px']}, {model['shipped']['shrink_cost_per_px']})")


def report_distance_regions(regions: dict) -> None:
    print("\n6. the distance set with motion (each of the 12 faces one width further left in the frame before), yunet@640: "
          "recall of the whole frame (at 640 and at full size), of all the regions the motion plans (in mosaics), and of "
          "what DetectionPolicy detects (the regions, or the whole frame where they would cost more)")
    print(f"{'width px':>8}  {'whole':>6}  {'full':>6}  {'regions':>7}  {'policy':>6}  {'ms whole':>8}  {'ms full':>7}  "
          f"{'ms regions':>10}  {'regions / whole':>15}  {'regions / full':>14}  {'ms policy':>9}  {'policy whole':>12}")
    for width, row in regions.items():
        print(f"{width:>8}  {row['recall_whole']:>6.3f}  {row['recall_whole_full']:>6.3f}  {row['recall_regions']:>7.3f}  "
              f"{row['recall_policy']:>6.3f}  {row['ms_whole']:>8.1f}  {row['ms_whole_full']:>7.1f}  {row['ms_regions']:>10.1f}  "
              f"{row['ms_regions'] / max(row['ms_whole'], 1e-9):>15.2f}  {row['ms_regions'] / max(row['ms_whole_full'], 1e-9):>14.2f}  "
              f"{row['ms_policy']:>9.1f}  {row['policy_whole_frames']:>5} of {row['frames']:<4}")
    pooled = [row for width, row in regions.items() if SMALL_WIDTHS[0] <= width <= SMALL_WIDTHS[1]]
    if pooled:
        faces = sum(row["faces"] for row in pooled)
        print(f"faces {SMALL_WIDTHS[0]}-{SMALL_WIDTHS[1]} px, pooled: " + ", ".join(
            f"{kind} {sum(row[f'recall_{kind}'] * row['faces'] for row in pooled) / faces:.3f}"
            f" ({sum(row[f'ms_{kind}'] for row in pooled) / len(pooled):.1f} ms)" for kind in ("whole", "whole_full", "regions", "policy")))


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--frames", type=int, default=40, help="crowd frames for the cost figures")
    parser.add_argument("--distance-frames", type=int, default=6, help="distance-set frames per face width")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="10 cost frames, 2 distance frames per width, every 4th clip frame")
    parser.add_argument("--lfw", action="store_true", help="also compare detections on the LFW View 1 dev images")
    parser.add_argument("--regions-only", action="store_true", help="only section 6 (no yuface needed)")
    parser.add_argument("--cost-model", action="store_true", help="only section 7 (no yuface needed)")
    args = parser.parse_args()
    for path in (CROWD_CLIP, HAMILTON_CLIP, DLIB_BOXES, FACES, *([LFW] if args.lfw else [])):
        if not path.exists():
            parser.error(f"shared data not found: {path}")
    cv2.setNumThreads(1)  # as in the daemon's processes: one compute thread each
    if args.cost_model:
        model = cost_model()
        report_cost_model(model)
        if args.json:
            print(json.dumps({"cost_model": model}))
        return 0
    if not args.regions_only:
        try:
            import yuface  # noqa: F401
        except ImportError:
            parser.error("the reference, yuface, is not installed (its wheels are for x86_64 CPython 3.10-3.11)")
    cost_frames = 10 if args.quick else args.frames
    distance_frames = 2 if args.quick else args.distance_frames
    full_size = create_detector(DetectorConfig(backend="yunet", max_side=max(read_frames(CROWD_CLIP, 1)[0].shape[:2])),
                                separate_process=False)
    if args.regions_only:
        detector = create_detector(VARIANTS["yunet@640"], separate_process=False)
        results = {"distance_regions": distance_regions(detector, full_size, VARIANTS["yunet@640"].max_side,
                                                        distance_frames, args.seed)}
        report_distance_regions(results["distance_regions"])
        if args.json:
            print(json.dumps(results))
        return 0
    detectors = {name: create_detector(config, separate_process=False) for name, config in VARIANTS.items()}
    crowd = read_frames(CROWD_CLIP, cost_frames)
    step = 4 if args.quick else 1
    results = {
        "cost_frames": len(crowd),
        "cost_1080p": frame_cost(detectors, crowd),
        "dlib_boxes": dlib_boxes(detectors),
        "distance": distance_recall(detectors, 2 if args.quick else args.distance_frames, args.seed),
        "agreement": {"hamilton": agreement(detectors, HAMILTON_CLIP, step), "crowd": agreement(detectors, CROWD_CLIP, step)},
        "sized": sized_cost(crowd),
        "distance_regions": distance_regions(
            detectors["yunet@640"], full_size, VARIANTS["yunet@640"].max_side, distance_frames, args.seed
        ),
    }
    if args.lfw:
        results["lfw"] = lfw_identity({name: detectors[name] for name in (REFERENCE, "yunet@640")})
    report(results)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
