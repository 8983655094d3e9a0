"""Fleet gallery benchmark: from ``gallery publish`` to every box using the revision.

A real mosquitto on a loopback port (as in the tests), two subscribers doing what a daemon with
``gallery.sync = "mqtt"`` does (``GallerySync``: collect, check, write to disk, hand to the
matcher), and synthetic galleries of 100, 10,000 and 100,000 rows of the default embedder's
dimension (random unit vectors; no face crops). Prints, per size: the revision's bytes and
messages, the time to publish it, the time until both boxes use it, and the broker's resident
memory with the revision retained.

  .venv/bin/python -m bench.gallery_sync
  .venv/bin/python -m bench.gallery_sync --rows 100 10000 --json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import FUSED_DIM, argument_parser, print_table, rss_kib
from edge_daemon.comms.gallery_sync import GallerySync, publish_gallery
from edge_daemon.config import EmbedderConfig, MqttConfig
from edge_daemon.embedders.fused import fusion_version
from edge_daemon.logs import configure_logging
from edge_daemon.recognition.gallery import Gallery
from tests.support.broker import Broker

PREFIX = "bench"


def synthetic_gallery(rows: int, revision: int) -> Gallery:
    config = EmbedderConfig()
    version = fusion_version(
        [(m.backend, "synthetic") for m in config.members], [m.weight for m in config.members]
    )
    vectors = np.random.default_rng(rows).standard_normal((rows, FUSED_DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = [f"person_{i // 4}" for i in range(rows)]
    sources = [f"{label}.jpg" for label in labels]
    return Gallery("fused", version, FUSED_DIM, 0.79, "synthetic", labels, sources, vectors, revision)


def run(rows: int, revision: int, broker: Broker, scratch: Path, chunk_bytes: int) -> dict:
    gallery = synthetic_gallery(rows, revision)
    source = scratch / f"published-{rows}"
    gallery.save(source)
    boxes = []
    for name in ("north", "south"):
        adopted: list[float] = []
        sync = GallerySync(MqttConfig(url=broker.url), PREFIX, f"bench-{name}-{rows}", (gallery.embedder, gallery.embedder_version),
                           scratch / f"{name}-{rows}", None,
                           lambda g, adopted=adopted: adopted.append(time.monotonic()) if g.version == gallery.version else None)
        boxes.append((sync, adopted))
    time.sleep(1.0)  # both subscribed
    memory_before = rss_kib(broker.process.pid)
    started = time.monotonic()
    manifest = publish_gallery(source, MqttConfig(url=broker.url), PREFIX, chunk_bytes)
    published = time.monotonic()
    deadline = published + 600
    while not all(adopted for _, adopted in boxes) and time.monotonic() < deadline:
        time.sleep(0.01)
    for sync, _ in boxes:
        sync.close()
    if not all(adopted for _, adopted in boxes):
        raise SystemExit(f"{rows} rows: not adopted within 600 s")
    return {
        "rows": rows,
        "bytes": sum(part["bytes"] for part in manifest["parts"].values()),
        "messages": sum(part["chunks"] for part in manifest["parts"].values()) + 1,
        "publish_s": round(published - started, 2),
        "both_boxes_use_it_s": round(max(adopted[0] for _, adopted in boxes) - started, 2),
        "broker_rss_mib": round(rss_kib(broker.process.pid) / 1024, 1),
        "broker_rss_growth_mib": round((rss_kib(broker.process.pid) - memory_before) / 1024, 1),
    }


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100, 10_000, 100_000])
    parser.add_argument("--chunk-bytes", type=int, default=1 << 20)
    args = parser.parse_args()
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as scratch:
        broker = Broker(Path(scratch))
        broker.start()
        try:
            results = [run(rows, revision, broker, Path(scratch), args.chunk_bytes) for revision, rows in enumerate(args.rows, 1)]
        finally:
            broker.stop()
    print(f"mosquitto on loopback, 2 subscribing boxes, chunks of {args.chunk_bytes} bytes; each revision replaces the last")
    print_table(results, 20)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
