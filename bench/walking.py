"""Walking past: people cross a 720p scene one after another (tests/support/walking_clip.py makes the clip); the
daemon watches it as a camera and this prints how many tracks each walk became and, with a gallery
of the enrolled walkers, how many walks were named right or wrong and how many strangers were named.

    .venv/bin/python -m bench.walking                  # 60 walks: 10 enrolled people twice, 40 strangers; 48 px faces
    .venv/bin/python -m bench.walking --face-px 28     # the same people further away
    .venv/bin/python -m bench.walking --face-px 28 --condition infrared   # ... at night, on a night-vision camera
    .venv/bin/python -m bench.walking --enrolled 2 --strangers 4 --json   # a quick one; last line is JSON

The clip plays in real time (``realtime = true``), as a live camera would: frames are dropped when
detection is behind, and each frame's time is when it was read, which is the clock the tracker
predicts with. Read as fast as possible, frame times would follow the machine's speed rather than
the walkers'. Walks are told apart by time: a track belongs to the walk in view when its first
decided frame was read. The clip, its ground truth (``truth-<N>px[-<condition>].json``), the gallery and the
events are kept in ``--out``. A walk left unnamed counts as ``unknown`` when one of its tracks was
seen well enough to say so, else ``uncertain`` (every face too small or too poor to decide on).
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import LFW, ROOT, argument_parser
from edge_daemon.config import Settings
from edge_daemon.evaluation.conditions import CONDITIONS
from edge_daemon.logs import configure_logging
from tests.support.walking_clip import choose_walks, enrol, score, truth, watch, write_clip


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--enrolled", type=int, default=10, help="enrolled people, each walks past twice")
    parser.add_argument("--strangers", type=int, default=40, help="people not enrolled, each walks past once")
    parser.add_argument("--face-px", type=int, default=48, help="face width in the clip (48; 28 for further away)")
    parser.add_argument("--condition", choices=list(CONDITIONS), default="daylight",
                        help="how the camera sees the scene (edge_daemon.evaluation.conditions); the gallery stays colour")
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
    name = f"{args.face_px}px" + ("" if args.condition == "daylight" else f"-{args.condition}")
    clip = args.out / f"walking-{name}.mp4"
    write_clip(clip, walks, args.face_px, args.condition, args.seed)
    gallery, enrolled_with = enrol(candidates, args.out, detector)
    ground_truth = truth(walks, enrolled_with, args.face_px, args.condition)
    (args.out / f"truth-{name}.json").write_text(json.dumps(ground_truth, indent=1))
    events_path = args.out / f"events-{name}.jsonl"
    events_path.unlink(missing_ok=True)
    started_at, stats = watch(clip, gallery, events_path, args.detect_fps, detector)
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    camera = stats["cameras"]["walk"]
    result = {
        "face_px": args.face_px,
        "condition": args.condition,
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
