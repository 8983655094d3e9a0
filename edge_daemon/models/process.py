"""Run a model in a child process.

dlib's face ResNet and libfacedetection (``yuface``) hold Python's GIL for the whole of each call
(another thread keeps only a small share of its speed while they run: docs/design/pipeline.md),
so in one process they starve the capture and tracking threads. A child process has its own GIL. Messages between the
two are our own numpy arrays and dataclasses over a private pipe.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from typing import Any, Callable

from edge_daemon.logs import get_logger

log = get_logger(__name__)

_CONTEXT = multiprocessing.get_context("spawn")  # never fork a process that runs threads


class IsolationError(RuntimeError):
    """The child process failed to start or died; the message says why."""


def _serve(
    connection, threads: int, factory: Callable[[Any], Any], argument: Any, method: str, attributes: tuple[str, ...]
) -> None:
    # Few compute threads per child: several children on a small box must not oversubscribe it
    # (an OpenMP pool per child made cameras drop frames; docs/design/pipeline.md).
    # Set before the model's libraries load: OpenMP, TensorFlow and OpenCV read them at start.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(threads)
    try:
        target = factory(argument)
    except Exception as exc:  # report to the parent, which raises it as its own error
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    connection.send(("ready", {name: getattr(target, name) for name in attributes}))
    call = getattr(target, method)
    while True:
        try:
            args = connection.recv()
        except EOFError:
            return
        try:
            connection.send(("ok", call(*args)))
        except Exception as exc:
            connection.send(("error", f"{type(exc).__name__}: {exc}"))


class _Worker:
    """One started child: its process and our end of the pipe."""

    def __init__(self, name: str, spec: tuple):
        """``spec``: (threads, factory, argument, method, attributes) for ``_serve``."""
        parent_end, child_end = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(target=_serve, args=(child_end, *spec), name=name, daemon=True)
        self.process.start()
        child_end.close()
        self.connection = parent_end
        status, payload = self.receive()
        if status != "ready":
            self.close()
            raise IsolationError(f"{name}: {payload}")
        self.attributes = payload

    def receive(self):
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            return "error", f"process exited with code {self.process.exitcode}"

    def close(self) -> None:
        self.connection.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()


class ChildProcess:
    """``factory(argument)`` built in a child process; ``call(*args)`` runs its ``method`` there.
    A child that dies is started again on the next call. With ``recycle_after``, the child is
    replaced after that many calls by a spare started in the background near the limit, so a
    library that leaks memory per call is bounded without a pause."""

    def __init__(
        self,
        name: str,
        factory: Callable[[Any], Any],
        argument: Any,
        method: str,
        attributes: tuple[str, ...] = (),
        recycle_after: int = 0,
        threads: int = 1,
    ):
        self._spec = (threads, factory, argument, method, attributes)
        self._name = name
        self._lock = threading.Lock()
        self._recycle_after = recycle_after
        self._calls = 0
        self._spare: _Worker | None = None
        self._spare_thread: threading.Thread | None = None
        self._worker = _Worker(name, self._spec)
        self.attributes: dict[str, Any] = self._worker.attributes
        self.recycled = 0

    def _start_spare(self) -> None:
        def start():
            try:
                self._spare = _Worker(self._name, self._spec)
            except IsolationError as exc:
                log.error("spare child process failed to start", process=self._name, error=str(exc))

        self._spare_thread = threading.Thread(target=start, name=f"{self._name}-spare", daemon=True)
        self._spare_thread.start()

    def _swap_in_spare(self) -> None:
        old, self._worker, self._spare, self._spare_thread = self._worker, self._spare, None, None
        self._calls = 0
        self.recycled += 1
        threading.Thread(target=old.close, daemon=True).start()
        log.info("child process recycled", process=self._name, times=self.recycled)

    def call(self, *args: Any) -> Any:
        with self._lock:
            if not self._worker.process.is_alive():
                log.warning("child process died, restarting", process=self._name, exitcode=self._worker.process.exitcode)
                self._worker = _Worker(self._name, self._spec)
                self._calls = 0
            if self._recycle_after:
                if self._calls >= self._recycle_after * 0.9 and self._spare_thread is None:
                    self._start_spare()
                if self._calls >= self._recycle_after and self._spare is not None:
                    self._swap_in_spare()
            try:
                self._worker.connection.send(args)
            except (BrokenPipeError, OSError) as exc:
                raise IsolationError(f"{self._name}: {exc}") from None
            status, payload = self._worker.receive()
            self._calls += 1
        if status != "ok":
            raise IsolationError(f"{self._name}: {payload}")
        return payload

    def close(self) -> None:
        if self._spare_thread is not None:
            self._spare_thread.join(timeout=30)
        for worker in (self._worker, self._spare):
            if worker is not None:
                worker.close()
