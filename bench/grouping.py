"""How pure the unknown groups are: tracks of LFW people grouped as the daemon groups them, at a range
of ``history.group_fpir``, and a two-camera history run of the Hamilton and crowd clips.

LFW: the people of View 1 DevTrain (``--split train``: what the shipped ``group_fpir`` was chosen
on) or DevTest (``--split test``: the figures to report) with two images or more (at most
``--images`` each), plus ``--strangers`` people with one image. Each person's images become tracks
of one to three faces (the template of ``thresholds.template``), half of the tracks degraded as a
camera sees a person further away (face 32 px wide, JPEG q75; ``open_set.degrade``). The tracks go
through ``UnknownGroups`` in a shuffled order, as they would end in the daemon, and per
``group_fpir`` (and, at the shipped one, per ``group_min_quality``) this prints:
  - tracks too poor to group (left on their own);
  - purity: of the tracks in groups of two or more, the share whose group's most common person is
    theirs; and the number of groups holding two people or more;
  - people kept whole: of the people with two tracks or more, the share whose tracks all fell into
    one group, and the mean number of groups a person's tracks fell into.

Two clips: the Hamilton stage clip and the crowd clip as two looping cameras of one daemon, the
history on and no gallery (every track unknown), for ``--seconds``; then the groups listed as the
review page lists them: how many, how many tracks and faces, and how many hold tracks of both
cameras (people of two different clips cannot be one person).

  .venv/bin/python -m bench.grouping --split train            # choose group_fpir
  .venv/bin/python -m bench.grouping --split test --two-clips # report
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench.common import CROWD_CLIP, HAMILTON_CLIP, LFW, LFW_CACHE, argument_parser
from edge_daemon.config import DetectorConfig, EmbedderConfig, HistoryConfig, Settings
from edge_daemon.detectors import create_detector
from edge_daemon.embedders import create_local_embedder
from edge_daemon.evaluation.lfw import lfw_image_path
from edge_daemon.evaluation.open_set import embed_lfw
from edge_daemon.history.grouping import GroupingRule, Span, UnknownGroups
from edge_daemon.logs import configure_logging
from edge_daemon.recognition.quality import face_quality
from edge_daemon.recognition.thresholds import open_set_table, template

FPIRS = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
MIN_QUALITIES = (0.0, 0.2, 0.5)
DEGRADED_WIDTH = 32


def people_of(split: str, images_each: int, strangers: int) -> tuple[dict[str, int], list[str]]:
    """{name: images used} for people with two images or more, and people with one, all present."""
    rows = [line.split() for line in (LFW / "_protocol" / f"peopleDev{split.title()}.txt").read_text().splitlines()[1:]]
    present = lambda name, n: all(lfw_image_path(LFW, name, i).is_file() for i in range(1, n + 1))  # noqa: E731
    many = {name: min(int(count), images_each) for name, count in rows if int(count) >= 2}
    many = {name: n for name, n in many.items() if present(name, n)}
    ones = [name for name, count in rows if int(count) == 1 and present(name, 1)][:strangers]
    return many, ones


def lfw_tracks(split: str, images_each: int, strangers: int, cache: Path, seed: int = 0) -> tuple[list[dict], object]:
    """The tracks of the module docstring, shuffled ({person, vector, quality, faces, width}), and the embedder."""
    many, ones = people_of(split, images_each, strangers)
    keys = [(name, i) for name, n in many.items() for i in range(1, n + 1)] + [(name, 1) for name in ones]
    detector = create_detector(DetectorConfig(), separate_process=False)
    embedder = create_local_embedder(EmbedderConfig())
    sets = embed_lfw(keys, LFW, detector, embedder, (None, DEGRADED_WIDTH), cache)
    faces = {width: ({key: i for i, key in enumerate(s.keys)}, s) for width, s in sets.items()}
    rng = np.random.default_rng(seed)
    tracks = []
    for name, count in [*many.items(), *((name, 1) for name in ones)]:
        numbers = list(rng.permutation(np.arange(1, count + 1)))
        while numbers:
            size = int(rng.integers(1, 4))
            chosen, numbers = numbers[:size], numbers[size:]
            width = DEGRADED_WIDTH if rng.random() < 0.5 else None
            row_of, faceset = faces[width]
            rows = [row_of[(name, int(n))] for n in chosen if (name, int(n)) in row_of]
            if not rows:
                continue
            vector, quality, effective = template(
                faceset.vectors[rows], [face_quality(faceset.features[r]) for r in rows]
            )
            tracks.append({"person": name, "vector": vector, "quality": quality, "faces": effective, "width": width})
    order = rng.permutation(len(tracks))
    return [tracks[i] for i in order], embedder


def purity(tracks: list[dict], rule: GroupingRule) -> dict:
    groups = UnknownGroups(rule)
    assigned = [
        groups.add(t["vector"], t["quality"], t["faces"], Span("box", "cam", 10.0 * i, 10.0 * i + 1))
        for i, t in enumerate(tracks)
    ]
    ungrouped = sum(group is None for group in assigned)
    assigned = [("solo", i) if group is None else group for i, group in enumerate(assigned)]  # too poor: alone
    members: dict[int, list[str]] = {}
    for track, group in zip(tracks, assigned):
        members.setdefault(group, []).append(track["person"])
    multi = [people for people in members.values() if len(people) > 1]
    in_multi = sum(len(people) for people in multi)
    majority = sum(Counter(people).most_common(1)[0][1] for people in multi)
    groups_of: dict[str, set[int]] = {}
    for track, group in zip(tracks, assigned):
        groups_of.setdefault(track["person"], set()).add(group)
    counts = Counter(t["person"] for t in tracks)
    repeated = [person for person, n in counts.items() if n >= 2]
    return {
        "tracks": len(tracks),
        "too_poor_to_group": ungrouped,
        "groups_of_two_or_more": len(multi),
        "tracks_in_them": in_multi,
        "purity": round(majority / max(in_multi, 1), 4),
        "mixed_groups": sum(len(set(people)) > 1 for people in multi),
        "people_whole": round(sum(len(groups_of[p]) == 1 for p in repeated) / max(len(repeated), 1), 4),
        "groups_per_person": round(float(np.mean([len(groups_of[p]) for p in repeated])) if repeated else 0.0, 3),
    }


def two_clip_run(seconds: float, group_fpir: float | None = None) -> dict:
    """The Hamilton and crowd clips as two looping cameras with the history on; their groups."""
    from edge_daemon.pipeline.daemon import Daemon

    work = Path(tempfile.mkdtemp(prefix="edge-two-clips-"))
    history = {"path": str(work / "history"), **({"group_fpir": group_fpir} if group_fpir is not None else {})}
    settings = Settings(
        cameras=[
            {"name": "stage", "url": str(HAMILTON_CLIP), "loop": True},
            {"name": "crowd", "url": str(CROWD_CLIP), "loop": True},
        ],
        history=history,
        events={"jsonl": ""},
    )
    daemon = Daemon(settings)
    daemon.start()
    time.sleep(seconds)
    daemon.request_stop()
    daemon.shutdown()
    from edge_daemon.history import FaceHistory

    stored = FaceHistory(work / "history")
    clusters = stored.unknown_groups(daemon.embedder.version)
    tracks = stored.tracks(daemon.embedder.version)
    stored.close()
    multi = [c for c in clusters if c.tracks > 1]
    return {
        "seconds": seconds,
        "tracks": len(tracks),
        "unknown_tracks": sum(t.verdict == "unknown" for t in tracks),
        "uncertain_tracks": sum(t.verdict == "uncertain" for t in tracks),
        "faces": sum(c.size for c in clusters),
        "groups_of_two_tracks_or_more": len(multi),
        "tracks_in_them": sum(c.tracks for c in multi),
        "largest_group_tracks": max((c.tracks for c in multi), default=0),
        "groups_with_both_clips": sum(len(c.cameras) > 1 for c in multi),
        "history": str(work / "history"),
    }


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--split", choices=["train", "test"], default="test")
    parser.add_argument("--images", type=int, default=8, help="most images used per person")
    parser.add_argument("--strangers", type=int, default=300, help="people with one image, as singletons")
    parser.add_argument("--cache", type=Path, default=LFW_CACHE)
    parser.add_argument("--two-clips", action="store_true", help="also the two-camera history run")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the two-camera run")
    args = parser.parse_args()
    configure_logging("warning")
    result: dict = {"split": args.split}
    tracks, embedder = lfw_tracks(args.split, args.images, args.strangers, args.cache)
    table = open_set_table(embedder.name, embedder.version)
    people = len({t["person"] for t in tracks})
    print(f"LFW View 1 Dev{args.split.title()}: {len(tracks)} tracks of {people} people "
          f"(half at {DEGRADED_WIDTH} px), grouped online in a shuffled order")
    shipped = HistoryConfig()
    print(f"{'group_fpir':>10}  {'min_q':>7}  {'too poor':>8}  {'groups>=2':>9}  {'purity':>7}  {'mixed':>5}  "
          f"{'people whole':>12}  {'groups/person':>13}")
    result["lfw"] = []
    settings = [(fpir, shipped.group_min_quality) for fpir in FPIRS] + [(shipped.group_fpir, q) for q in MIN_QUALITIES]
    for fpir, min_quality in settings:
        row = purity(tracks, GroupingRule(table, fpir, min_quality=min_quality))
        result["lfw"].append({"group_fpir": fpir, "group_min_quality": min_quality, **row})
        marker = "  <- shipped" if (fpir, min_quality) == (shipped.group_fpir, shipped.group_min_quality) else ""
        print(f"{fpir:>10g}  {min_quality:>7g}  {row['too_poor_to_group']:>8}  {row['groups_of_two_or_more']:>9}  "
              f"{row['purity']:>7.4f}  {row['mixed_groups']:>5}  {row['people_whole']:>12.3f}  "
              f"{row['groups_per_person']:>13.2f}{marker}")
    if args.two_clips:
        run = two_clip_run(args.seconds)
        result["two_clips"] = run
        print(f"two clips ({run['seconds']:.0f} s, stage + crowd cameras, shipped group_fpir): {run['tracks']} tracks "
              f"({run['unknown_tracks']} unknown, {run['uncertain_tracks']} uncertain), {run['faces']} unknown faces; "
              f"{run['groups_of_two_tracks_or_more']} groups of two tracks or more holding {run['tracks_in_them']} tracks "
              f"(largest {run['largest_group_tracks']}); groups with faces of both clips: {run['groups_with_both_clips']}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
