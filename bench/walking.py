"""Walking past: people cross a 720p scene one after another (tests/support/walking_clip.py makes the clip); the
daemon watches it as a camera and this prints how many tracks each walk became and, with a gallery
of the enrolled walkers, how many walks were named right or wrong and how many strangers were named.

    .venv/bin/python -m bench.walking                  # 60 walks: 10 enrolled people twice, 40 strangers; 48 px faces
    .venv/bin/python -m bench.walking --face-px 28     # the same people further away
    .venv/bin/python -m bench.walking --enrolled 2 --strangers 4 --json   # a quick one; last line is JSON

The clip plays in real time (``realtime = true``), as a live camera would: frames are dropped when
detection is behind, and each frame's time is when it was read, which is the clock the tracker
predicts with. Read as fast as possible, frame times would follow the machine's speed rather than
the walkers'. Walks are told apart by time: a track belongs to the walk in view when its first
decided frame was read. The clip, its ground truth (``truth-<N>px.json``), the gallery and the
events are kept in ``--out``. A walk left unnamed counts as ``unknown`` when one of its tracks was
seen well enough to say so, else ``uncertain`` (every face too small or too poor to decide on).
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from bench.common import LFW, ROOT, argument_parser
from edge_daemon.config import DetectorConfig, EmbedderConfig, Settings
from edge_daemon.logs import configure_logging
from tests.support.walking_clip import Walk, choose_walks, truth, walk_at, write_clip

DECISIONS = ("recognized", "unknown", "updated")


def enrol(candidates: dict[str, list[str]], out: Path, detector: dict) -> tuple[Path, dict[str, str]]:
    """The gallery of the enrolled walkers, one photo each: the first of their photos not walked past
    with in which enrolment finds one face. Returns the gallery and the photo each was enrolled with."""
    from edge_daemon.api import build_gallery, find_faces, load_image
    from edge_daemon.detectors import create_detector
    from edge_daemon.embedders import create_embedder

    face_finder = create_detector(DetectorConfig(**detector), separate_process=False)
    embedder = create_embedder(EmbedderConfig(), separate_process=False)
    try:
        chosen = {
            identity: next((photo for photo in photos if len(find_faces(load_image(photo), face_finder)) == 1),
                           photos[0])  # none holds one face: enrolment below says why
            for identity, photos in candidates.items()
        }
        photos = out / "gallery-photos"
        shutil.rmtree(photos, ignore_errors=True)
        for identity, photo in chosen.items():
            (photos / identity).mkdir(parents=True)
            (photos / identity / Path(photo).name).symlink_to(photo)
        gallery, skipped = build_gallery(photos, face_finder, embedder)
    finally:
        face_finder.close()
        embedder.close()
    if skipped:
        raise SystemExit("not enrolled: " + ", ".join(f"{item.path} ({item.reason})" for item in skipped))
    path = out / "gallery"
    shutil.rmtree(path, ignore_errors=True)
    gallery.save(path)
    return path, chosen


def watch(clip: Path, gallery: Path, events: Path, detect_fps: float, detector: dict) -> tuple[float, dict]:
    """Runs the daemon on the clip until it ends. Returns the wall-clock time the clip started
    playing and the daemon's stats."""
    from edge_daemon.service.runner import DaemonRunner

    settings = Settings(
        cameras=[{"name": "walk", "url": str(clip), "realtime": True, "detect_fps": detect_fps}],
        detector=detector,
        gallery={"path": str(gallery)},
        events={"jsonl": str(events)},
    )
    runner = DaemonRunner(settings)
    wall_minus_monotonic = time.time() - time.monotonic()
    code = runner.run()
    if code != 0:
        raise SystemExit(f"the daemon exited with {code}")
    return runner.daemon.cameras[0].streaming_since + wall_minus_monotonic, runner.daemon.stats()


