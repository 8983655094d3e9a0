"""Run a model in a child process.

dlib's face ResNet and libfacedetection (``yuface``) hold Python's GIL for the whole of each call
(measured: another thread keeps 8% and 25% of its speed while they run), so in one process they
starve the capture and tracking threads. A child process has its own GIL. Messages between the
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


def _serve(connection, factory: Callable[[Any], Any], argument: Any, method: str, attributes: tuple[str, ...]) -> None:
    # One compute thread per child: several children on a 2-core box must not oversubscribe it
    # (yuface's OpenMP pool made 2 cameras drop 39% of frames; with one thread each, none).
    os.environ["OMP_NUM_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(1)
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


class ChildProcess:
    """``factory(argument)`` built in a child process; ``call(*args)`` runs its ``method`` there.
    A child that dies is started again on the next call."""

    def __init__(self, name: str, factory: Callable[[Any], Any], argument: Any, method: str, attributes: tuple[str, ...] = ()):
        self._spec = (factory, argument, method, attributes)
        self._name = name
        self._lock = threading.Lock()
        self._process = None
        self._connection = None
        self.attributes: dict[str, Any] = {}
        self._start()

    def _start(self) -> None:
        parent_end, child_end = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(target=_serve, args=(child_end, *self._spec), name=self._name, daemon=True)
        self._process.start()
        child_end.close()
        self._connection = parent_end
        status, payload = self._receive()
        if status != "ready":
            self.close()
            raise IsolationError(f"{self._name}: {payload}")
        self.attributes = payload

    def _receive(self):
        try:
            return self._connection.recv()
        except (EOFError, OSError):
            return "error", f"process exited with code {self._process.exitcode}"

    def call(self, *args: Any) -> Any:
        with self._lock:
            if not self._process.is_alive():
                log.warning("child process died, restarting", process=self._name, exitcode=self._process.exitcode)
                self._start()
            try:
                self._connection.send(args)
            except (BrokenPipeError, OSError) as exc:
                raise IsolationError(f"{self._name}: {exc}") from None
            status, payload = self._receive()
        if status != "ok":
            raise IsolationError(f"{self._name}: {payload}")
        return payload

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
