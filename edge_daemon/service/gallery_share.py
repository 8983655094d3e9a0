"""Handing the gallery on to the fleet after the review pages changed it, when the box shares its
gallery over MQTT (``gallery.sync = "mqtt"``): the revision is published as ``edge-daemon gallery
publish`` does, in a thread of its own, so a page never waits on the broker. Changes made while a
publication is under way go out together after it (the gallery on disk is published, the newest);
one asked for before the daemon stops is still published. A failure is logged, and the next change
publishes everything again."""

from __future__ import annotations

import threading
from collections.abc import Callable

from edge_daemon.logs import get_logger

log = get_logger(__name__)

CLOSE_TIMEOUT_S = 30.0


class GalleryPublisher:
    """``request()`` asks for the gallery to be published; ``publish()`` (returning the manifest)
    does it, in the publisher's thread."""

    def __init__(self, publish: Callable[[], dict]):
        self._publish = publish
        self._condition = threading.Condition()
        self._pending = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="gallery-publish", daemon=True)
        self._thread.start()

    def request(self) -> None:
        with self._condition:
            self._pending = True
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    return
                self._pending = False
            try:
                manifest = self._publish()
            except Exception as exc:  # noqa: BLE001 - a broker or disk problem must not end the thread
                log.error("changed gallery not published to the fleet", error=str(exc))
            else:
                log.info("changed gallery published to the fleet", version=manifest["version"], rows=manifest["rows"])

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Publish what was asked for, then stop (waiting at most ``timeout_s``)."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join(timeout_s)
