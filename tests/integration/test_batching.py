"""The embedding worker's micro-batching, with the default embedder on real face crops."""

from __future__ import annotations

import queue
import threading
import time

import cv2
import pytest

from edge_daemon.config import GalleryConfig, Settings
from edge_daemon.messages import FaceSample, Identification, Shutdown, TrackEnded
from edge_daemon.pipeline.daemon import Daemon
from edge_daemon.pipeline.embedding import EmbeddingWorker
from edge_daemon.recognition.matcher import Matcher
from tests.support.paths import DATA, HAMILTON_CLIP, need


@pytest.fixture(scope="module")
def face_crops(default_detector, default_embedder):
    image = cv2.imread(str(need(DATA / "photos" / "group" / "multiface.jpg")))
    return [default_embedder.aligner.align(image, d) for d in default_detector.detect(image)]


def sample(camera: str, track_id: int, crop) -> FaceSample:
    return FaceSample(camera, track_id, (0, 0, 10, 10), 1.0, crop, None, time.time(), time.time())


def start_worker(embedder, max_batch, max_wait_ms):
    faces, output = queue.Queue(), queue.Queue()
    worker = EmbeddingWorker(embedder, Matcher(GalleryConfig(), embedder), faces, output, max_batch, max_wait_ms)
    worker.start()
    return worker, faces, output


def test_lone_face_leaves_within_max_wait(default_embedder, face_crops):
    started = time.perf_counter()
    default_embedder.embed(face_crops[:1])
    single_embed_s = time.perf_counter() - started
    worker, faces, output = start_worker(default_embedder, max_batch=16, max_wait_ms=40)
    try:
        sent = time.perf_counter()
        faces.put(sample("a", 1, face_crops[0]))
        result = output.get(timeout=10)
        waited = time.perf_counter() - sent
        assert isinstance(result, Identification)
        # The batch closes after 40 ms even though it is not full; embedding one face takes single_embed_s.
        assert waited < 0.040 + 3 * single_embed_s + 0.1, (waited, single_embed_s)
        assert worker.batch_sizes.values == {1: 1}
    finally:
        faces.put(Shutdown())
        worker.join(10)


def test_several_cameras_under_load_make_batches_larger_than_one(default_embedder, face_crops):
    worker, faces, output = start_worker(default_embedder, max_batch=8, max_wait_ms=50)
    per_camera = 12

    def camera(name: str):
        for i in range(per_camera):
            faces.put(sample(name, i, face_crops[i % len(face_crops)]))
            time.sleep(0.01)

    producers = [threading.Thread(target=camera, args=(f"cam{n}",)) for n in range(3)]
    for producer in producers:
        producer.start()
    for producer in producers:
        producer.join()
    faces.put(TrackEnded("cam0", 999, (0, 0, 1, 1)))
    faces.put(Shutdown())
    worker.join(60)
    results = []
    while not output.empty():
        results.append(output.get())
    identifications = [r for r in results if isinstance(r, Identification)]
    assert len(identifications) == 3 * per_camera
    assert max(worker.batch_sizes.values) > 1 and max(worker.batch_sizes.values) <= 8
    assert sum(size * count for size, count in worker.batch_sizes.values.items()) == 3 * per_camera
    assert isinstance(results[-2], TrackEnded) and isinstance(results[-1], Shutdown)  # order kept


def test_daemon_with_three_cameras_batches(hamilton_gallery):
    clip = str(need(HAMILTON_CLIP))
    settings = Settings(
        cameras=[{"name": f"cam{i}", "url": clip, "realtime": False} for i in range(3)],
        gallery={"path": str(hamilton_gallery)},
        events={"jsonl": ""},
        embedder={"max_batch": 8},
    )
    daemon = Daemon(settings)
    daemon.start()
    for camera in daemon.cameras:
        camera.join(240)
    daemon.shutdown()
    stats = daemon.stats()
    assert max(stats["embedder"]["batches"]) > 1, stats["embedder"]
    for name in ("cam0", "cam1", "cam2"):
        assert stats["cameras"][name]["state"] == "ended"
        assert stats["cameras"][name].get("frames_dropped", 0) == 0  # non-realtime files never drop
        assert stats["cameras"][name]["frames_processed"] == stats["cameras"][name]["frames_sent"]
