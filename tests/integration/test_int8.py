"""int8 copies of the models: made by ``models prepare`` from the stored ranges, checked against the
float model, refused when damaged or made from something else, and usable end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge_daemon.api import build_gallery
from edge_daemon.config import EmbedderConfig, Settings
from edge_daemon.embedders import create_embedder
from edge_daemon.models.files import (
    ModelFileError,
    file_sha256,
    find_int8,
    int8_ranges_file,
    prepared_model,
    read_check,
    read_manifest,
)
from edge_daemon.models.prepare.quantize import QuantisationError, quantize, read_ranges
from edge_daemon.pipeline.daemon import Daemon
from edge_daemon.recognition.images import find_faces, load_image
from tests.support.paths import DATA, HAMILTON, HAMILTON_CLIP, need

ENTRY = read_manifest()["dlib_resnet"]


@pytest.fixture
def model_copy(tmp_path):
    """A model directory holding copies of the prepared float and int8 dlib models and their checks."""
    int8 = prepared_model("dlib_resnet", None, "int8")
    float_model = prepared_model("dlib_resnet", None)
    for path in (int8, float_model):
        shutil.copy(path, tmp_path / path.name)
        shutil.copy(path.with_suffix(".check.json"), tmp_path / path.with_suffix(".check.json").name)
    return tmp_path


def test_the_prepared_int8_copy_passed_its_check_against_the_float_model():
    path = prepared_model("dlib_resnet", None, "int8")
    check = read_check(path)
    assert check["passed"] and check["precision"] == "int8"
    assert check["min_cosine"] >= ENTRY["int8"]["min_cosine"] and check["separation"] >= 0.05
    assert check["float_sha256"] == ENTRY["converted"]["sha256"]
    assert check["ranges_sha256"] == file_sha256(int8_ranges_file(ENTRY))


def test_a_damaged_int8_file_is_refused(model_copy):
    target = model_copy / ENTRY["int8"]["file"]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    assert find_int8("dlib_resnet", ENTRY, [model_copy]) is None
    with pytest.raises(ModelFileError, match="int8 model is not prepared"):
        prepared_model("dlib_resnet", model_copy, "int8")


def test_an_int8_file_made_from_another_float_model_is_refused(model_copy):
    check_file = model_copy / ENTRY["int8"]["file"].replace(".onnx", ".check.json")
    check = json.loads(check_file.read_text())
    check["float_sha256"] = "0" * 64
    check_file.write_text(json.dumps(check))
    assert find_int8("dlib_resnet", ENTRY, [model_copy]) is None


def test_ranges_for_another_float_model_or_damaged_are_refused(tmp_path):
    with pytest.raises(QuantisationError, match="another float model"):
        read_ranges(int8_ranges_file(ENTRY), "0" * 64)
    damaged = tmp_path / "ranges.json"
    document = json.loads(int8_ranges_file(ENTRY).read_text())
    document["ranges"]["embedding"] = [1.0, -1.0]
    damaged.write_text(json.dumps(document))
    with pytest.raises(QuantisationError, match="are not"):
        read_ranges(damaged, ENTRY["converted"]["sha256"])
    damaged.write_text("{not json")
    with pytest.raises(QuantisationError, match="cannot read"):
        read_ranges(damaged, ENTRY["converted"]["sha256"])


def test_quantising_gives_the_same_file_again(tmp_path):
    """The int8 file is a function of the float model and the ranges: the one prepared is made again."""
    ranges = read_ranges(int8_ranges_file(ENTRY), ENTRY["converted"]["sha256"])
    quantize(prepared_model("dlib_resnet", None), ranges, tmp_path / "again.onnx")
    assert file_sha256(tmp_path / "again.onnx") == file_sha256(prepared_model("dlib_resnet", None, "int8"))


def test_int8_embeddings_stay_close_to_float_ones_on_real_faces():
    float_embedder = create_embedder(EmbedderConfig(backend="dlib_onnx", flip=False), separate_process=False)
    int8_embedder = create_embedder(EmbedderConfig(backend="dlib_onnx", flip=False, precision="int8"), separate_process=False)
    assert int8_embedder.version.endswith("+int8") and int8_embedder.version != float_embedder.version
    from edge_daemon.config import DetectorConfig
    from edge_daemon.detectors import create_detector

    detector = create_detector(DetectorConfig(), separate_process=False)
    crops = []
    for path in sorted((DATA / "photos" / "group").glob("*.jpg")):
        image = load_image(path)
        crops += [float_embedder.aligner.align(image, face) for face in find_faces(image, detector)]
    assert len(crops) >= 8
    cosines = (float_embedder.embed(crops) * int8_embedder.embed(crops)).sum(axis=1)
    assert cosines.min() >= ENTRY["int8"]["min_cosine"], np.round(cosines, 4)


def test_the_hamilton_clip_names_the_same_person_with_int8(tmp_path, default_detector):
    config = EmbedderConfig(precision="int8")
    embedder = create_embedder(config, separate_process=False)
    assert embedder.default_threshold is not None, embedder.threshold_source
    gallery, _ = build_gallery(need(HAMILTON / "gallery"), default_detector, embedder)
    gallery.save(tmp_path / "gallery")
    events_file = tmp_path / "events.jsonl"
    settings = Settings(
        cameras=[{"name": "stage", "url": str(need(HAMILTON_CLIP)), "realtime": False}],
        gallery={"path": str(tmp_path / "gallery")},
        events={"jsonl": str(events_file)},
        history={"enabled": False},
        embedder={"precision": "int8"},
    )
    daemon = Daemon(settings)
    daemon.start()
    daemon.cameras[0].join(240)
    daemon.shutdown()
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert {event["identity"] for event in events if event["type"] == "recognized"} == {"lin_manuel_miranda"}, events
