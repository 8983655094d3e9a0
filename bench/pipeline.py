"""Pipeline benchmark: N looping copies of a clip as realtime file cameras at a detect rate.

Prints the box's float32 matmul rate (one and two threads) and, per N: frames captured/processed
per second, frames dropped, frames whose detection was skipped for no motion or never looked at
(stale), faces detected/embedded, detector and embedder busy time, p50/p95 capture->event latency of first decisions (and a steady-state p95 without the
decisions of the first ``--start-s`` seconds, while every camera opens its stream at once), and CPU
use (in all, per camera, and cores of the main process, the detector process and the embedder process).

  .venv/bin/python -m bench.pipeline                       # crowd clip, N = 1, 2, 4, 30 s each
  .venv/bin/python -m bench.pipeline --clip idle --streams 16 24 --seconds 60
      # the idle scene: 720p25 H.264, a static view with sensor noise, a person crossing every 20 s
  .venv/bin/python -m bench.pipeline --quick --json        # 10 s each; last line is JSON
  .venv/bin/python -m bench.pipeline --clip ../shared/data/video/hamilton/short_hamilton_clip.mp4 --streams 4
  .venv/bin/python -m bench.pipeline --streams 2 --variants default library-threads no-tracking
  .venv/bin/python -m bench.pipeline --rtsp --streams 2 4 6 --variants default decode-all
      # cameras read the clip live from the test suite's GStreamer RTSP server (tests/support/rtsp.py)
  .venv/bin/python -m bench.pipeline --clip idle --cost --variants default regions-full-size
      # what detection costs, free of this box's noise: one camera reads the clip once, as fast as
      # the pipeline takes it (nothing dropped or stale); detector seconds per video second, frames
      # by what was detected, faces, tracks and decisions
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from bench.common import (
    CROWD_CLIP,
    YUNET_ONNX,
    argument_parser,
    cpu_seconds,
    matmul_gflops_on,
    print_table,
    served_over_rtsp,
)
from edge_daemon.config import Settings
from edge_daemon.logs import configure_logging
from edge_daemon.pipeline.daemon import Daemon

IDLE_SIZE, IDLE_FPS, IDLE_SECONDS = (1280, 720), 25, 60
IDLE_CROSSING_EVERY_S, IDLE_CROSSING_S = 20.0, 4.0  # a person crosses the whole view in 4 s, every 20 s
IDLE_NOISE_SD = 4.0  # grey levels of sensor noise per pixel and frame
IDLE_KEYFRAME_S = 2.0  # a keyframe every 2 s, as IP cameras are commonly set (x264's default is 10 s)


def idle_clip() -> Path:
    """The idle scene's clip in the temp directory, written the first time."""
    name = f"edge-daemon-idle-{IDLE_SIZE[1]}p{IDLE_FPS}-{IDLE_SECONDS}s-gop{IDLE_KEYFRAME_S:g}s.mp4"
    return write_idle_clip(Path(tempfile.gettempdir()) / name)


