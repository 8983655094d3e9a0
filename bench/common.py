"""What the benchmarks share: the shared-data paths, the argument parser, CPU time and memory of
processes, timing a call, a clip's frames and rate, a table of result rows, a clip served live."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from tests.support.paths import CROWD_CLIP, DATA, HAMILTON_CLIP, LFW, ROOT, YUNET_ONNX
from tests.support.rtsp import started_server

__all__ = [
    "CROWD_CLIP", "DATA", "FUSED_DIM", "HAMILTON_CLIP", "LFW", "LFW_CACHE", "ROOT", "YUNET_ONNX",
    "argument_parser", "clip_facts", "cpu_seconds", "matmul_gflops", "matmul_gflops_on", "print_table", "read_frames",
    "rss_kib", "served_over_rtsp", "timed",
]

LFW_CACHE = Path("/tmp/edge-lfw/cache")  # embeddings of degraded LFW images, kept between runs
FUSED_DIM = 128 + 192  # the default fused embedder: dlib's ResNet and MobileFaceNet


def argument_parser(doc: str, json: bool = True) -> argparse.ArgumentParser:
    """The benchmark's parser: its docstring as the description, and ``--json`` unless ``json`` is False."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if json:
        parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return parser


def cpu_seconds() -> float:
    """User and system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kib(pid: int) -> int:
    """Resident memory of a live process (0 when its status has no VmRSS line)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed(function: Callable[[], object], repeats: int = 1) -> tuple[float, object]:
    """Seconds ``function`` takes (the median of ``repeats`` calls) and what its last call returned."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """float32 matrix product (numpy's BLAS, its own thread count) in GFLOP/s: the box's compute limit."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = min(timed(lambda: a @ b)[0] for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def matmul_gflops_on(threads: int) -> float:
    """``matmul_gflops`` with BLAS limited to ``threads`` threads (measured in a child process, since
    BLAS fixes its thread count when loaded). Printed beside a run, it is what turns the run's figures
    into ratios that carry from one box to another."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    code = "from bench.common import matmul_gflops; print(matmul_gflops())"
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def clip_facts(clip: Path) -> tuple[int, float]:
    """The clip's frame count and frame rate (25 where the container does not say)."""
    capture = cv2.VideoCapture(str(clip))
    frames, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), capture.get(cv2.CAP_PROP_FPS) or 25.0
    capture.release()
    return frames, fps


def read_frames(clip: Path, count: int | None = None, step: int = 1) -> list[np.ndarray]:
    """Every ``step``-th frame of the clip from the start, at most ``count`` of them (None: all)."""
    capture = cv2.VideoCapture(str(clip))
    frames, index = [], 0
    while count is None or len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(frame)
        index += 1
    capture.release()
    return frames


def print_table(rows: list[dict], width: int, cut: bool = False) -> None:
    """The rows under their keys, each column right-aligned to ``width`` (``cut``: no wider)."""
    spec = f">{width}.{width}" if cut else f">{width}"
    columns = list(rows[0])
    print("  ".join(format(str(column), spec) for column in columns))
    for row in rows:
        print("  ".join(format(str(row[column]), spec) for column in columns))


@contextmanager
def served_over_rtsp(clip: Path) -> Iterator[str]:
    """The clip served live and looping by the test suite's GStreamer RTSP server; yields its URL."""
    with tempfile.TemporaryDirectory() as scratch:
        server = started_server(clip, Path(scratch))
        try:
            yield server.url
        finally:
            server.stop()
