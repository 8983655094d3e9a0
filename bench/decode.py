"""Decoding benchmark: what each way of reading a stream costs, per frame handed to detection.

A camera hands detection ``--detect-fps`` frames a second, whatever its own rate. Modes, on one
thread each:
  opencv read         OpenCV decodes and converts every frame (the old capture loop)
  opencv grab         OpenCV decodes every frame, converts only the frames handed on
  pyav all            PyAV decodes every frame, converts only the frames handed on
  pyav nonref         PyAV skips non-reference frames
  pyav bidir          PyAV skips B-frames
  pyav auto           the daemon's PyAV source: B-frames skipped while the rest cover detect_fps
                      (every pyav mode without the deblocking filter, the daemon's default)
  pyav auto deblocked the same with cameras.deblocking = true
  pyav keyframes      the daemon's PyAV source on an idle camera (cameras.idle_keyframes_after_s):
                      keyframes only, each handed on

File mode reads the clip as fast as possible (several passes): video frames/s, the share of frames
decoded, frames handed on, and CPU milliseconds per handed frame; then how far the frames decoded
without the deblocking filter are from the deblocked ones (PSNR of their luma, every frame the
daemon's source gives). ``--rtsp`` serves the clip live
from the test suite's GStreamer RTSP server (tests/support/rtsp.py) and measures the share of a core each
mode costs per live stream.

  .venv/bin/python -m bench.decode                 # the 1080p crowd clip, file and live
  .venv/bin/python -m bench.decode --no-rtsp --json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import CROWD_CLIP, argument_parser, clip_facts, cpu_seconds, print_table, served_over_rtsp
from edge_daemon.config import CameraConfig
from edge_daemon.logs import configure_logging
from edge_daemon.sources.opencv import OpenCvSource
from edge_daemon.sources.pyav import PyAvSource


def source(mode: str, url: str, detect_fps: float):
    """(the daemon's source for ``mode``, whether every frame is converted)."""
    # realtime = false: a file is read as fast as it decodes, never paced (keyframe-only decoding paces a realtime file).
    config = CameraConfig(name="bench", url=url, detect_fps=detect_fps, decoder=mode.split()[0], realtime=False,
                          deblocking=mode.endswith("deblocked"))
    if mode.startswith("opencv"):
        return OpenCvSource(config), mode == "opencv read"
    level = mode.split()[1]
    if level == "keyframes":
        return PyAvSource(config, keyframes_only=lambda: True), False
    return PyAvSource(config, None if level == "auto" else level.upper().replace("ALL", "DEFAULT")), False


MODES = ("opencv read", "opencv grab", "pyav all", "pyav nonref", "pyav bidir", "pyav auto", "pyav auto deblocked",
         "pyav keyframes")


def to_bgr(decoded) -> None:
    """What handing a frame on to detection costs at most: PyAV's picture converted to BGR (the daemon
    converts only the frames it detects; OpenCV's come converted)."""
    if decoded is not None and not isinstance(decoded, np.ndarray):
        decoded.bgr()


def handed_on(reader, convert_all: bool, detect_fps: float, clock):
    """Frames in order; each one due (one per detection period of ``clock(media time)``) is converted
    to BGR, as the camera does. Yields (decoded, handed) counts after each frame."""
    decoded = handed = 0
    next_due = None
    while (media_time := reader.grab()) is not None:
        decoded += 1
        now = clock(media_time)
        due = next_due is None or now + 1e-6 >= next_due
        if due or convert_all:
            to_bgr(reader.retrieve())
        if due:
            handed += 1
            next_due = max((now if next_due is None else next_due) + 1 / detect_fps, now)
        yield decoded, handed


def file_run(mode: str, clip: Path, passes: int, detect_fps: float) -> dict:
    """Read the clip ``passes`` times as fast as possible; media time is the frames' own."""
    total, native_fps = clip_facts(clip)
    decoded = handed = 0
    cpu_before, started = cpu_seconds(), time.perf_counter()
    for _ in range(passes):
        reader, convert_all = source(mode, str(clip), detect_fps)
        counts = (0, 0)
        for counts in handed_on(reader, convert_all, detect_fps, clock=lambda media_time: media_time):
            pass
        reader.release()
        decoded, handed = decoded + counts[0], handed + counts[1]
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
    return {
        "mode": mode,
        "video_frames_per_s": round(total * passes / wall, 1),
        "decoded_share": round(decoded / (total * passes), 3),
        "handed_on_per_video_s": round(handed / (total * passes / native_fps), 2),
        "cpu_ms_per_handed_frame": round(1000 * cpu / max(handed, 1), 2),
        "core_share_per_live_stream": round(cpu / (total * passes / native_fps), 3),
    }


def deblocking_difference(clip: Path, detect_fps: float) -> dict:
    """PSNR (dB) of each frame the daemon's source gives without the deblocking filter against the
    same frame deblocked: its luma planes, at full size. Both are read side by side, a frame at a time."""

    def lumas(mode: str):
        reader, _ = source(mode, str(clip), detect_fps)
        try:
            while reader.grab() is not None:
                picture = reader.retrieve()
                yield picture.grey(picture.size).astype(np.float32)
        finally:
            reader.release()

    errors = np.array([np.mean((a - b) ** 2) for a, b in zip(lumas("pyav auto"), lumas("pyav auto deblocked"), strict=True)])
    psnr = 10 * np.log10(255**2 / np.maximum(errors, 1e-12))
    return {"frames": len(psnr), "psnr_min_db": round(float(psnr.min()), 1), "psnr_median_db": round(float(np.median(psnr)), 1)}


def live_run(mode: str, url: str, seconds: float, detect_fps: float) -> dict:
    """Read the live stream for ``seconds``, media time the wall clock; CPU of this process only
    (the server is another process)."""
    reader, convert_all = source(mode, url, detect_fps)
    cpu_before, started = cpu_seconds(), time.monotonic()
    counts = (0, 0)
    for counts in handed_on(reader, convert_all, detect_fps, clock=lambda media_time: time.monotonic()):
        if time.monotonic() - started >= seconds:
            break
    wall, cpu = time.monotonic() - started, cpu_seconds() - cpu_before
    reader.release()
    return {
        "mode": mode,
        "decoded_per_s": round(counts[0] / wall, 1),
        "handed_on_per_s": round(counts[1] / wall, 2),
        "core_share": round(cpu / wall, 3),
    }


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--clip", type=Path, default=CROWD_CLIP)
    parser.add_argument("--detect-fps", type=float, default=5.0)
    parser.add_argument("--passes", type=int, default=5, help="file mode: passes over the clip per mode")
    parser.add_argument("--seconds", type=float, default=15.0, help="live mode: seconds per mode")
    parser.add_argument("--no-rtsp", action="store_true", help="file mode only")
    args = parser.parse_args()
    if not args.clip.exists():
        parser.error(f"clip not found: {args.clip}")
    configure_logging("warning")
    cv2.setNumThreads(1)
    files = [file_run(mode, args.clip, args.passes, args.detect_fps) for mode in MODES]
    print(f"file {args.clip.name}, {args.passes} passes per mode, one thread, detection at {args.detect_fps:g} fps")
    print_table(files, 24, cut=True)
    difference = deblocking_difference(args.clip, args.detect_fps)
    print(f"without deblocking against deblocked, luma PSNR over {difference['frames']} frames: "
          f"min {difference['psnr_min_db']} dB, median {difference['psnr_median_db']} dB")
    live = []
    if not args.no_rtsp:
        with served_over_rtsp(args.clip) as url:
            live = [live_run(mode, url, args.seconds, args.detect_fps) for mode in MODES]
        print(f"\nlive RTSP (GStreamer server on loopback, looping the clip), {args.seconds:g} s per mode")
        print_table(live, 24, cut=True)
        base = next(row for row in live if row["mode"] == "opencv read")["core_share"]
        auto = next(row for row in live if row["mode"] == "pyav auto")["core_share"]
        print(f"pyav auto / opencv read, share of a core per live stream: {auto / base:.2f}")
    if args.json:
        print(json.dumps({"clip": str(args.clip), "file": files, "deblocking_difference": difference, "live": live}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
