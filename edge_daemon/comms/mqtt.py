"""MQTT transport (paho-mqtt 2.x), fed from the disk spool so that nothing is lost.

Topics, for many boxes on one broker: ``<prefix>/events`` (every box's events; each names its
``box``) and ``<prefix>/<box>/<camera>/events`` (QoS 1, never retained: a replayed retained event
must not open a door); ``<prefix>/<box>/availability`` (retained: ``online`` on connect,
``offline`` as Last Will, ``stopped`` on clean shutdown); ``<prefix>/<box>/stats`` when enabled;
and the Home Assistant discovery and entity topics (see ``homeassistant.py``). The client id is
``edge-daemon-<box>`` unless configured.

Home Assistant discovery is published by the sender thread alone, between events: on connecting,
when Home Assistant comes online, and when the gallery's people change (``announce_people``). One
thread keeps a reconnection's announcement and a gallery change from interleaving, which could leave
a removed person's config retained after its removal.

``publish`` appends to the spool. A sender thread delivers waiting events oldest first, one at a
time, and deletes each only after the broker acknowledged all of its messages; while the broker is
away events wait on disk and the client reconnects with backoff (``broker.BrokerLink``, which logs
why it cannot connect). After a crash the next start delivers what was left (possibly once more:
QoS 1; consumers dedupe on event_id).

Delivery does not depend on the disk. When the spool cannot be written (a full or read-only disk,
or no spool at all after a degraded start) the event waits in memory instead, and goes to the
broker from there first (counted ``unspooled``): once, and lost if the daemon dies before the broker
has it. The memory holds at most ``spool.memory_events``; beyond, with the broker away too, the
oldest are dropped, counted, and the first drop of an outage is logged. Every event tries the spool
first, so it comes back into use by itself as soon as a write succeeds.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge_daemon.comms.broker import BrokerLink, new_client
from edge_daemon.comms.homeassistant import HomeAssistantDiscovery
from edge_daemon.comms.spool import EventSpool, SpooledEvent
from edge_daemon.config import MqttConfig
from edge_daemon.logs import RepeatedFailure, get_logger
from edge_daemon.messages import Event

log = get_logger(__name__)

ONLINE, OFFLINE, STOPPED = "online", "offline", "stopped"
MEMORY_EVENTS = 1000  # spool.memory_events' default


@dataclass(frozen=True)
class UnspooledEvent:
    """An event the spool could not take, waiting in memory."""

    camera: str
    payload: str


class MqttTransport:
    name = "mqtt"

    def __init__(
        self,
        config: MqttConfig,
        box: str,
        spool: EventSpool | None,
        discovery: HomeAssistantDiscovery | None = None,
        memory_events: int = MEMORY_EVENTS,
        no_spool_reason: str = "",
    ):
        """``spool`` None: the spool could not be opened (``no_spool_reason`` says why); every event
        waits in memory."""
        self._config = config
        self.spool = spool
        self._no_spool_reason = no_spool_reason
        self._discovery = discovery
        self._box_topic = f"{config.prefix}/{box}"
        self.availability_topic = f"{self._box_topic}/availability"
        self.health_topic = f"{self._box_topic}/health"  # as discovery.health_topic announces it
        self.delivered = 0  # events the broker acknowledged (reported as published_mqtt)
        self._memory: deque[UnspooledEvent] = deque()
        self._memory_events = memory_events
        self.memory_dropped = 0
        self._dropping = False  # an outage's first drop was logged
        self._spool_writes = RepeatedFailure(
            log, "event spool cannot be written: events wait in memory for the broker", "event spool written again"
        )
        self._spool_reads = RepeatedFailure(log, "event spool cannot be read", "event spool read again")
        self._other_problems: Callable[[], list[str]] = list
        self._health_sent: list[str] | None = None
        self._pending = threading.Condition()  # guards _memory and the announcements due; notified when either grows
        self._discovery_due = False  # every discovery message: after connecting, or when Home Assistant came online
        self._people_due: list[str] | None = None  # the gallery's people, changed since last announced
        self._closing = threading.Event()
        self._client = new_client(config, config.client_id or f"edge-daemon-{box}", clean_session=False)
        self._client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        self._client.on_message = self._on_message
        self.link = BrokerLink(self._client, config, "events", on_ready=self._on_ready)
        self.connected = self.link.connected
        self.link.start()
        self._sender = threading.Thread(target=self._send_pending, name="mqtt-sender", daemon=True)
        self._sender.start()

    def _on_ready(self, client) -> None:
        client.publish(self.availability_topic, ONLINE, qos=1, retain=True)
        if self._discovery is not None:
            client.subscribe(self._discovery.status_topic, qos=1)
            self._announce_everything()
        self._send_health(client)  # the broker may have lost it
        waiting = self.spool_depth() + self.memory_depth()
        if waiting:
            log.info("delivering waiting events", spooled=self.spool_depth(), in_memory=self.memory_depth())

    def status(self) -> dict:
        """The broker state (connected, or since when not and why), the spool and the memory buffer."""
        return {**self.link.state(), "spool_depth": self.spool_depth(), "spool_dropped": self.spool.dropped if self.spool else 0,
                "memory_depth": self.memory_depth(), "memory_dropped": self.memory_dropped}

    def spool_depth(self) -> int:
        return self.spool.depth() if self.spool is not None else 0

    def memory_depth(self) -> int:
        with self._pending:
            return len(self._memory)

    @property
    def problem(self) -> str | None:
        """Why events cannot wait on disk now, or None: the spool is fine."""
        if self.spool is None:
            return f"no event spool ({self._no_spool_reason}); events wait in memory, at most {self._memory_events}"
        reason = self._spool_writes.reason
        if reason is not None:
            return f"event spool {self.spool.path} cannot be written ({reason}); events wait in memory, at most {self._memory_events}"
        return None

    def set_other_problems(self, problems: Callable[[], list[str]]) -> None:
        """What else makes the daemon degraded now (no history or crops, a history that cannot
        record), for the health topic."""
        self._other_problems = problems
        self._publish_health()

    def _problems(self) -> list[str]:
        return self._other_problems() + ([self.problem] if self.problem else [])

    def _publish_health(self) -> None:
        """The health topic when it changed (looked at with every event), while connected."""
        if self.connected.is_set() and self._problems() != self._health_sent:
            self._send_health(self._client)

    def _send_health(self, client) -> None:
        """``<prefix>/<box>/health`` (retained): ``ok``, or ``degraded`` and why; Home Assistant's
        diagnostic entity reads it. Sent on connect and whenever it changes."""
        problems = self._problems()
        self._health_sent = problems
        state = "degraded" if problems else "ok"
        client.publish(self.health_topic, json.dumps({"state": state, "problems": problems}), qos=1, retain=True)

    def _announce_everything(self) -> None:
        with self._pending:
            self._discovery_due = True
            self._pending.notify_all()

    def announce_people(self, people: Iterable[str]) -> None:
        """The people of the gallery in use, at start and whenever it changes: Home Assistant gets
        entities for those added and loses those of the removed (now when connected, else on connecting)."""
        if self._discovery is None:
            return
        with self._pending:
            self._people_due = list(people)
            self._pending.notify_all()

    def _publish_discovery(self) -> None:
        """What is due of Home Assistant's discovery (in the sender thread only)."""
        with self._pending:
            people, self._people_due = self._people_due, None
            everything, self._discovery_due = self._discovery_due, False
        changes = self._discovery.set_people(people) if people is not None else []
        for topic, payload in self._discovery.discovery_messages() if everything else changes:
            self._client.publish(topic, payload, qos=1, retain=True)

    def _on_message(self, client, userdata, message) -> None:
        if self._discovery is not None and message.topic == self._discovery.status_topic and message.payload == b"online":
            log.info("home assistant is online: publishing discovery again")
            self._announce_everything()

    def publish_stats(self, stats: dict) -> None:
        """Best effort, not spooled: a stats message is only worth something now."""
        if self.connected.is_set():
            self._client.publish(f"{self._box_topic}/stats", json.dumps(stats), qos=0, retain=False)

    def _messages(self, camera: str, payload: str) -> list[tuple[str, str, bool]]:
        """(topic, payload, retained) of one event."""
        messages = [(f"{self._config.prefix}/events", payload, False), (f"{self._box_topic}/{camera}/events", payload, False)]
        if self._discovery is not None:
            messages += self._discovery.entity_messages(json.loads(payload))
        return messages

    def publish(self, event: Event) -> str:
        """The event to the spool (returns ``spooled``) or, when the spool cannot take it, to memory
        (``unspooled``); the sender thread takes it from there."""
        payload, outcome = event.to_json(), "unspooled"
        if self.spool is not None:
            try:
                self.spool.append(event.camera, payload)
                outcome = "spooled"
                self._spool_writes.succeeded(spool=str(self.spool.path))
            except OSError as exc:
                self._spool_writes.failed(str(exc), spool=str(self.spool.path), in_memory=self.memory_depth())
        with self._pending:
            if outcome == "unspooled":
                self._keep_in_memory(UnspooledEvent(event.camera, payload))
            self._pending.notify_all()
        self._publish_health()
        return outcome

    def _keep_in_memory(self, event: UnspooledEvent) -> None:
        # Called holding _pending.
        if len(self._memory) >= self._memory_events:
            self._memory.popleft()
            self.memory_dropped += 1
            if not self._dropping:
                self._dropping = True
                log.error(
                    "events dropped: the spool cannot be written, the broker is away and the memory buffer is full; "
                    "the oldest go first, counted in memory_dropped",
                    memory_events=self._memory_events, broker=self.link.reason,
                )
        self._memory.append(event)

    def _next(self) -> UnspooledEvent | SpooledEvent | None:
        """The next event to send: those in memory first (they are lost if the daemon stops), then
        the spool's oldest."""
        with self._pending:
            if self._memory:
                return self._memory[0]
        if self.spool is not None:
            pending = self.spool.oldest(1)
            if pending:
                return pending[0]
        with self._pending:
            self._pending.wait(0.2)
        return None

    def _delivered(self, item: UnspooledEvent | SpooledEvent) -> None:
        if isinstance(item, SpooledEvent):
            self.spool.remove(item.row_id)
        else:
            with self._pending:
                if self._memory and self._memory[0] is item:
                    self._memory.popleft()
                if not self._memory and self._dropping:
                    self._dropping = False
                    log.info("memory buffer delivered", memory_dropped_total=self.memory_dropped)
        self.delivered += 1

    def _send_pending(self) -> None:
        while not self._closing.is_set():
            if not self.connected.wait(0.2):
                continue
            if self._discovery is not None:
                self._publish_discovery()
                for topic, payload, retain in self._discovery.presence_refresh():
                    self._client.publish(topic, payload, qos=1, retain=retain)
            try:
                item = self._next()
            except sqlite3.Error as exc:  # a damaged spool: what waits in memory still goes
                self._spool_reads.failed(str(exc), spool=str(self.spool.path))
                time.sleep(1)
                continue
            self._spool_reads.succeeded()
            if item is None:
                continue
            infos = [
                self._client.publish(topic, payload, qos=1, retain=retain)
                for topic, payload, retain in self._messages(item.camera, item.payload)
            ]
            # paho keeps an unacknowledged QoS 1 message across reconnects, so wait rather than resend.
            while not all(info.is_published() for info in infos):
                if self._closing.is_set():
                    return
                time.sleep(0.002)
            self._delivered(item)

    def close(self, drain_timeout_s: float = 5.0) -> None:
        """Deliver what the broker will take within the timeout (the rest stays spooled for the next
        start), announce ``stopped``, disconnect."""
        deadline = time.monotonic() + drain_timeout_s
        while self.connected.is_set() and self.spool_depth() + self.memory_depth() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._closing.set()
        self._sender.join(timeout=2)
        left = self.spool_depth()
        if left:
            log.warning("events left in the spool for the next start", events=left, spool=str(self.spool.path))
        lost = self.memory_depth()
        if lost:
            log.error("events in memory not delivered: lost (the spool could not take them)", events=lost)
        if self.connected.is_set():
            self._client.publish(self.availability_topic, STOPPED, qos=1, retain=True).wait_for_publish(timeout=2)
        self.link.stop()
        if self.spool is not None:
            self.spool.close()
