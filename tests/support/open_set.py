"""What the open set tests of several tiers share."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import numpy as np

from edge_daemon.comms.dispatcher import EventDispatcher
from edge_daemon.comms.jsonl import JsonLinesTransport
from edge_daemon.config import DecisionConfig, EmbedderConfig, GalleryConfig
from edge_daemon.embedders.fused import fusion_version
from edge_daemon.messages import Shutdown
from edge_daemon.pipeline.decisions import DecisionMaker
from edge_daemon.pipeline.sinks import decision_sinks
from edge_daemon.recognition.gallery import Gallery
from edge_daemon.recognition.matcher import Matcher, use_thresholds

MEMBERS = EmbedderConfig().members


DEFAULT_VERSION = fusion_version(
    [("dlib_onnx", "dlib_face_recognition_resnet_model_v1"), ("mobilefacenet", "mobilefacenet-human-models-3.0.4")],
    [member.weight for member in MEMBERS],
)


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, np.float32)
    return vector / np.linalg.norm(vector)


def run_decisions(matcher, identifications, path: Path, mode="template"):
    """The events, as the JSON lines a consumer reads, and the decision counters."""
    inbox: queue.Queue = queue.Queue()
    dispatcher = EventDispatcher([JsonLinesTransport(str(path))])
    maker = DecisionMaker(inbox, decision_sinks(dispatcher), "fused", DEFAULT_VERSION, "box", matcher, DecisionConfig(mode=mode))
    maker.start()
    for message in [*identifications, Shutdown()]:
        inbox.put(message)
    maker.join(5)
    dispatcher.close()
    return [json.loads(line) for line in path.read_text().splitlines()], maker.drops.values


def ten_people_matcher(rng) -> tuple[Matcher, np.ndarray]:
    people = np.stack([unit(v) for v in rng.normal(size=(10, 64))])
    gallery = Gallery("fused", DEFAULT_VERSION, 64, 0.79, "test")
    for i, vector in enumerate(people):
        gallery.add(f"p{i}", vector[None, :], [f"p{i}.jpg"])
    use_thresholds(gallery, GalleryConfig())
    matcher = Matcher(GalleryConfig(), None)
    matcher.gallery = gallery
    return matcher, people
