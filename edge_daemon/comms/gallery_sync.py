"""One gallery for a fleet of boxes, distributed by the MQTT broker as retained messages.

A revision is published as chunks, then a manifest that names them (retained, QoS 1):

  <prefix>/gallery/<version>/<part>/<index>   part bytes, at most ``chunk_bytes`` a message
  <prefix>/gallery/manifest                   format, embedder and version, revision, rows, and
                                              per part its sha256, size and chunk count

The manifest goes out last, so a subscriber never sees one whose chunks were not sent; a newer
manifest replaces the older at once, and the superseded chunks are then cleared (an empty retained
payload deletes a retained message). The parts are the gallery's three files and, when it keeps
face crops, ``faces.tar`` (plain JPEG files, names checked on the way in).

A daemon with ``gallery.sync = "mqtt"`` (``GallerySync``) collects a manifest's chunks, checks each
part's hash, that the revision is newer than its own and made by its embedder configuration,
writes it to its local gallery directory (so a restart without the broker still has it) and hands
it to the matcher, which swaps it in between two batches. Anything partial, corrupt, foreign or
older is refused, logged and counted; the gallery in use stays.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edge_daemon.comms.broker import BrokerLink, new_client
from edge_daemon.config import MqttConfig
from edge_daemon.counters import StageCounters
from edge_daemon.logs import get_logger
from edge_daemon.recognition.gallery import FACES_DIR, Gallery, GalleryError, locked

log = get_logger(__name__)

SYNC_FORMAT = "edge-daemon-gallery-sync/1"
# A TCP connect and a TLS handshake may each take paho's 5 s connect timeout.
PUBLISH_CONNECT_TIMEOUT_S = 15.0
FACES_PART = "faces.tar"


class SyncError(RuntimeError):
    """A revision that cannot be published or adopted; ``reason`` is the counter it goes to."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def manifest_topic(prefix: str) -> str:
    return f"{prefix}/gallery/manifest"


def chunk_topic(prefix: str, version: str, part: str, index: int) -> str:
    return f"{prefix}/gallery/{version}/{part}/{index}"


# --- packing ------------------------------------------------------------------------------


def gallery_parts(directory: Path) -> tuple[Gallery, dict[str, bytes]]:
    """The gallery saved at ``directory`` and the bytes of each part to publish."""
    gallery = Gallery.load(directory)
    parts = gallery.files()
    faces = [name for name in dict.fromkeys(gallery.faces) if name]
    if faces:
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(faces):
                data = (Path(directory) / FACES_DIR / name).read_bytes()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        parts[FACES_PART] = archive.getvalue()
    return gallery, parts


def make_manifest(gallery: Gallery, parts: dict[str, bytes], chunk_bytes: int) -> dict:
    return {
        "format": SYNC_FORMAT,
        "version": gallery.version,
        "revision": gallery.revision,
        "embedder": gallery.embedder,
        "embedder_version": gallery.embedder_version,
        "rows": len(gallery.labels),
        "chunk_bytes": chunk_bytes,
        "parts": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "chunks": max(1, -(-len(data) // chunk_bytes))}
            for name, data in parts.items()
        },
    }


def chunks(data: bytes, chunk_bytes: int) -> list[bytes]:
    return [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)] or [b""]


def unpack_faces(archive: bytes) -> dict[str, bytes]:
    """Face crops from a received ``faces.tar``: plain files with plain names only."""
    faces = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        for member in tar.getmembers():
            if not member.isfile() or Path(member.name).name != member.name or member.name.startswith("."):
                raise SyncError("corrupt", f"faces.tar holds {member.name!r}, not a plain face file")
            faces[member.name] = tar.extractfile(member).read()
    return faces


# --- publishing ---------------------------------------------------------------------------


