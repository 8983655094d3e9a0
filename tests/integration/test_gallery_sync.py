"""One gallery for the fleet, over a real mosquitto: a revision that is partial, corrupt, foreign or
older is refused and the gallery in use stays."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt
import pytest

from edge_daemon.comms.gallery_sync import (
    chunk_topic,
    chunks,
    gallery_parts,
    make_manifest,
    manifest_topic,
    publish_gallery,
)
from edge_daemon.config import MqttConfig
from edge_daemon.recognition.gallery import Gallery
from tests.support.gallery_sync import PREFIX, embedder_of, newer_revision, start_sync
from tests.support.waiting import wait_until


def publish_by_hand(broker, gallery_dir, alter=None, drop=None, embedder_version=None):
    """Publish like ``publish_gallery``, but with one chunk altered or left out, or another embedder."""
    gallery, parts = gallery_parts(gallery_dir)
    manifest = make_manifest(gallery, parts, 2048)
    if embedder_version is not None:
        manifest["embedder_version"] = embedder_version
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="by-hand")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    infos = []
    for name, data in parts.items():
        for index, chunk in enumerate(chunks(data, 2048)):
            topic = chunk_topic(PREFIX, gallery.version, name, index)
            if topic == drop:
                continue
            payload = bytes([chunk[0] ^ 0xFF]) + chunk[1:] if topic == alter else chunk
            infos.append(client.publish(topic, payload, qos=1, retain=True))
    infos.append(client.publish(manifest_topic(PREFIX), json.dumps(manifest), qos=1, retain=True))
    for info in infos:
        info.wait_for_publish(10)
    client.loop_stop()
    client.disconnect()
    return manifest


@pytest.mark.parametrize("fault", ["altered", "missing", "foreign"])
def test_a_partial_corrupt_or_foreign_revision_is_refused_and_the_gallery_in_use_stays(fault, broker, hamilton_gallery, tmp_path):
    embedder = embedder_of(hamilton_gallery)
    current = Gallery.load(hamilton_gallery)
    local = tmp_path / "local"
    current.save(local)
    sync, adopted = start_sync(broker, local, embedder, current, incomplete_after_s=3)
    try:
        newer = newer_revision(hamilton_gallery, tmp_path / "newer")
        first_chunk = chunk_topic(PREFIX, Gallery.load(newer).version, "embeddings.npy", 0)
        publish_by_hand(broker, newer, alter=first_chunk if fault == "altered" else None,
                        drop=first_chunk if fault == "missing" else None,
                        embedder_version="another-model" if fault == "foreign" else None)
        reason = {"altered": "refused_corrupt", "missing": "refused_incomplete", "foreign": "refused_foreign"}[fault]
        assert wait_until(lambda: sync.counters.get(reason) == 1, 10), sync.counters.values
        assert adopted == [] and sync.current_version == current.version
        assert Gallery.load(local).version == current.version  # nothing written
    finally:
        sync.close()


def test_an_older_revision_is_refused(broker, hamilton_gallery, tmp_path):
    embedder = embedder_of(hamilton_gallery)
    newer = Gallery.load(newer_revision(hamilton_gallery, tmp_path / "newer"))
    newer.save(tmp_path / "local")
    sync, adopted = start_sync(broker, tmp_path / "local", embedder, newer)
    try:
        publish_gallery(hamilton_gallery, MqttConfig(url=broker.url), PREFIX, chunk_bytes=1 << 20)
        assert wait_until(lambda: sync.counters.get("refused_older") == 1, 10), sync.counters.values
        assert adopted == [] and sync.current_version == newer.version
    finally:
        sync.close()
