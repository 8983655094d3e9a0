"""The event dispatcher: hands every event to every transport; one failing transport never
stops the others."""

from __future__ import annotations

from typing import Protocol

from edge_daemon.counters import StageCounters
from edge_daemon.logs import get_logger
from edge_daemon.messages import Event

log = get_logger(__name__)


class Transport(Protocol):
    name: str

    def publish(self, event: Event) -> None: ...

    def close(self) -> None:
        """Flush what is pending and release the connection or file."""
        ...


class EventDispatcher:
    def __init__(self, transports: list[Transport]):
        self.transports = transports
        self.counters = StageCounters()

    def publish(self, event: Event) -> None:
        for transport in self.transports:
            try:
                transport.publish(event)
                # A transport that takes an event only part of the way says how far (MQTT: "spooled";
                # it counts what the broker acknowledged itself).
                self.counters.add(f"{getattr(transport, 'accepted', 'published')}_{transport.name}")
            except Exception as exc:
                self.counters.add(f"failed_{transport.name}")
                log.error("event not delivered", transport=transport.name, event_id=event.event_id, error=str(exc))

    def close(self) -> None:
        for transport in self.transports:
            try:
                transport.close()
            except Exception as exc:
                log.error("transport did not close cleanly", transport=transport.name, error=str(exc))