def publish_gallery(directory: Path, config: MqttConfig, prefix: str, chunk_bytes: int, timeout_s: float = 120) -> dict:
    """Publish the gallery at ``directory`` as the fleet's current revision; returns its manifest."""
    gallery, parts = gallery_parts(directory)
    manifest = make_manifest(gallery, parts, chunk_bytes)
    client = new_client(config, f"edge-daemon-publish-{gallery.version}", clean_session=True)
    previous: list[dict] = []
    client.on_message = lambda c, u, message: previous.append(json.loads(message.payload)) if message.payload else None
    link = BrokerLink(client, config, "gallery publish")
    link.start()
    try:
        if not link.wait_settled(PUBLISH_CONNECT_TIMEOUT_S):
            reason = link.reason if link.failures else f"no answer within {PUBLISH_CONNECT_TIMEOUT_S:.0f} s"
            raise SyncError("broker", f"cannot connect to the broker at {link.broker}: {reason}")
        client.subscribe(manifest_topic(prefix), qos=1)
        time.sleep(0.5)  # the broker sends the retained manifest at once if there is one
        client.unsubscribe(manifest_topic(prefix))
        messages = [
            (chunk_topic(prefix, gallery.version, name, index), chunk)
            for name, data in parts.items()
            for index, chunk in enumerate(chunks(data, chunk_bytes))
        ]
        _publish_all(client, messages, timeout_s)
        _publish_all(client, [(manifest_topic(prefix), json.dumps(manifest).encode())], timeout_s)
        for old in previous:
            if old.get("version") != gallery.version:
                _publish_all(client, [(topic, b"") for topic in _chunk_topics(prefix, old)], timeout_s)
    finally:
        link.stop()
    log.info("gallery published", version=gallery.version, rows=manifest["rows"], messages=len(messages) + 1,
             bytes=sum(len(data) for data in parts.values()), superseded=[m.get("version") for m in previous])
    return manifest


def _chunk_topics(prefix: str, manifest: dict) -> list[str]:
    try:
        return [topic for name in manifest["parts"] for topic in _part_topics(prefix, manifest, name)]
    except (KeyError, TypeError, ValueError, AttributeError):
        return []  # an unreadable manifest: no chunks known


def _part_topics(prefix: str, manifest: dict, part: str) -> list[str]:
    count = int(manifest["parts"][part]["chunks"])
    return [chunk_topic(prefix, str(manifest["version"]), part, index) for index in range(count)]


def _publish_all(client, messages: list[tuple[str, bytes]], timeout_s: float) -> None:
    infos = [client.publish(topic, payload, qos=1, retain=True) for topic, payload in messages]
    deadline = time.monotonic() + timeout_s
    for info in infos:
        info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        if not info.is_published():
            raise SyncError("broker", f"the broker did not acknowledge the gallery within {timeout_s:.0f} s")


# --- adopting -------------------------------------------------------------------------------


@dataclass
class Candidate:
    """A manifest being collected: its chunks by topic, and since when it waits."""

    manifest: dict
    since: float
    received: dict[str, bytes]

    def missing(self, prefix: str) -> list[str]:
        return [topic for topic in _chunk_topics(prefix, self.manifest) if topic not in self.received]


