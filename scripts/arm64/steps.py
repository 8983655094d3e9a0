"""The steps both architectures run, each one's output kept for the comparison:

    python steps.py ARCH EDGE_DAEMON OUT SHARED ASSETS [--models-from DIR]

Each step's stdout and stderr go to OUT/<step>.out and OUT/<step>.err, its exit status and time to
OUT/steps.jsonl; a failed step does not stop the next ones (the comparison reports it). Runs by path
under the host's .venv Python and the arm64 rootfs's python3 alike, so it uses the standard library
only."""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

STEP_LOG = "steps.jsonl"
RECOGNIZED_PHOTOS = ("obama_and_biden.jpg", "kit_with_rose.jpg", "two_people.jpg")


def toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a TOML basic string


def demo_config(out: Path, name: str, clip: Path) -> str:
    """The daemon over CLIP with every frame read (realtime = false), events in OUT/NAME-events.jsonl."""
    return f"""[[cameras]]
name = "demo"
url = {toml_string(str(clip))}
realtime = false

[gallery]
path = {toml_string(str(out / "demo-gallery"))}

[events]
jsonl = {toml_string(str(out / f"{name}-events.jsonl"))}

[history]
enabled = false

# Frames are stamped with the wall clock when read, and tracks time out and widen their gates on it:
# 50x slower under emulation, a track would end or be decided at other frames than on x86_64. One
# embedding per track and no timeout make every decision depend on the frames alone.
[tracker]
max_missed_s = 3600
max_attempts = 1

# The shared detection queue skips frames older than queue_max_age_s (wall clock) when their turn
# comes: emulated detection is that slow, so give frames the longest wait it allows.
[detector]
queue_max_age_s = 60
"""


def plan(edge_daemon: str, out: Path, shared: Path, assets: Path, models_from: Path | None) -> list[tuple[str, list[str]]]:
    """(step name, command) in the order they run; the demo configurations must be written first."""
    gallery, photos = out / "hamilton-gallery", shared / "data" / "photos" / "group"
    prepare = ["models", "prepare"] + (["--from", str(models_from)] if models_from else [])
    commands = [
        ("models_prepare", prepare),
        ("models_list", ["models", "list", "--json"]),
        ("gallery_build", ["gallery", "build", str(shared / "data/video/hamilton/gallery"), "--out", str(gallery), "--force"]),
        ("gallery_list", ["gallery", "list", "--gallery", str(gallery), "--json"]),
        ("recognize", ["recognize", "--gallery", str(gallery), "--json", *(str(photos / name) for name in RECOGNIZED_PHOTOS)]),
        ("demo_gallery", ["gallery", "build", str(assets / "photos"), "--out", str(out / "demo-gallery"), "--force"]),
        ("demo_mp4", ["run", "--config", str(out / "demo_mp4.toml")]),
        ("demo_lossless", ["run", "--config", str(out / "demo_lossless.toml")]),
    ]
    return [(name, [edge_daemon, *arguments]) for name, arguments in commands]


def write_demo_configs(out: Path, assets: Path) -> None:
    for name, clip in (("demo_mp4", assets / "clip.mp4"), ("demo_lossless", assets / "clip-ffv1.mkv")):
        (out / f"{name}.toml").write_text(demo_config(out, name, clip), encoding="utf-8")


def run_step(out: Path, name: str, command: list[str]) -> dict:
    """Run one step; its record (step, rc as a shell reports it, seconds) is appended to OUT/steps.jsonl."""
    started = time.monotonic()
    with (out / f"{name}.out").open("wb") as stdout, (out / f"{name}.err").open("wb") as stderr:
        try:
            returncode = subprocess.run(command, stdout=stdout, stderr=stderr).returncode
        except OSError as exc:
            stderr.write(f"{exc}\n".encode())
            returncode = 127
    if returncode < 0:  # killed by a signal: the shell's 128 + signal number
        returncode = 128 - returncode
    record = {"step": name, "rc": returncode, "seconds": round(time.monotonic() - started, 1)}
    with (out / STEP_LOG).open("a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("arch")
    parser.add_argument("edge_daemon")
    parser.add_argument("out", type=Path)
    parser.add_argument("shared", type=Path)
    parser.add_argument("assets", type=Path)
    parser.add_argument("--models-from", type=Path, help="prepare the models from this model directory (another box's)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / STEP_LOG).write_text("", encoding="utf-8")
    write_demo_configs(args.out, args.assets)
    for name, command in plan(args.edge_daemon, args.out, args.shared, args.assets, args.models_from):
        record = run_step(args.out, name, command)
        print(f"[{args.arch}] {name:<16} rc={record['rc']} {record['seconds']}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