def score(walks: list[Walk], events: list[dict], started_at: float) -> dict:
    """Per walk: its decided tracks and the names they were given; then the totals."""
    tracks: dict[int, dict] = {}
    for event in events:
        if event["type"] in DECISIONS:
            track = tracks.setdefault(event["track_id"], {"first_frame_ts": event["frame_ts"], "names": set(), "verdicts": set()})
            track["verdicts"].add(event["verdict"])
            if event["identity"] is not None:
                track["names"].add(event["identity"])
    per_walk: list[list[dict]] = [[] for _ in walks]
    unplaced = 0
    for track in tracks.values():
        seconds = datetime.fromisoformat(track["first_frame_ts"].replace("Z", "+00:00")).timestamp() - started_at
        index = walk_at(walks, seconds, margin_s=0.3)
        if index is None:
            unplaced += 1
        else:
            per_walk[index].append(track)
    outcome: Counter = Counter()
    for walk, walk_tracks in zip(walks, per_walk):
        names = set().union(*(track["names"] for track in walk_tracks))
        # Unnamed: "unknown" if any of its tracks was seen well enough to say so, else "uncertain".
        unnamed = "unknown" if any("unknown" in track["verdicts"] for track in walk_tracks) else "uncertain"
        if not walk_tracks:
            outcome["not decided"] += 1
        elif walk.enrolled:
            outcome["enrolled: named wrong" if names - {walk.identity} else
                    "enrolled: named right" if names else f"enrolled: not named, {unnamed}"] += 1
        else:
            outcome["stranger: named" if names else f"stranger: not named, {unnamed}"] += 1
    enrolled = sum(walk.enrolled for walk in walks)
    return {
        "walks": len(walks),
        "enrolled_walks": enrolled,
        "stranger_walks": len(walks) - enrolled,
        "decided_tracks": len(tracks),
        "decided_tracks_per_walk": round(sum(map(len, per_walk)) / len(walks), 2),
        "most_tracks_in_a_walk": max(map(len, per_walk)),
        "tracks_outside_walks": unplaced,
        **dict(sorted(outcome.items())),
    }


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--enrolled", type=int, default=10, help="enrolled people, each walks past twice")
    parser.add_argument("--strangers", type=int, default=40, help="people not enrolled, each walks past once")
    parser.add_argument("--face-px", type=int, default=48, help="face width in the clip (48; 28 for further away)")
    parser.add_argument("--detect-fps", type=float, default=5.0)
    parser.add_argument("--detector", choices=["yunet", "yuface"], help="detector backend (default: the daemon's)")
    parser.add_argument("--seed", type=int, default=0, help="who walks, in which order")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "walking")
    args = parser.parse_args()
    if not LFW.is_dir():
        parser.error(f"LFW not found at {LFW}")
    configure_logging("warning")
    detector = {"backend": args.detector} if args.detector else {}
    args.out.mkdir(parents=True, exist_ok=True)
    walks, candidates = choose_walks(LFW, args.enrolled, args.strangers, args.seed)
    clip = args.out / f"walking-{args.face_px}px.mp4"
    write_clip(clip, walks, args.face_px)
    gallery, enrolled_with = enrol(candidates, args.out, detector)
    ground_truth = truth(walks, enrolled_with, args.face_px)
    (args.out / f"truth-{args.face_px}px.json").write_text(json.dumps(ground_truth, indent=1))
    events_path = args.out / f"events-{args.face_px}px.jsonl"
    events_path.unlink(missing_ok=True)
    started_at, stats = watch(clip, gallery, events_path, args.detect_fps, detector)
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    camera = stats["cameras"]["walk"]
    result = {
        "face_px": args.face_px,
        **score(walks, events, started_at),
        "tracks_started": camera.get("tracks_started", 0),
        "tracks_started_per_walk": round(camera.get("tracks_started", 0) / len(walks), 2),
        "frames_processed": camera.get("frames_processed", 0),
        "frames_dropped": camera.get("frames_dropped", 0),
        "faces_detected": camera.get("faces_detected", 0),
        "faces_sent": camera.get("faces_sent", 0),
        **{key: value for key, value in sorted(camera.items()) if key.startswith("faces_dropped_")},
    }
    print(f"{clip.name}: {len(walks)} walks, detector {Settings(detector=detector).detector.backend}, "
          f"{args.detect_fps:g} detect-fps, real time")
    for key, value in result.items():
        print(f"  {key:28} {value}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
