"""The transports (MQTT, JSON lines), through the event dispatcher (``comms.dispatcher``)."""

from __future__ import annotations

from edge_daemon.comms.dispatcher import EventDispatcher
from edge_daemon.pipeline.sinks.base import Decided


class Transports:
    """Hands each event to the dispatcher, which hands it to every transport."""

    def __init__(self, dispatcher: EventDispatcher):
        self._dispatcher = dispatcher

    def take(self, decided: Decided) -> Decided:
        self._dispatcher.publish(decided.event)
        return decided