def write_idle_clip(path: Path) -> Path:
    """The idle scene most cameras watch: a static view with sensor noise, empty but for a person
    crossing every ``IDLE_CROSSING_EVERY_S`` (the demo's people, in turn, alternating directions),
    H.264 like a camera's stream. Written once, then reused."""
    if path.exists():
        return path
    import av
    import cv2

    from edge_daemon.demo import demo_people
    from tests.support.walking_clip import background

    width, height = IDLE_SIZE
    scene = cv2.resize(background(), IDLE_SIZE).astype(np.float32)
    sprites = [cv2.resize(person.image[y : y + h, x : x + w], None, fx=0.6, fy=0.6)
               for person in demo_people() for (x, y, w, h) in [person.head]]
    rng = np.random.default_rng(0)
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=IDLE_FPS, options={"preset": "veryfast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = round(IDLE_FPS * IDLE_KEYFRAME_S)
        for index in range(IDLE_FPS * IDLE_SECONDS):
            frame = scene + rng.normal(0.0, IDLE_NOISE_SD, scene.shape)
            t = index / IDLE_FPS
            crossing, into = divmod(t, IDLE_CROSSING_EVERY_S)
            if into < IDLE_CROSSING_S:
                sprite = sprites[int(crossing) % len(sprites)]
                sprite_height, sprite_width = sprite.shape[:2]
                progress = into / IDLE_CROSSING_S if crossing % 2 == 0 else 1 - into / IDLE_CROSSING_S
                x0 = round(-sprite_width + progress * (width + sprite_width))
                y0 = height // 3
                left, right = max(x0, 0), min(x0 + sprite_width, width)
                if right > left:
                    frame[y0 : y0 + sprite_height, left:right] = sprite[:, left - x0 : right - x0]
            image = av.VideoFrame.from_ndarray(np.clip(frame, 0, 255).astype(np.uint8), format="bgr24")
            container.mux(stream.encode(image))
        container.mux(stream.encode())
    partial.rename(path)
    return path


def cpu_seconds_by_process() -> dict[str, float]:
    """CPU time of this process ("main": capture, decoding, motion, tracking, alignment) and of each
    live child (the model processes, by kind: "detector", "embedder")."""
    times = {"main": cpu_seconds()}
    ticks = os.sysconf("SC_CLK_TCK")
    for child in multiprocessing.active_children():
        try:
            fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kind = child.name.split("-")[0]
        times[kind] = times.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return times


VARIANTS = {
    "default": {},
    # What the libraries do when nobody configures them: OpenCV, FAISS and every model process
    # take all cores.
    "library-threads": {"threads": {"opencv": 0, "faiss": 0, "model_process": os.cpu_count() or 2}},
    # One face per embedding call (the default batches up to 8).
    "batch-1": {"embedder": {"max_batch": 1}},
    # The previous default embedder: dlib's ResNet on dlib's own runtime.
    "dlib-bin": {"embedder": {"backend": "dlib_bin"}},
    # Every frame decoded (OpenCV), as before frame skipping; "camera" options go to each camera.
    "decode-all": {"camera": {"decoder": "opencv"}},
    # Shorter frame queues: fewer stale frames waiting for detection.
    "queue-2": {"camera": {"queue_size": 2}},
    "queue-1": {"camera": {"queue_size": 1}},
    # Every frame detected whole through the shared detection queue, as before motion gating.
    "no-motion": {"motion": {"enabled": False}},
    # Fewer faces waiting for the embedder (the default holds 16).
    "embed-queue-8": {"embedder": {"queue_size": 8}},
    # At most two faces of a track embedded instead of three.
    "attempts-2": {"tracker": {"max_attempts": 2}},
    # Regions around live tracks at full size instead of shrunk to the face (motion.region_face_px).
    "regions-full-size": {"motion": {"region_face_px": 0}},
    # The motion mask at twice the default width (finer: finds small moving heads the default misses).
    "motion-320": {"motion": {"width": 320}},
    # Two detector processes serving the detection queue (the default is one).
    "detect-workers-2": {"detector": {"workers": 2}},
    # Embed every face of every frame instead of deciding per track.
    "no-tracking": {"tracker": {"max_attempts": 50, "better_face_ratio": 0.0}},
}


def variant_settings(variant: str, camera: dict, streams: int, detector: dict, gallery: str | None) -> Settings:
    """``streams`` cameras like ``camera`` and the ``detector``, with the variant's options over them."""
    overrides = dict(VARIANTS[variant])
    camera = {**camera, **overrides.pop("camera", {})}
    return Settings(
        cameras=[{"name": f"cam{i}", **camera} for i in range(streams)],
        detector={**detector, **overrides.pop("detector", {})},
        gallery={"path": gallery},
        events={"jsonl": ""},
        **overrides,
    )


def run(url: str, streams: int, fps: float, seconds: float, detector: dict, gallery: str | None,
        variant: str, start_s: float = 0.0) -> dict:
    """``start_s``: decisions made in the first seconds (every camera opening its stream at once,
    a person already in view) are also left out of a second, steady-state latency figure."""
    settings = variant_settings(variant, {"url": url, "loop": True, "detect_fps": fps}, streams, detector, gallery)
    daemon = Daemon(settings)
    cpu_before, started = cpu_seconds_by_process(), time.monotonic()
    daemon.start()
    start_s = min(start_s, seconds)
    time.sleep(start_s)
    decided_at_start = len(daemon.decisions.latencies)
    time.sleep(seconds - start_s)
    cpu_after = cpu_seconds_by_process()  # before shutdown ends the model processes
    cpu = {kind: cpu_after[kind] - cpu_before.get(kind, 0.0) for kind in cpu_after}
    daemon.request_stop()
    daemon.shutdown()
    wall = time.monotonic() - started
    stats = daemon.stats()
    cameras = stats["cameras"].values()
    total = lambda key: sum(camera.get(key, 0) for camera in cameras)  # noqa: E731
    latencies = np.array(daemon.decisions.latencies) * 1000
    steady = latencies[decided_at_start:]
    embedded = stats["embedder"].get("faces_embedded", 0)
    batches = stats["embedder"]["batches"]
    return {
        "variant": variant,
        "streams": streams,
        "detect_fps": fps,
        "seconds": round(wall, 1),
        "frames_captured_per_s": round(total("frames_sent") / wall, 2),
        "frames_processed_per_s": round(total("frames_processed") / wall, 2),
        "frames_dropped": total("frames_dropped"),
        "drop_ratio": round(total("frames_dropped") / max(total("frames_sent"), 1), 3),
        # Of the frames processed: skipped for no motion (nothing to detect); not looked at (stale in the queue).
        "skipped_ratio": round(total("frames_skipped_no_motion") / max(total("frames_processed"), 1), 3),
        "not_detected": total("frames_not_detected"),
        "faces_detected_per_s": round(total("faces_detected") / wall, 2),
        "faces_embedded": embedded,
        "faces_embedded_per_s": round(embedded / wall, 2),
        # Every camera runs in real time (live, or files paced like live), so each adds wall seconds of video.
        "embedded_per_video_s": round(embedded / (wall * streams), 2),
        "detect_busy_ratio": round(stats["detector"]["busy_s"] / wall, 2),
        "embed_busy_ratio": round(stats["embedder"]["embed_seconds"] / wall, 2),
        "mean_batch": round(embedded / max(sum(batches.values()), 1), 2),
        "latency_p50_ms": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else None,
        "latency_p95_ms": round(float(np.percentile(latencies, 95)), 1) if len(latencies) else None,
        "decisions": len(latencies),
        # Decisions after the first start_s seconds only: the pipeline at its steady pace.
        "steady_p95_ms": round(float(np.percentile(steady, 95)), 1) if len(steady) else None,
        "cpu_cores_used": round(sum(cpu.values()) / seconds, 2),
        # Cores used by each process: where the time goes.
        **{f"cores_{kind}": round(cpu.get(kind, 0.0) / seconds, 2) for kind in ("main", "detector", "embedder")},
        # What carries from box to box (with the matmul rate printed beside it); cameras held do not.
        "cores_per_camera": round(sum(cpu.values()) / seconds / streams, 3),
    }


def cost(clip: str, fps: float, detector: dict, variant: str) -> dict:
    """One camera reading the clip once, as fast as the pipeline takes it: what detection costs
    per video second, without the box's load in it (nothing goes stale or is dropped)."""
    import av

    settings = variant_settings(variant, {"url": clip, "loop": False, "realtime": False, "detect_fps": fps}, 1, detector, None)
    with av.open(clip) as container:
        stream = container.streams.video[0]
        video_s = float(stream.duration * stream.time_base) if stream.duration else stream.frames / float(stream.average_rate)
    daemon = Daemon(settings)
    daemon.start()
    while daemon.cameras[0].state != "ended" or daemon.trackers[0].is_alive():
        time.sleep(0.2)
    daemon.request_stop()
    daemon.shutdown()
    stats = daemon.stats()
    counters = stats["cameras"]["cam0"]
    return {
        "variant": variant,
        "video_s": round(video_s, 1),
        "detector_s_per_video_s": round(stats["detector"]["busy_s"] / video_s, 4),
        "frames": counters.get("frames_processed", 0),
        "skipped": counters.get("frames_skipped_no_motion", 0),
        "regions": counters.get("frames_detected_regions", 0),
        "full": sum(v for k, v in counters.items() if k.startswith("frames_detected_full")),
        "full_for_cost": counters.get("frames_detected_full_cost", 0),
        "faces_detected": counters.get("faces_detected", 0),
        "tracks": counters.get("tracks_started", 0),
        "faces_embedded": stats["embedder"].get("faces_embedded", 0),
        "decisions": len(daemon.decisions.latencies),
    }


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--clip", type=Path, default=CROWD_CLIP,
                        help="a video file, or 'idle' for the generated idle scene (written once to the temp directory)")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--start-s", type=float, default=5.0,
                        help="steady_p95_ms leaves out the decisions made in these first seconds")
    parser.add_argument("--detector", choices=["yunet", "yuface", "yunet_onnx"], default="yunet")
    parser.add_argument("--model-path", type=Path, default=YUNET_ONNX)
    parser.add_argument("--gallery", help="gallery directory (default: none, every face unknown)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["default"],
                        help="also run with library-default threads or without tracking, side by side")
    parser.add_argument("--quick", action="store_true", help="10 s per configuration")
    parser.add_argument("--rtsp", action="store_true", help="serve the clip live over RTSP instead of as files")
    parser.add_argument("--cost", action="store_true", help="one camera, the clip once as fast as it goes: detection's cost")
    args = parser.parse_args()
    if str(args.clip) == "idle":
        args.clip = idle_clip()
    if not args.clip.exists():
        parser.error(f"clip not found: {args.clip}")
    configure_logging("warning")
    detector = {"backend": args.detector}
    if args.detector == "yunet_onnx":
        detector["model_path"] = str(args.model_path)
    if args.cost:
        rows = [cost(str(args.clip), args.fps, detector, variant) for variant in args.variants]
        print(f"clip {args.clip.name}, one camera read once as fast as the pipeline takes it, detector {args.detector}")
        print_table(rows, 12, cut=True)
        for row in rows[1:]:
            print(f"{row['variant']} / {rows[0]['variant']}: detector time "
                  f"{row['detector_s_per_video_s'] / max(rows[0]['detector_s_per_video_s'], 1e-9):.2f}x, faces detected "
                  f"{row['faces_detected'] / max(rows[0]['faces_detected'], 1):.2f}x, decisions {row['decisions']} vs {rows[0]['decisions']}")
        if args.json:
            print(json.dumps({"clip": str(args.clip), "detector": args.detector, "cost": rows}))
        return 0
    seconds = 10.0 if args.quick else args.seconds
    rate_1, rate_2 = matmul_gflops_on(1), matmul_gflops_on(2)
    with served_over_rtsp(args.clip) if args.rtsp else nullcontext(str(args.clip)) as url:
        rows = [
            run(url, n, args.fps, seconds, detector, args.gallery, variant, args.start_s)
            for variant in args.variants
            for n in args.streams
        ]

    print(f"clip {args.clip.name} {'live over RTSP' if args.rtsp else 'as files'}, detector {args.detector}, {seconds:.0f} s per run; "
          f"float32 matmul {rate_1:.1f} GFLOP/s on one thread, {rate_2:.1f} on two (measured before the runs)")
    print_table(rows, 12, cut=True)
    for variant in args.variants[1:]:
        for n in args.streams:
            base = next(r for r in rows if r["variant"] == args.variants[0] and r["streams"] == n)
            other = next(r for r in rows if r["variant"] == variant and r["streams"] == n)
            print(
                f"{n} stream(s), {variant} / {args.variants[0]}: processed frames {other['frames_processed_per_s'] / max(base['frames_processed_per_s'], 1e-9):.2f}x, "
                f"faces embedded per video second {other['embedded_per_video_s'] / max(base['embedded_per_video_s'], 1e-9):.2f}x, "
                f"p95 latency {other['latency_p95_ms']} vs {base['latency_p95_ms']} ms"
            )
    if args.json:
        print(json.dumps({"clip": str(args.clip), "rtsp": args.rtsp, "detector": args.detector,
                          "matmul_gflops_1_thread": round(rate_1, 1), "matmul_gflops_2_threads": round(rate_2, 1), "runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
