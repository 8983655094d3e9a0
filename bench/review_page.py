"""The review page with a busy camera's day of history: how long ``/review`` takes to render.

Fills a face history as a busy camera would in 24 hours (``--faces``, 100,000 by default: the
history's own bound ``history.max_faces``) through the daemon's own path: every track ends through
``HistoryGroups.record_track`` (so it joins an unknown group as it would in the daemon), with one to
three recorded faces. The people are synthetic: ``--people`` strangers (unit vectors in the fused
embedder's 320 dimensions) who come back again and again, each face their direction plus noise
(cosine about 0.95 to it), and a fifth of the tracks recognised rather than unknown. Then it renders
the page through ``ReviewPages`` as the HTTP server does, cold (the first load) and warm, and
times the listing of the groups alone (all of them, as ``edge-daemon unknowns`` lists them).

    .venv/bin/python -m bench.review_page                   # 100,000 faces, 2,000 people
    .venv/bin/python -m bench.review_page --faces 20000 --json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import FUSED_DIM, argument_parser, timed
from edge_daemon.config import HistoryConfig
from edge_daemon.embedders.calibration import OPEN_SET
from edge_daemon.history import FaceHistory, GroupingRule, HistoryGroups
from edge_daemon.logs import configure_logging
from edge_daemon.progress import Progress
from edge_daemon.recognition.thresholds import OpenSetTable
from edge_daemon.service.review import ReviewContext, ReviewPages

VERSION = next(iter(OPEN_SET))[1]  # the default fused configuration's table
DAY_S = 24 * 3600


def fill(history: FaceHistory, groups: HistoryGroups, faces: int, people: int, rng: np.random.Generator) -> dict:
    """A day of tracks, oldest first; returns what was written."""
    directions = rng.normal(size=(people, FUSED_DIM))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    noise = np.sqrt((1 / 0.95**2 - 1) / FUSED_DIM)
    crop = rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    start, written, tracks = time.time() - DAY_S + 60, 0, 0
    mean_faces = 2.0
    step = DAY_S / (faces / mean_faces)
    progress = Progress(faces, "faces written")
    while written < faces:
        ts = start + tracks * step
        person = int(rng.integers(people))
        recognised = rng.random() < 0.2
        face_ids = []
        vectors = []
        for offset in range(min(int(rng.integers(1, 4)), faces - written)):
            vector = directions[person] + noise * rng.normal(size=FUSED_DIM)
            vector /= np.linalg.norm(vector)
            vectors.append(vector)
            face_ids.append(history.record(
                ts=ts + offset, camera="door", box="box", track_id=tracks, event_type="unknown",
                identity=f"p{person}" if recognised else None, score=0.5, embedder="fused", embedder_version=VERSION,
                gallery_version="r1", embedding=vector, crop=crop, quality=0.8,
            ))
            written += 1
            progress()
        mean = np.mean(vectors, axis=0)
        groups.record_track(
            first_ts=ts, last_ts=ts + 3, camera="door", box="box", track_id=tracks,
            identity=f"p{person}" if recognised else None, verdict="recognized" if recognised else "unknown",
            quality=0.8, faces=float(len(vectors)), embedding=mean / np.linalg.norm(mean), face_ids=face_ids,
        )
        tracks += 1
    return {"faces": written, "tracks": tracks}


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=2_000)
    args = parser.parse_args()
    configure_logging("warning")
    work = Path(tempfile.mkdtemp(prefix="edge-review-bench-"))
    (work / "token").write_text("bench-token-0123456789abcdef")
    history = FaceHistory(work / "history", max_faces=args.faces)
    table = OpenSetTable.from_dict(OPEN_SET[("fused", VERSION)])
    rule = GroupingRule(table, HistoryConfig().group_fpir, min_quality=HistoryConfig().group_min_quality)
    groups = HistoryGroups(history, VERSION, rule)
    fill_s, written = timed(lambda: fill(history, groups, args.faces, args.people, np.random.default_rng(0)))

    restart_s, groups = timed(lambda: HistoryGroups(history, VERSION, rule))  # a daemon start: means rebuilt
    # Only pages are read here: nothing is enrolled, so there is no gallery to reload.
    pages = ReviewPages(ReviewContext(history, groups, work / "gallery", VERSION, lambda: None), work / "token")
    cookie = {"Cookie": "edge_review=bench-token-0123456789abcdef"}
    cold_s, response = timed(lambda: pages.get("/review", cookie))
    warm_s, _ = timed(lambda: pages.get("/review", cookie), repeats=5)
    listing_s, clusters = timed(lambda: groups.listing(since=time.time() - DAY_S), repeats=3)  # every group
    unknown_faces = sum(c.size for c in clusters)
    multi = [c for c in clusters if c.size > 1]

    result = {
        "faces": written["faces"],
        "tracks": written["tracks"],
        "unknown_faces_24h": unknown_faces,
        "groups_of_two_or_more": len(multi),
        "fill_s": round(fill_s, 1),
        "groups_rebuilt_at_start_s": round(restart_s, 3),
        "page_cold_s": round(cold_s, 3),
        "page_warm_s": round(warm_s, 3),
        "listing_s": round(listing_s, 3),
        "page_status": response.status,
        "page_bytes": len(response.body),
    }
    print(f"history: {result['faces']} faces in {result['tracks']} tracks over 24 h (filled in {fill_s:.0f} s); "
          f"{unknown_faces} unknown faces in {len(multi)} groups of two or more")
    print(f"review page: cold {cold_s * 1000:.0f} ms, warm {warm_s * 1000:.0f} ms (median of 5), "
          f"{len(response.body) / 1024:.0f} KiB, status {response.status}; listing the groups alone {listing_s * 1000:.0f} ms")
    print(f"groups rebuilt when the daemon starts: {restart_s * 1000:.0f} ms")
    if args.json:
        print(json.dumps(result))
    history.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
