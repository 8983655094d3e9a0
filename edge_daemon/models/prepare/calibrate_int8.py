"""Measure the activation ranges an int8 model is quantised with, on training faces (a maintainer's
step, done once per float model; ``models prepare`` then quantises with the stored ranges):

    .venv/bin/python -m edge_daemon.models.prepare.calibrate_int8 ../shared/data/train/pins14

Faces: the photos under DIR (any depth), one face each (photos with none or several are passed
over), detected by the default detector and aligned as the model's embedder aligns them; never LFW
or any other evaluation set. Writes ``edge_daemon/models/int8/<model>.ranges.json``.
"""

from __future__ import annotations

import argparse
import itertools
import random
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge_daemon.logs import configure_logging, get_logger
from edge_daemon.models.files import INT8_RANGES_DIRECTORY
from edge_daemon.models.prepare.quantize import activation_ranges, write_ranges
from edge_daemon.models.prepare.store import ModelStore
from edge_daemon.models.prepare.verify import embedder_aligner
from edge_daemon.progress import Progress

log = get_logger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def calibration_faces(directory: Path, model: str, count: int, seed: int = 0) -> list[np.ndarray]:
    """Up to ``count`` aligned RGB crops (float32) of one-face photos under ``directory``, in a seeded order."""
    from edge_daemon.config import DetectorConfig
    from edge_daemon.detectors import create_detector
    from edge_daemon.recognition.images import one_face_crops

    photos = sorted(path for path in Path(directory).rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise SystemExit(f"no photos under {directory}")
    random.Random(seed).shuffle(photos)
    detector, aligner = create_detector(DetectorConfig(), separate_process=False), embedder_aligner(model)
    crops = []
    progress = Progress(count, "calibration faces")
    for crop in itertools.islice(one_face_crops(photos, detector, aligner), count):
        crops.append(crop[:, :, ::-1].astype(np.float32))
        progress()
    return crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("faces", type=Path, help="a directory of training photos (never an evaluation set)")
    parser.add_argument("--model", choices=["dlib_resnet"], default="dlib_resnet")
    parser.add_argument("--count", type=int, default=300, help="faces to measure on")
    args = parser.parse_args()
    configure_logging()
    float_model = ModelStore().path(args.model)
    crops = calibration_faces(args.faces, args.model, args.count)
    ranges = activation_ranges(float_model, ([crop] for crop in crops))
    target = INT8_RANGES_DIRECTORY / f"{args.model}.ranges.json"
    calibration = {
        "faces": len(crops), "source": args.faces.name, "method": "MinMax",
        "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_ranges(target, float_model, ranges, calibration)
    log.info("int8 ranges written", model=args.model, file=str(target), tensors=len(ranges), faces=len(crops))


if __name__ == "__main__":
    main()
