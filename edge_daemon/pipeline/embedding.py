"""The batched embedding worker: one thread, fed by every camera, embedding faces in micro-batches.

A batch closes when it holds ``max_batch`` faces or when its first face has waited ``max_wait_ms``,
whichever comes first. Messages that are not faces (track ends) pass through in order, after the
faces that came before them.
"""

from __future__ import annotations

import queue
import threading
import time

from edge_daemon.counters import StageCounters
from edge_daemon.logs import get_logger
from edge_daemon.messages import FaceQueue, FaceSample, Identification, IdentificationQueue, Shutdown
from edge_daemon.recognition.matcher import Matcher

log = get_logger(__name__)


class EmbeddingWorker(threading.Thread):
    def __init__(
        self,
        embedder,
        matcher: Matcher,
        faces: FaceQueue,
        output: IdentificationQueue,
        max_batch: int,
        max_wait_ms: float,
    ):
        super().__init__(name="embedder", daemon=True)
        self.counters = StageCounters()
        self.batch_sizes = StageCounters()  # batch size -> batches
        self.embed_seconds = 0.0
        self._embedder = embedder
        self._matcher = matcher
        self._faces = faces
        self._output = output
        self._max_batch = max_batch
        self._max_wait_s = max_wait_ms / 1000.0

    def run(self) -> None:
        finished = False
        while not finished:
            batch: list[FaceSample] = []
            passing: list[object] = []
            finished = self._collect(batch, passing)
            if batch:
                self._embed(batch)
            for message in passing:
                self._output.put(message)

    def _collect(self, batch: list[FaceSample], passing: list[object]) -> bool:
        """Fill one batch. Returns True once the shutdown sentinel has been taken."""
        deadline = None
        while len(batch) < self._max_batch:
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                break
            try:
                message = self._faces.get(timeout=timeout)
            except queue.Empty:
                break
            if isinstance(message, FaceSample):
                batch.append(message)
                if deadline is None:
                    deadline = time.monotonic() + self._max_wait_s
            else:
                passing.append(message)
                if isinstance(message, Shutdown):
                    return True
                if not batch:
                    break  # nothing waits for it: pass it on now
        return False

    def _embed(self, batch: list[FaceSample]) -> None:
        started = time.perf_counter()
        try:
            vectors = self._embedder.embed([sample.crop for sample in batch])
            matches, gallery_version = self._matcher.match(vectors, [sample.quality for sample in batch])
        except Exception:  # a failing batch is counted and logged; the worker keeps going
            self.counters.add("faces_failed", len(batch))
            log.exception("embedding failed", faces=len(batch))
            return
        self.embed_seconds += time.perf_counter() - started
        self.batch_sizes.add(len(batch))
        self.counters.add("faces_embedded", len(batch))
        now = time.time()
        for sample, match, vector in zip(batch, matches, vectors):
            self._output.put(
                Identification(sample, match.identity, match.score, gallery_version, now, vector, match.verdict)
            )
