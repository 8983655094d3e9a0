"""Recognition in difficult light: LFW View 1 people photographed under named conditions
(``edge_daemon.evaluation.conditions``: daylight, grey, infrared night vision, low light, motion
blur, low bitrate; each photo's parameters drawn from a plausible range, seeded), then made as small
as a camera sees a face further away (native, 48 and 28 px wide: ``open_set.degrade``), embedded as
``edge-daemon recognize`` embeds a still and decided with the shipped thresholds, as bench/distance.py
decides: galleries of 10 and 100 people enrolled from one clean colour photo each (the gallery of 10:
5 probes each; of 100: one each) and strangers (one photo each, the same for both galleries); faces
not found count as misses of the enrolled and are left out of the strangers.

Per condition, width and gallery it prints named right, named wrong and uncertain of the enrolled,
and strangers named and uncertain. With ``--normalise auto`` faces are normalised as
``embedder.normalise = "auto"`` does (``edge_daemon.embedders.photometric``), the gallery too;
``--low-contrast`` tries another threshold of "flat" (choose it with ``--split DevTrain``, never on
DevTest; above 255 every face is normalised).

  .venv/bin/python -m bench.conditions                       # DevTest, normalisation off
  .venv/bin/python -m bench.conditions --normalise auto
  .venv/bin/python -m bench.conditions --split DevTrain --normalise auto --low-contrast 60 --conditions daylight infrared

Rendered photos go to /tmp/edge-lfw/conditions, embeddings to /tmp/edge-lfw/cache (per condition,
normalisation and seed), so a rerun only decides.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2

from bench.common import LFW, LFW_CACHE, argument_parser
from bench.distance import Faces, bench_people, gallery_run
from edge_daemon.config import DetectorConfig, EmbedderConfig
from edge_daemon.detectors import create_detector
from edge_daemon.embedders import create_local_embedder
from edge_daemon.embedders.photometric import LOW_CONTRAST, NormalisedEmbedder, Normaliser
from edge_daemon.evaluation.conditions import CONDITIONS, photo_rng, render
from edge_daemon.evaluation.lfw import lfw_image_path
from edge_daemon.evaluation.open_set import embed_lfw, width_name
from edge_daemon.logs import configure_logging
from edge_daemon.recognition.images import load_image

WIDTHS = (None, 48, 28)
GALLERY_OF_TEN = 10
STRANGERS = 300
RENDERED = Path("/tmp/edge-lfw/conditions")


def rendered_photos(keys: list[tuple[str, int]], condition: str, seed: int) -> Path:
    """An LFW-layout folder of ``keys`` rendered under ``condition`` (daylight: LFW itself)."""
    if condition == "daylight":
        return LFW
    root = RENDERED / f"{condition}-seed{seed}"
    for name, number in keys:
        path = lfw_image_path(root, name, number)
        if not path.exists():
            image = render(load_image(lfw_image_path(LFW, name, number)), condition, photo_rng(seed, path.stem))
            path.parent.mkdir(parents=True, exist_ok=True)
            # PNG inside the .jpg name the LFW layout asks for: lossless, and images are decoded by content.
            path.write_bytes(cv2.imencode(".png", image)[1].tobytes())
    return root


def cache_folder(condition: str, normaliser: Normaliser, seed: int) -> Path:
    """Where the embeddings of one condition and normalisation are kept (daylight without
    normalisation shares bench/distance.py's)."""
    if condition == "daylight" and normaliser.mode == "off":
        return LFW_CACHE
    mode = "off" if normaliser.mode == "off" else f"auto-stretch-low{normaliser.low_contrast:g}"
    return LFW_CACHE / "conditions" / f"{condition}-seed{seed}-{mode}"


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--normalise", choices=("off", "auto"), default="off", help="embedder.normalise (default off)")
    parser.add_argument("--low-contrast", type=float, default=LOW_CONTRAST,
                        help=f"'auto' normalises faces with a lightness spread below this (default {LOW_CONTRAST:g})")
    parser.add_argument("--split", choices=("DevTest", "DevTrain"), default="DevTest",
                        help="View 1 people: DevTest for reported figures, DevTrain for choosing parameters")
    parser.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS))
    parser.add_argument("--strangers", type=int, default=STRANGERS, help=f"strangers' photos (default {STRANGERS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the conditions' parameters")
    args = parser.parse_args()
    configure_logging("warning")
    if not LFW.is_dir():
        raise SystemExit(f"LFW not found at {LFW}")
    # The calibration's detector, as bench/distance.py: the default 'yunet' runs the same network.
    detector = create_detector(DetectorConfig(backend="yuface"), separate_process=False)
    normaliser = Normaliser(args.normalise, args.low_contrast)
    embedder = NormalisedEmbedder(create_local_embedder(EmbedderConfig(normalise="off"), 1), normaliser)
    six, two, ones = bench_people(LFW, args.split)
    ten, strangers = six[:GALLERY_OF_TEN], [(name, 1) for name in ones[: args.strangers]]
    galleries = ((GALLERY_OF_TEN, ten, [(n, i) for n in ten for i in range(2, 7)]), (len(two), two, [(n, 2) for n in two]))
    enrolments = [(name, 1) for name in two]
    probes = list(dict.fromkeys(key for _, _, keys in galleries for key in keys)) + strangers
    clean = Faces(embed_lfw(enrolments, LFW, detector, embedder, (None,), cache_folder("daylight", normaliser, args.seed))[None])

    rows = []
    for condition in args.conditions:
        photos = rendered_photos(probes, condition, args.seed)
        sets = embed_lfw(probes, photos, detector, embedder, WIDTHS, cache_folder(condition, normaliser, args.seed))
        for width in WIDTHS:
            for size, people, keys in galleries:
                result = gallery_run(embedder, clean, Faces(sets[width]), people, keys, strangers, None)
                rows.append({"condition": condition, "width": width_name(width), "gallery": size, **result})

    print(
        f"LFW View 1 {args.split}: gallery of {GALLERY_OF_TEN} ({GALLERY_OF_TEN * 5} probes) and of {len(two)} "
        f"({len(two)} probes), enrolled from one clean colour photo each; {len(strangers)} strangers' photos; "
        f"conditions seeded {args.seed}; open-set table at FPIR 1%; normalisation {args.normalise}"
        + (f" (faces with a lightness spread < {args.low_contrast:g} or no colour stretched)"
           if args.normalise == "auto" else "")
    )
    print(f"{'condition':>11} | {'width':>6} | {'gallery':>7} | {'right':>6} {'wrong':>6} {'uncertain':>9} | "
          f"{'strangers named':>15} {'uncertain':>9}")
    for row in rows:
        enrolled, others = row["enrolled"], row["strangers"]
        print(
            f"{row['condition']:>11} | {row['width']:>6} | {row['gallery']:>7} | {enrolled['right']:>6.1%} "
            f"{enrolled['wrong']:>6.1%} {enrolled['uncertain']:>9.1%} | {others['wrong']:>15.1%} {others['uncertain']:>9.1%}"
        )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
