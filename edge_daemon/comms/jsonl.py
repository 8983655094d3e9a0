"""JSON-lines transport: one event per line to stdout or appended to a file, flushed per event."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from edge_daemon.messages import Event


class JsonLinesTransport:
    name = "jsonl"

    def __init__(self, target: str):
        self._lock = threading.Lock()
        if target == "-":
            self._stream, self._owned = sys.stdout, False
        else:
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._stream, self._owned = open(path, "a", encoding="utf-8"), True

    def publish(self, event: Event) -> None:
        with self._lock:
            self._stream.write(event.to_json() + "\n")
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            self._stream.flush()
            if self._owned:
                self._stream.close()
