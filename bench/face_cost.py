"""What one face costs: ``edge-daemon gallery build`` over LFW photos (decode, detect, align and
embed each photo, one face each), on one core, as photos per GFLOP of the box's matmul rate.

The command runs as a user runs it, pinned to one core (``taskset``), once over a one-photo gallery
(start-up: imports and loading the models) and once over ``--people`` x ``--photos`` photos; the
difference of their CPU times over the difference of their photos is the marginal CPU time of a
photo. "photos per GFLOP" = photos per CPU second / the float32 matmul rate on one thread (measured
in the same run): a ratio that carries from one box to another.

``--checkout DIR`` runs another checkout's code with its own ``models/`` (a frozen worktree of an
older commit, for before/after); ``--rounds`` alternates the checkouts that many times; ``--env``
sets configuration for every run (``EDGE_EMBEDDER__PRECISION=int8``).

    .venv/bin/python -m bench.face_cost --checkout /work/wt/base --checkout . --rounds 3
    .venv/bin/python -m bench.face_cost --env EDGE_EMBEDDER__PRECISION=int8
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import LFW, ROOT, argument_parser, matmul_gflops_on

RUN_CLI = "import sys; from edge_daemon.cli import main; sys.exit(main())"


def lfw_people(people: int, photos: int) -> list[tuple[str, list[Path]]]:
    """The first ``people`` LFW people (by name) with at least ``photos`` photos, and those photos."""
    chosen = []
    for person in sorted(path for path in LFW.iterdir() if path.is_dir() and not path.name.startswith("_")):
        images = sorted(person.glob("*.jpg"))
        if len(images) >= photos:
            chosen.append((person.name, images[:photos]))
            if len(chosen) == people:
                return chosen
    raise SystemExit(f"LFW at {LFW} has fewer than {people} people with {photos} photos")


def gallery_directory(root: Path, people: list[tuple[str, list[Path]]]) -> Path:
    """A gallery source directory of links to the photos: <root>/<person>/<photo>."""
    for name, images in people:
        (root / name).mkdir(parents=True)
        for image in images:
            (root / name / image.name).symlink_to(image)
    return root


def build_cpu_seconds(checkout: Path, photos_dir: Path, out: Path, settings: dict[str, str]) -> tuple[float, float, dict]:
    """CPU and wall seconds of one ``gallery build`` of ``photos_dir`` with ``checkout``'s code, on one core."""
    env = {**os.environ, **settings, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = ["taskset", "-c", "0", sys.executable, "-c", RUN_CLI, "gallery", "build", str(photos_dir), "--out", str(out), "--force"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=checkout, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"gallery build failed in {checkout}:\n{result.stderr[-2000:]}")
    summary = json.loads(result.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, summary


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--checkout", type=Path, action="append", help="a checkout to measure (repeatable; default: this one)")
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--photos", type=int, default=4, help="photos per person")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the checkouts this many times")
    parser.add_argument("--env", action="append", default=[], metavar="EDGE_NAME=VALUE", help="configuration for every run")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.env)
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed to pin the command to one core")
    checkouts = [path.resolve() for path in (args.checkout or [ROOT])]
    people = lfw_people(args.people, args.photos)
    photos = sum(len(images) for _, images in people)
    rate = matmul_gflops_on(1)
    print(f"float32 matmul on one thread: {rate:.1f} GFLOP/s; {photos} LFW photos of {len(people)} people; "
          f"settings {settings or 'default'}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        name, images = people[0]
        small = gallery_directory(scratch / "one", [(name, images[:1])])
        full = gallery_directory(scratch / "all", people)
        for round_number in range(args.rounds):
            for checkout in checkouts:
                start_cpu, _, _ = build_cpu_seconds(checkout, small, scratch / "out", settings)
                cpu, wall, summary = build_cpu_seconds(checkout, full, scratch / "out", settings)
                ms_per_photo = 1000 * (cpu - start_cpu) / (photos - 1)
                row = {
                    "checkout": str(checkout), "round": round_number + 1, "photos": photos,
                    "embeddings": summary["embeddings"], "skipped": len(summary["skipped"]),
                    "cpu_ms_per_photo": round(ms_per_photo, 2), "wall_s": round(wall, 1),
                    "matmul_gflops_1_thread": round(rate, 1),
                    "photos_per_gflop": round(1000 / ms_per_photo / rate, 3),
                }
                rows.append(row)
                print(f"{checkout}  round {row['round']}: {row['cpu_ms_per_photo']} ms CPU a photo, "
                      f"{row['photos_per_gflop']} photos per GFLOP ({row['embeddings']} embedded, {row['skipped']} skipped)",
                      flush=True)
    if args.json:
        print(json.dumps({"matmul_gflops_1_thread": round(rate, 1), "runs": rows}))


if __name__ == "__main__":
    main()
