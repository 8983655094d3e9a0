"""How recognition holds up as faces get smaller: LFW View 1 DevTest people, each image degraded as a
camera sees a person further away (downscaled so the face is W px wide, JPEG q75, scaled back up;
``edge_daemon.evaluation.open_set.degrade``), embedded as ``edge-daemon recognize`` embeds a still, and decided
with the shipped thresholds (the open-set table of the default embedder, ``gallery.target_fpir`` 1%).

Per width it prints:
- pairs: a clean photo against a degraded photo of the same person (150) or of someone else (150):
  accuracy, TAR and FAR at the shipped single pair threshold, and at the open-set table's
  threshold for one comparison at FAR 1% (for the face's quality);
- templates: a clean enrolment photo against a template of k = 1, 3, 5 degraded photos (30 people,
  each template against the other 29 people and 150 strangers): TAR and FAR at the table's
  threshold for one comparison at FAR 1% (for the template's quality and size);
- galleries of 10 and 100 people (one clean photo each): their degraded photos (5 each for 10
  people, 1 each for 100) and strangers' photos (600 at native size, 150 degraded), decided as
  ``recognize`` decides (strangers' photos where no face is found are left out): enrolled
  named right, named wrong, uncertain; strangers named, uncertain. "before" repeats it with the
  single pair threshold the daemon used before the open-set table (what issue 15 measured).
Finally ``api.recognize`` itself is run on a sample of the degraded stills to check that the
cached path decides as it does, and the unknown groups of a two-camera history run are counted
(``bench/grouping.py``): how many, and how many hold faces of both clips.

  .venv/bin/python -m bench.distance                  # embeddings cached in /tmp/edge-lfw/cache
  .venv/bin/python -m bench.distance --json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from bench.common import LFW, LFW_CACHE, argument_parser
from edge_daemon.api import load_image, recognize
from edge_daemon.config import DetectorConfig, EmbedderConfig, GalleryConfig
from edge_daemon.detectors import create_detector
from edge_daemon.embedders import create_local_embedder
from edge_daemon.evaluation.lfw import lfw_image_path
from edge_daemon.evaluation.open_set import FaceSet, degrade, embed_lfw, width_name
from edge_daemon.logs import configure_logging
from edge_daemon.recognition.gallery import Gallery
from edge_daemon.recognition.matcher import use_thresholds
from edge_daemon.recognition.quality import face_quality
from edge_daemon.recognition.thresholds import open_set_table, template

WIDTHS = (None, 48, 32, 28, 24, 20)
PEOPLE, WIDER, STRANGERS = 30, 100, 150  # people with six images; people in the wide gallery; strangers
NATIVE_STRANGERS = 600  # at native size only, where embedding is cheap enough for a finer rate
SIZES = (1, 3, 5)
CHECKED_STILLS = 20  # stills per width run through api.recognize itself


def bench_people(images: Path, split: str = "DevTest") -> tuple[list[str], list[str], list[str]]:
    """People of View 1's ``split`` (DevTest; DevTrain for choosing parameters) with six images or
    more, people with two or more (those first), and people with one image (the strangers), in file
    order; only people whose photos used here are all in the copy of LFW at hand (the shared one lacks some)."""
    rows = [line.split() for line in (images / "_protocol" / f"people{split}.txt").read_text().splitlines()[1:]]

    def present(name: str, photos: int) -> bool:
        return all(lfw_image_path(images, name, number).is_file() for number in range(1, photos + 1))

    six = [name for name, count in rows if int(count) >= 6 and present(name, 6)][:PEOPLE]
    two = six + [name for name, count in rows if 2 <= int(count) < 6 and present(name, 2)][: WIDER - len(six)]
    ones = [name for name, count in rows if int(count) == 1 and present(name, 1)][:NATIVE_STRANGERS]
    return six, two, ones


class Faces:
    """The embedded faces of one width, looked up by (name, number)."""

    def __init__(self, faceset: FaceSet):
        self.row = faceset.row()
        self.vectors = faceset.vectors
        self.qualities = [face_quality(features) for features in faceset.features]
        self.widths = [features.width for features in faceset.features]

    def get(self, key) -> tuple[np.ndarray, float] | None:
        row = self.row.get(key)
        return None if row is None else (self.vectors[row], self.qualities[row])


def rates(named: list[str | None], verdicts: list[str], truth: list[str | None]) -> dict:
    """Shares of probes named right and wrong and left uncertain (truth None: strangers)."""
    total = max(len(truth), 1)
    return {
        "right": sum(n is not None and n == t for n, t in zip(named, truth)) / total,
        "wrong": sum(n is not None and n != t for n, t in zip(named, truth)) / total,
        "uncertain": sum(v == "uncertain" for v in verdicts) / total,
        "probes": len(truth),
    }


def enrolled(embedder, clean: Faces, people: list[str]) -> Gallery:
    """A gallery of ``people``, photo 1 each (clean), with the shipped thresholds."""
    gallery = Gallery.for_embedder(embedder)
    for name in people:
        found = clean.get((name, 1))
        if found is not None:
            gallery.add(name, found[0][None, :], [name])
    use_thresholds(gallery, GalleryConfig())
    return gallery


def gallery_run(embedder, clean: Faces, faces: Faces, people: list[str], probes: list[tuple], strangers: list[tuple], fixed):
    """Enrol ``people``; decide ``probes`` and ``strangers`` at this width (``fixed``: one threshold)."""
    gallery = enrolled(embedder, clean, people)
    results = {}
    for label, keys in (("enrolled", probes), ("strangers", strangers)):
        seen = [(key, faces.get(key)) for key in keys if faces.get(key) is not None]
        matches = gallery.match(np.array([face[0] for _, face in seen]), fixed, qualities=[face[1] for _, face in seen])
        named = [m.identity for m in matches]
        truth = [key[0] if label == "enrolled" else None for key, _ in seen]
        # An enrolled photo where no face was found is a miss (named by no one); a stranger's is left
        # out, so that "strangers named" is a share of the strangers actually seen.
        misses = len(keys) - len(seen) if label == "enrolled" else 0
        results[label] = rates(
            named + [None] * misses, [m.verdict for m in matches] + ["unknown"] * misses, truth + ["?"] * misses
        )
    return results


def pair_run(clean: Faces, faces: Faces, people: list[str], table_threshold, legacy: float) -> dict:
    """Clean photo 1 against degraded photos 2-6 of the same person, and of the next person."""
    genuine, impostor = [], []
    for i, name in enumerate(people):
        enrol, other = clean.get((name, 1)), clean.get((people[(i + 1) % len(people)], 1))
        for number in range(2, 7):
            probe = faces.get((name, number))
            if probe is None or enrol is None or other is None:
                continue
            genuine.append((float(np.dot(enrol[0], probe[0])), table_threshold(probe[1], 1)))
            impostor.append((float(np.dot(other[0], probe[0])), table_threshold(probe[1], 1)))
    g, gt = np.array(genuine).T
    im, it = np.array(impostor).T
    return {
        "accuracy": float(((g >= legacy).sum() + (im < legacy).sum()) / (len(g) + len(im))),
        "tar": float((g >= legacy).mean()),
        "far": float((im >= legacy).mean()),
        "table_tar": float((g >= gt).mean()),
        "table_far": float((im >= it).mean()),
        "pairs": len(g) + len(im),
    }


def template_run(clean: Faces, faces: Faces, people: list[str], strangers: list[str], table_threshold) -> dict:
    """Per k: TAR and FAR of templates of photos 2..k+1 against clean photos 1, at the table's
    threshold for one comparison at FAR 1% (for the template's quality and size)."""
    enrolled = {name: clean.get((name, 1)) for name in people + strangers}
    enrolled = {name: found[0] for name, found in enrolled.items() if found is not None}
    out = {}
    for k in SIZES:
        genuine, impostor = [], []
        for name in people:
            members = [faces.get((name, number)) for number in range(2, 2 + k)]
            members = [m for m in members if m is not None]
            if not members or name not in enrolled:
                continue
            vector, quality, size = template(np.array([m[0] for m in members]), [m[1] for m in members])
            threshold = table_threshold(quality, size)
            genuine.append(float(np.dot(enrolled[name], vector)) >= threshold)
            impostor += [float(np.dot(other, vector)) >= threshold for who, other in enrolled.items() if who != name]
        out[k] = {"tar": float(np.mean(genuine)), "far": float(np.mean(impostor)), "templates": len(genuine)}
    return out


def recognize_check(detector, embedder, gallery_people: list[str], clean: Faces, faces: Faces, keys, width) -> float:
    """Share of ``keys`` on which ``api.recognize`` on the degraded still names the same person
    (or no one) as the cached path."""
    gallery = enrolled(embedder, clean, gallery_people)
    agree = 0
    for key in keys:
        found, row = faces.get(key), clean.row.get(key)
        cached = gallery.match(found[0][None, :], qualities=[found[1]])[0].identity if found is not None else None
        seen = []
        if row is not None:
            still = degrade(load_image(lfw_image_path(LFW, *key)), clean.widths[row], width)
            seen = recognize(still, detector, embedder, gallery)
        named = max(seen, key=lambda face: face.bbox[2] * face.bbox[3]).identity if seen else None
        agree += named == cached
    return agree / len(keys)


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--cache", type=Path, default=LFW_CACHE)
    parser.add_argument("--two-clips", type=float, default=120.0, metavar="SECONDS",
                        help="then the two-camera history run of bench/grouping.py for this long (0: skip it)")
    args = parser.parse_args()
    configure_logging("warning")
    if not LFW.is_dir():
        raise SystemExit(f"LFW not found at {LFW}")
    # The calibration's detector: the default 'yunet' runs the same network and gives its boxes.
    detector = create_detector(DetectorConfig(backend="yuface"), separate_process=False)
    embedder = create_local_embedder(EmbedderConfig(), 1)
    six, two, ones = bench_people(LFW)
    keys = [(n, i) for n in six for i in range(1, 7)] + [(n, i) for n in two for i in (1, 2)]
    keys += [(n, 1) for n in ones[:STRANGERS]]
    sets = embed_lfw(list(dict.fromkeys(keys)), LFW, detector, embedder, WIDTHS, args.cache)
    everyone = list(dict.fromkeys(keys + [(n, 1) for n in ones]))
    clean = Faces(embed_lfw(everyone, LFW, detector, embedder, (None,), args.cache)[None])
    legacy = embedder.default_threshold
    table = open_set_table(embedder.name, embedder.version)

    def table_threshold(quality: float, size: float) -> float:
        return table.threshold(0.01, quality, size)[0]

    rows = []
    for width in WIDTHS:
        faces = clean if width is None else Faces(sets[width])
        strangers = [(name, 1) for name in (ones if width is None else ones[:STRANGERS])]
        row = {"width": width_name(width), "pairs": pair_run(clean, faces, six, table_threshold, legacy)}
        row["templates"] = template_run(clean, faces, six, ones[:STRANGERS], table_threshold)
        for size, people, probes in (
            (10, six[:10], [(n, i) for n in six[:10] for i in range(2, 7)]),
            (100, two, [(n, 2) for n in two]),
        ):
            row[f"gallery{size}"] = gallery_run(embedder, clean, faces, people, probes, strangers, None)
            row[f"gallery{size}_before"] = gallery_run(embedder, clean, faces, people, probes, strangers, legacy)
        sample = strangers[:CHECKED_STILLS // 2] + [(n, 2) for n in six[: CHECKED_STILLS // 2]]
        row["recognize_agreement"] = recognize_check(detector, embedder, six[:10], clean, faces, sample, width)
        rows.append(row)

    print(
        f"LFW View 1 DevTest: {len(six)} people with six photos ({len(six[:10])} in the gallery of 10), {len(two)} in the "
        f"gallery of 100, strangers {len(ones)} at native size and {STRANGERS} degraded; pair threshold {legacy}; "
        "open-set table at FPIR 1%"
    )
    print(
        f"{'width':>6} | {'pair acc':>8} {'TAR':>6} {'FAR':>6} | {'table TAR':>9} {'FAR':>6} | "
        + " | ".join(f"k={k} TAR {'FAR':>6}" for k in SIZES)
    )
    for row in rows:
        p = row["pairs"]
        print(
            f"{row['width']:>6} | {p['accuracy']:>8.1%} {p['tar']:>6.1%} {p['far']:>6.1%} | {p['table_tar']:>9.1%} "
            f"{p['table_far']:>6.1%} | "
            + " | ".join(f"{row['templates'][k]['tar']:>9.1%} {row['templates'][k]['far']:>6.1%}" for k in SIZES)
        )
    print()
    print(
        f"{'width':>6} | {'gallery':>7} | {'strangers named':>15} {'uncertain':>9} | {'enrolled right':>14} {'wrong':>6} "
        f"{'uncertain':>9} | {'before: strangers named':>23} {'right':>6} {'wrong':>6} | recognize agrees"
    )
    for row in rows:
        for size in (10, 100):
            now, before = row[f"gallery{size}"], row[f"gallery{size}_before"]
            print(
                f"{row['width']:>6} | {size:>7} | {now['strangers']['wrong']:>15.1%} {now['strangers']['uncertain']:>9.1%} | "
                f"{now['enrolled']['right']:>14.1%} {now['enrolled']['wrong']:>6.1%} {now['enrolled']['uncertain']:>9.1%} | "
                f"{before['strangers']['wrong']:>23.1%} {before['enrolled']['right']:>6.1%} {before['enrolled']['wrong']:>6.1%} | "
                f"{row['recognize_agreement']:.0%}"
            )
    if args.two_clips:
        from bench.grouping import two_clip_run

        run = two_clip_run(args.two_clips)
        print()
        print(f"unknown groups, two cameras (Hamilton stage + crowd clip, looping, {run['seconds']:.0f} s, history on, "
              f"no gallery): {run['tracks']} tracks ({run['unknown_tracks']} unknown, {run['uncertain_tracks']} uncertain); "
              f"{run['groups_of_two_tracks_or_more']} groups of two tracks or more holding {run['tracks_in_them']} tracks; "
              f"groups with faces of both clips: {run['groups_with_both_clips']} (bench/grouping.py has LFW purity)")
        rows.append({"two_clips": run})
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