class GallerySync:
    """The subscribing side, in the daemon: adopts the fleet's newest revision made for
    ``embedder`` (its name and version), writes it to ``directory`` and calls ``adopt(gallery)``."""

    def __init__(
        self,
        config: MqttConfig,
        prefix: str,
        client_id: str,
        embedder: tuple[str, str],
        directory: Path,
        current: Gallery | None,
        adopt: Callable[[Gallery], None],
        incomplete_after_s: float = 60.0,
    ):
        self.counters = StageCounters()
        self.current_version = current.version if current else None
        self._current_revision = current.revision if current else -1
        self._prefix = prefix
        self._embedder = embedder
        self._directory = Path(directory)
        self._adopt = adopt
        self._incomplete_after_s = incomplete_after_s
        self._lock = threading.Lock()
        self._candidate: Candidate | None = None
        self._early: dict[str, bytes] = {}  # chunks that came before their manifest
        self._client = new_client(config, client_id, clean_session=True)
        self._client.on_message = self._on_message
        self.link = BrokerLink(
            self._client, config, "gallery sync", on_ready=lambda client: client.subscribe(f"{prefix}/gallery/#", qos=1)
        )
        self.link.start()
        self._watchdog = threading.Event()
        self._timer = threading.Thread(target=self._expire, name="gallery-sync", daemon=True)
        self._timer.start()

    def made_here(self, gallery: Gallery) -> None:
        """``gallery`` was changed on this box and is being published: the revision coming back from
        the broker is not adopted again, and an older one still on its way is refused rather than
        written over the newer gallery on disk."""
        with self._lock:
            if gallery.revision > self._current_revision:
                self.current_version, self._current_revision = gallery.version, gallery.revision

    def _on_message(self, client, userdata, message) -> None:
        try:
            with self._lock:
                if message.topic == manifest_topic(self._prefix):
                    if message.payload:
                        self._consider(message.payload)
                elif message.payload:
                    self._chunk(message.topic, message.payload)
                ready = self._candidate if self._candidate and not self._candidate.missing(self._prefix) else None
                if ready is not None:
                    self._candidate = None
            if ready is not None:
                self._assemble(ready)
        except SyncError as exc:
            self._refuse(exc)

    def _consider(self, payload: bytes) -> None:
        try:
            manifest = json.loads(payload)
            version, revision = str(manifest["version"]), int(manifest["revision"])
            embedder = (str(manifest["embedder"]), str(manifest["embedder_version"]))
            if manifest["format"] != SYNC_FORMAT or not isinstance(manifest["parts"], dict):
                raise ValueError("not an edge-daemon gallery manifest")
        except (ValueError, KeyError, TypeError) as exc:
            raise SyncError("corrupt", f"unreadable gallery manifest: {exc}") from None
        if embedder != self._embedder:
            raise SyncError("foreign", f"gallery {version} was made by {embedder[0]} ({embedder[1]}), this box embeds "
                                       f"with {self._embedder[0]} ({self._embedder[1]})")
        if version == self.current_version:
            return
        if revision <= self._current_revision:
            raise SyncError("older", f"gallery {version} (revision {revision}) is not newer than the one in use, "
                                     f"{self.current_version} (revision {self._current_revision})")
        self._candidate = Candidate(manifest, time.monotonic(), {})
        wanted = set(_chunk_topics(self._prefix, manifest))
        self._candidate.received = {topic: data for topic, data in self._early.items() if topic in wanted}
        self._early.clear()
        log.info("gallery revision announced", version=version, rows=manifest.get("rows"))

    def _chunk(self, topic: str, payload: bytes) -> None:
        if self._candidate is not None and topic in set(_chunk_topics(self._prefix, self._candidate.manifest)):
            self._candidate.received[topic] = payload
        elif self._candidate is None:
            self._early[topic] = payload  # its manifest is probably on its way (retained order is not kept)

    def _assemble(self, candidate: Candidate) -> None:
        manifest = candidate.manifest
        parts = {}
        for name, part in manifest["parts"].items():
            data = b"".join(candidate.received[topic] for topic in _part_topics(self._prefix, manifest, name))
            if hashlib.sha256(data).hexdigest() != part.get("sha256") or len(data) != part.get("bytes"):
                raise SyncError("corrupt", f"gallery {manifest['version']}: part {name} does not match its sha256")
            parts[name] = data
        try:
            gallery = Gallery.from_files(parts, f"revision {manifest['version']} from the broker")
        except GalleryError as exc:
            raise SyncError("corrupt", str(exc)) from None
        if gallery.version != manifest["version"] or (gallery.embedder, gallery.embedder_version) != self._embedder:
            raise SyncError("corrupt", f"gallery {manifest['version']}: its files do not hold what the manifest says")
        if FACES_PART in parts:
            gallery.keep_faces(unpack_faces(parts[FACES_PART]))
        try:
            with locked(self._directory):
                gallery.save(self._directory)
        except OSError as exc:
            raise SyncError("disk", f"cannot write gallery {gallery.version} to {self._directory}: {exc}") from None
        self.current_version, self._current_revision = gallery.version, gallery.revision
        self._adopt(gallery)
        self.counters.add("adopted")
        log.info("gallery revision adopted", version=gallery.version, rows=len(gallery.labels),
                 wait_s=round(time.monotonic() - candidate.since, 2))

    def _refuse(self, error: SyncError) -> None:
        self.counters.add(f"refused_{error.reason}")
        log.error("gallery revision refused, keeping the gallery in use", reason=error.reason, error=str(error),
                  current=self.current_version)

    def _expire(self) -> None:
        """A manifest whose chunks do not all arrive within ``incomplete_after_s`` is refused."""
        while not self._watchdog.wait(1.0):
            with self._lock:
                candidate = self._candidate
                if candidate is None or time.monotonic() - candidate.since < self._incomplete_after_s:
                    continue
                self._candidate = None
                missing = len(candidate.missing(self._prefix))
            self._refuse(SyncError("incomplete", f"gallery {candidate.manifest['version']}: {missing} chunk(s) never "
                                                 f"arrived within {self._incomplete_after_s:.0f} s"))

    def close(self) -> None:
        self._watchdog.set()
        self._timer.join(timeout=2)
        self.link.stop()
