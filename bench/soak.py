"""Soak test: the whole pipeline on looping files for a long time; reports memory (RSS) over time.

RSS is summed over the daemon's process and its model processes. The slope of a least-squares
line through the samples after warm-up says whether memory is flat. The face history goes to a
temporary directory, so a soak neither reads nor fills this user's state.

  .venv/bin/python -m bench.soak --minutes 30 --warmup 300    # Hamilton clip, 4 cameras
  .venv/bin/python -m bench.soak --minutes 1 --json           # quick look; last line is JSON
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import HAMILTON_CLIP, argument_parser, rss_kib
from edge_daemon.config import Settings
from edge_daemon.logs import configure_logging
from edge_daemon.pipeline.daemon import Daemon


def tree_rss_mib() -> float:
    total = rss_kib(os.getpid()) / 1024
    for child in multiprocessing.active_children():
        try:
            total += rss_kib(child.pid) / 1024
        except OSError:
            pass
    return total


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--clip", type=Path, default=HAMILTON_CLIP)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the slope")
    parser.add_argument("--gallery", help="gallery directory (optional)")
    args = parser.parse_args()
    if not args.clip.exists():
        parser.error(f"clip not found: {args.clip}")
    configure_logging("warning")
    state = tempfile.TemporaryDirectory(prefix="soak-")
    settings = Settings(
        cameras=[{"name": f"cam{i}", "url": str(args.clip), "loop": True} for i in range(args.cameras)],
        gallery={"path": args.gallery},
        events={"jsonl": ""},
        history={"path": f"{state.name}/history"},
    )
    daemon = Daemon(settings)
    daemon.start()
    started = time.monotonic()
    samples: list[tuple[float, float]] = []
    print(f"{'minute':>7}  {'rss MiB':>8}  {'frames':>7}  {'events':>7}", flush=True)
    try:
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            samples.append((elapsed, tree_rss_mib()))
            stats = daemon.stats()
            frames = sum(camera.get("frames_processed", 0) for camera in stats["cameras"].values())
            events = sum(stats["events"].values())
            print(f"{elapsed / 60:7.1f}  {samples[-1][1]:8.1f}  {frames:7d}  {events:7d}", flush=True)
            time.sleep(min(args.interval, max(0.1, args.minutes * 60 - elapsed)))
        samples.append((time.monotonic() - started, tree_rss_mib()))
    finally:
        daemon.request_stop()
        daemon.shutdown()
        state.cleanup()
    steady = np.array([(t, rss) for t, rss in samples if t >= args.warmup]) if len(samples) > 2 else np.array(samples)
    slope = float(np.polyfit(steady[:, 0] / 3600, steady[:, 1], 1)[0]) if len(steady) >= 2 else float("nan")
    summary = {
        "minutes": round(samples[-1][0] / 60, 1),
        "cameras": args.cameras,
        "warmup_s": args.warmup,
        "rss_start_mib": round(samples[0][1], 1),
        "rss_after_warmup_mib": round(float(steady[0, 1]), 1) if len(steady) else None,
        "rss_end_mib": round(samples[-1][1], 1),
        "rss_max_mib": round(max(rss for _, rss in samples), 1),
        "slope_mib_per_hour": round(slope, 2),
        "frames_processed": sum(c.get("frames_processed", 0) for c in daemon.stats()["cameras"].values()),
        "events": sum(daemon.stats()["events"].values()),
    }
    print(f"RSS {summary['rss_after_warmup_mib']} -> {summary['rss_end_mib']} MiB after warm-up; slope {slope:+.2f} MiB/hour")
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
