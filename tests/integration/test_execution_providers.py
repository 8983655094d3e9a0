"""Execution providers: OpenVINO where onnxruntime-openvino is installed (scripts/test-openvino.sh
runs this module in such a venv), and everywhere the fall back to the CPU provider with its reason."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
from structlog.testing import capture_logs

from edge_daemon.config import DetectorConfig, EmbedderConfig, Settings
from edge_daemon.detectors import create_detector
from edge_daemon.embedders import create_embedder
from edge_daemon.models.files import prepared_model
from edge_daemon.models.onnx import OPENVINO, Provider, onnx_session
from edge_daemon.pipeline.daemon import Daemon
from edge_daemon.recognition.images import find_faces, load_image
from tests.support.paths import DATA, HAMILTON_CLIP, need

HAS_OPENVINO = OPENVINO in onnxruntime.get_available_providers()
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="onnxruntime-openvino is not installed here (scripts/test-openvino.sh)")


def fall_backs(logs: list[dict]) -> list[dict]:
    return [entry for entry in logs if entry["event"].startswith("OpenVINO not used")]


@pytest.fixture(scope="module")
def photo():
    return load_image(need(DATA / "photos" / "group" / sorted(p.name for p in (DATA / "photos" / "group").glob("*.jpg"))[0]))


def test_every_model_gives_the_cpu_providers_results_on_openvino_or_its_fall_back(photo):
    """Detector and embedders configured for OpenVINO find and embed the same faces as on the CPU:
    on OpenVINO where it is installed (logged as such), else on the CPU with one line saying why."""
    cpu_detector = create_detector(DetectorConfig(), separate_process=False)
    cpu_embedder = create_embedder(EmbedderConfig(), separate_process=False)
    with capture_logs() as logs:
        detector = create_detector(DetectorConfig(provider="openvino"), separate_process=False)
        embedder = create_embedder(EmbedderConfig(provider="openvino"), separate_process=False)
    if HAS_OPENVINO:
        assert [entry["model"] for entry in logs if entry["event"] == "model runs on OpenVINO"] == ["yunet", "dlib_onnx", "mobilefacenet"]
        assert not fall_backs(logs)
    else:
        assert [(entry["model"], entry["log_level"]) for entry in fall_backs(logs)] == [
            ("yunet", "warning"), ("dlib_onnx", "warning"), ("mobilefacenet", "warning"),
        ]
        assert all("onnxruntime-openvino" in entry["reason"] for entry in fall_backs(logs))
    faces, cpu_faces = find_faces(photo, detector), find_faces(photo, cpu_detector)
    assert len(faces) == len(cpu_faces) >= 2
    for face, cpu_face in zip(faces, cpu_faces):
        assert np.abs(np.subtract(face.bbox, cpu_face.bbox)).max() <= 1.0
    crops = [cpu_embedder.aligner.align(photo, face) for face in cpu_faces]
    cosines = (embedder.embed(crops) * cpu_embedder.embed(crops)).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


@needs_openvino
@pytest.mark.parametrize("device", ["NPU", "GPU.3", "HETERO:NPU,CPU"])
def test_a_device_the_box_lacks_falls_back_with_the_reason(device):
    with capture_logs() as logs:
        session = onnx_session(prepared_model("yunet", None), 1, Provider("openvino", device), label="yunet")
    assert session.get_providers() == ["CPUExecutionProvider"]
    (entry,) = fall_backs(logs)
    assert f"no {device.split(':')[-1].split(',')[0]} device" in entry["reason"] and "it has: CPU" in entry["reason"]


@pytest.mark.parametrize("provider", ["cpu", "openvino"])
def test_the_hamilton_clip_names_the_same_person_on_each_provider(provider, hamilton_gallery, tmp_path):
    events_file = tmp_path / "events.jsonl"
    settings = Settings(
        cameras=[{"name": "stage", "url": str(need(HAMILTON_CLIP)), "realtime": False}],
        gallery={"path": str(hamilton_gallery)},
        events={"jsonl": str(events_file)},
        history={"enabled": False},
        detector={"provider": provider},
        embedder={"provider": provider},
    )
    daemon = Daemon(settings)
    daemon.start()
    daemon.cameras[0].join(240)
    daemon.shutdown()
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    named = {event["identity"] for event in events if event["type"] == "recognized"}
    assert named == {"lin_manuel_miranda"}, events
