"""The event dispatcher: hands every event to every transport; one failing transport never
stops the others, and one that keeps failing is logged with counts (``logs.RepeatedFailure``), not
once per event."""

from __future__ import annotations

from typing import Protocol

from edge_daemon.counters import StageCounters
from edge_daemon.logs import RepeatedFailure, get_logger
from edge_daemon.messages import Event

log = get_logger(__name__)


class Transport(Protocol):
    name: str

    def publish(self, event: Event) -> str | None:
        """Take the event; return how far it went when that is not all the way (MQTT: ``spooled``,
        or ``unspooled`` when it waits in memory), None for ``published``."""
        ...

    def close(self) -> None:
        """Flush what is pending and release the connection or file."""
        ...


class EventDispatcher:
    def __init__(self, transports: list[Transport]):
        self.transports = transports
        self.counters = StageCounters()
        self._failures = {
            transport.name: RepeatedFailure(log, "events not delivered", "events delivered again") for transport in transports
        }

    def publish(self, event: Event) -> None:
        for transport in self.transports:
            failures = self._failures[transport.name]
            try:
                # A transport that takes an event only part of the way says how far (MQTT counts what
                # the broker acknowledged itself).
                outcome = transport.publish(event) or "published"
            except Exception as exc:
                self.counters.add(f"failed_{transport.name}")
                failures.failed(str(exc), transport=transport.name, event_id=event.event_id)
                continue
            self.counters.add(f"{outcome}_{transport.name}")
            failures.succeeded(transport=transport.name)

    def close(self) -> None:
        for transport in self.transports:
            try:
                transport.close()
            except Exception as exc:
                log.error("transport did not close cleanly", transport=transport.name, error=str(exc))
