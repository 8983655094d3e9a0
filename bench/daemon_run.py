"""N cameras through ``edge-daemon run``, the way a user runs it: JSON logs, the metrics server,
the face history and the events file all on, one process tree.

Each camera loops the clip as a realtime file (like a live camera: frames are dropped, not queued,
when detection is behind). After ``--warmup-s`` the metrics are read, and again ``--seconds`` later;
the CPU time of the daemon's whole process tree is read at the same two moments. Printed per run:

- frames dropped (of the frames the cameras read), and the detector's and embedder's busy ratios:
  how much margin is left;
- first decisions made within 1 s of capture (``edge_daemon_capture_to_event_seconds``);
- cores used in all and per camera, and the main process's share: cores per camera carry from box
  to box, cameras held do not;
- the float32 matmul rate of this box on one thread, measured before the runs: the figure to scale
  by on another box.

``--checkout DIR`` (repeatable) runs another checkout's code with its own ``models/`` (a frozen
worktree, for before/after); ``--rounds`` alternates the checkouts.

    .venv/bin/python -m bench.daemon_run --cameras 6 --seconds 60
    .venv/bin/python -m bench.daemon_run --cameras 6 8 --checkout /work/wt/base --checkout . --rounds 3
    .venv/bin/python -m bench.daemon_run --clip idle --cameras 32 64   # the idle scene of bench.pipeline
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench.common import CROWD_CLIP, HAMILTON_CLIP, ROOT, argument_parser, matmul_gflops_on, print_table
from tests.support.waiting import free_port

RUN_CLI = "import sys; from edge_daemon.cli import main; sys.exit(main())"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def config_text(clip: Path, cameras: int, fps: float, state: Path, port: int, gallery: Path | None,
                camera_options: list[str]) -> str:
    lines = []
    for index in range(cameras):
        lines += ["[[cameras]]", f'name = "cam{index}"', f'url = "{clip}"', "loop = true", "realtime = true",
                  f"detect_fps = {fps}", *camera_options, ""]
    lines += ["[events]", f'jsonl = "{state / "events.jsonl"}"', "",
              "[history]", "enabled = true", f'path = "{state / "history"}"', "",
              "[spool]", f'path = "{state / "spool.db"}"', "",
              "[service]", f"metrics_port = {port}", "",
              "[logging]", 'format = "json"', ""]
    if gallery is not None:
        lines += ["[gallery]", f'path = "{gallery}"', ""]
    return "\n".join(lines)


def process_tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + system) of ``root`` and every descendant, by pid."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(entry.name), int(fields[1])
        children.setdefault(parent, []).append(pid)
        times[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in times:
            tree[pid] = times[pid]
            todo += children.get(pid, [])
    return tree


def scrape(port: int) -> dict[str, float]:
    """The metrics as {name{labels}: value}, camera labels summed away."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "camera"}
            key = sample.name + (json.dumps(labels, sort_keys=True) if labels else "")
            values[key] = values.get(key, 0.0) + sample.value
    return values


def wait_for_metrics(port: int, process: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"edge-daemon run exited with {process.returncode} before serving metrics")
        try:
            scrape(port)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("edge-daemon run served no metrics in time")


def one_run(checkout: Path, clip: Path, cameras: int, fps: float, warmup_s: float, seconds: float, gallery: Path | None,
            camera_options: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        state, port = Path(scratch), free_port()
        config = state / "config.toml"
        config.write_text(config_text(clip, cameras, fps, state, port, gallery, camera_options))
        env = {**os.environ, "PYTHONPATH": str(checkout), "STATE_DIRECTORY": str(state)}
        with open(state / "daemon.log", "w") as log:
            process = subprocess.Popen([sys.executable, "-c", RUN_CLI, "run", "--config", str(config)],
                                       cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_metrics(port, process)
            time.sleep(warmup_s)
            before, cpu_before, started = scrape(port), process_tree_cpu(process.pid), time.monotonic()
            time.sleep(seconds)
            after, cpu_after, wall = scrape(port), process_tree_cpu(process.pid), time.monotonic() - started
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        delta = {key: after[key] - before.get(key, 0.0) for key in after}
        cpu = {pid: cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after}
        read = delta.get("edge_daemon_frames_sent_total", 0.0) + delta.get("edge_daemon_frames_dropped_total", 0.0)
        within_1s = delta.get('edge_daemon_capture_to_event_seconds_bucket{"le": "1.0"}', 0.0)
        decisions = delta.get("edge_daemon_capture_to_event_seconds_count", 0.0)
        cores = sum(cpu.values()) / wall
        return {
            "checkout": checkout.name or str(checkout),
            "cameras": cameras,
            "dropped_pct": round(100 * delta.get("edge_daemon_frames_dropped_total", 0.0) / max(read, 1), 2),
            "decisions": int(decisions),
            "within_1s_pct": round(100 * within_1s / max(decisions, 1), 1),
            "faces_embedded": int(delta.get("edge_daemon_faces_embedded_total", 0.0)),
            "detector_busy": round(delta.get("edge_daemon_detector_busy_seconds_total", 0.0) / wall, 2),
            "embedder_busy": round(delta.get("edge_daemon_embedder_busy_seconds_total", float("nan")) / wall, 2),
            "cores": round(cores, 2),
            "cores_main": round(cpu.get(process.pid, 0.0) / wall, 2),
            "cores_per_camera": round(cores / cameras, 3),
            "main_per_camera": round(cpu.get(process.pid, 0.0) / wall / cameras, 3),
        }


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--cameras", type=int, nargs="+", default=[6])
    parser.add_argument("--clip", default="crowd",
                        help="'crowd' (1080p25), 'hamilton', 'idle' (bench.pipeline's idle scene, 720p25), or a video file")
    parser.add_argument("--fps", type=float, default=5.0, help="detect_fps of every camera")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds of each run")
    parser.add_argument("--warmup-s", type=float, default=15.0, help="seconds after start-up left out")
    parser.add_argument("--gallery", type=Path, help="a gallery directory (default: none, every face unknown)")
    parser.add_argument("--checkout", type=Path, action="append", help="a checkout to run (repeatable; default: this one)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the checkouts this many times")
    parser.add_argument("--camera-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a TOML line for every camera, e.g. idle_keyframes_after_s=30")
    args = parser.parse_args()
    if args.clip == "idle":
        from bench.pipeline import idle_clip

        clip = idle_clip()
    else:
        clip = {"crowd": CROWD_CLIP, "hamilton": HAMILTON_CLIP}.get(args.clip, Path(args.clip))
    if not clip.exists():
        parser.error(f"clip not found: {clip}")
    checkouts = [path.resolve() for path in (args.checkout or [ROOT])]
    rate_1, rate_2 = matmul_gflops_on(1), matmul_gflops_on(2)
    print(f"float32 matmul: {rate_1:.1f} GFLOP/s on one thread, {rate_2:.1f} on two; clip {clip.name}, "
          f"{args.fps:g} detect-fps, {args.seconds:g} s measured after {args.warmup_s:g} s", flush=True)
    rows = []
    for round_number in range(args.rounds):
        for checkout in checkouts:
            for cameras in args.cameras:
                row = {"round": round_number + 1,
                       **one_run(checkout, clip, cameras, args.fps, args.warmup_s, args.seconds, args.gallery,
                                 args.camera_option)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print_table(rows, 10, cut=True)
    if args.json:
        print(json.dumps({"matmul_gflops_1_thread": round(rate_1, 1), "matmul_gflops_2_threads": round(rate_2, 1),
                          "clip": str(clip), "runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
