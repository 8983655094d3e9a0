"""The embedder package: flip averaging, fusion arithmetic, one gallery and threshold per
configuration, and the model files' checks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge_daemon.api import find_faces, load_image
from edge_daemon.config import DetectorConfig, EmbedderConfig, FusionMember
from edge_daemon.embedders import EmbedderError, create_local_embedder
from edge_daemon.embedders.base import l2_normalise
from edge_daemon.models.files import file_sha256
from edge_daemon.models.prepare.store import ModelStore
from edge_daemon.models.prepare.verify import onnx_embeddings, parity_check, verification_faces
from edge_daemon.recognition.gallery import Gallery, GalleryError
from tests.support.paths import DATA, need


def embedder(backend: str, **options):
    return create_local_embedder(EmbedderConfig(backend=backend, **options))


@pytest.fixture(scope="module")
def group_faces(default_detector):
    """(image, detection) for every face of the shared group photos."""
    faces = []
    for path in sorted(need(DATA / "photos" / "group").glob("*.jpg")):
        image = load_image(path)
        faces += [(image, detection) for detection in find_faces(image, default_detector)]
    assert len(faces) >= 8
    return faces


def embed(embedder_, faces) -> np.ndarray:
    return embedder_.embed([embedder_.aligner.align(image, detection) for image, detection in faces])


@pytest.mark.parametrize("backend", ["dlib_onnx", "mobilefacenet"])
def test_flip_averaging_is_the_normalised_sum_of_face_and_mirror(backend, group_faces):
    single, flipped = embedder(backend, flip=False), embedder(backend, flip=True)
    crops = [single.aligner.align(image, detection) for image, detection in group_faces[:4]]
    mirrors = [np.ascontiguousarray(crop[:, ::-1]) for crop in crops]
    expected = l2_normalise(single.embed(crops) + single.embed(mirrors))
    np.testing.assert_allclose(flipped.embed(crops), expected, atol=1e-5)
    assert flipped.version == single.version + "+flip"


def test_fused_inner_product_is_the_weighted_sum_of_member_cosines(group_faces):
    members = [FusionMember(backend="dlib_onnx", weight=0.6), FusionMember(backend="mobilefacenet", weight=1.4)]
    fused = create_local_embedder(EmbedderConfig(backend="fused", members=members, flip=False))
    dlib, mobile = embed(embedder("dlib_onnx", flip=False), group_faces), embed(embedder("mobilefacenet", flip=False), group_faces)
    vectors = embed(fused, group_faces)
    assert vectors.shape == (len(group_faces), 128 + 192)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    expected = 0.3 * (dlib @ dlib.T) + 0.7 * (mobile @ mobile.T)
    np.testing.assert_allclose(vectors @ vectors.T, expected, atol=1e-5)
    # ... and FAISS' inner-product index returns exactly that score.
    gallery = Gallery("fused", fused.version, fused.dim, 0.5, "test")
    gallery.add("someone", vectors[:1], ["a.jpg"])
    match = gallery.match(vectors[1:2])[0]
    assert match.score == pytest.approx(expected[0, 1], abs=1e-5)


def test_each_configuration_has_its_own_version_threshold_and_gallery(default_embedder):
    configurations = [
        embedder("dlib_onnx", flip=False),
        embedder("dlib_onnx"),
        embedder("mobilefacenet"),
        default_embedder,
    ]
    versions = {(e.name, e.version) for e in configurations}
    assert len(versions) == len(configurations)
    for configured in configurations:  # the shipped configurations are calibrated
        assert configured.default_threshold is not None and "LFW" in configured.threshold_source
    gallery = Gallery.for_embedder(configurations[0])
    for other in configurations[1:]:
        with pytest.raises(GalleryError, match="gallery rebuild"):
            gallery.check_embedder(other)


def test_uncalibrated_configuration_needs_a_threshold():
    members = [FusionMember(backend="dlib_onnx", weight=1), FusionMember(backend="mobilefacenet", weight=3)]
    custom = create_local_embedder(EmbedderConfig(backend="fused", members=members))
    assert custom.default_threshold is None
    with pytest.raises(GalleryError, match="edge-daemon calibrate"):
        Gallery.for_embedder(custom)
    assert Gallery.for_embedder(custom, threshold=0.4).threshold == 0.4


def test_missing_npm_source_gives_one_clear_error(tmp_path):
    store = ModelStore(tmp_path / "empty")
    with pytest.raises(EmbedderError, match="edge-daemon models prepare"):
        store.path("mobilefacenet")


def test_converted_file_that_does_not_match_the_manifest_is_rebuilt_never_used(tmp_path):
    # the faces it is verified on are found by the detector prepared already (no yuface wheel needed)
    prepared_detector = DetectorConfig(model_cache=ModelStore().find("yunet").parent)
    store = ModelStore(tmp_path / "models", detector=prepared_detector)
    source = ModelStore().source_files("mobilefacenet")
    (tmp_path / "models" / "sources" / "mobilefacenet").mkdir(parents=True)
    for path in source.values():
        shutil.copy(path, tmp_path / "models" / "sources" / "mobilefacenet" / path.name)
    converted = store.path("mobilefacenet")
    expected = store.entry("mobilefacenet")["converted"]["sha256"]
    assert file_sha256(converted) == expected
    check = json.loads(converted.with_suffix(".check.json").read_text())
    assert check["passed"] and check["min_cosine"] >= 0.9999 and check["separation"] >= 0.05

    converted.write_bytes(converted.read_bytes()[:-10] + b"0123456789")  # damaged in place
    assert store.find("mobilefacenet") is None
    assert file_sha256(store.path("mobilefacenet")) == expected  # rebuilt from the source

    (tmp_path / "models" / "sources" / "mobilefacenet" / "mobilefacenet.bin").write_bytes(b"not the weights")
    converted.unlink()
    with pytest.raises(EmbedderError, match="sha256 differs"):
        store.path("mobilefacenet")


def test_the_check_refuses_mobilefacenet_as_shipped():
    """As shipped, MobileFaceNet maps every face to one vector: its own conversion, compared with its
    own graph, is faithful (parity passes) but different people are not kept apart, so it is refused."""
    from edge_daemon.embedders.alignment import TemplateAligner
    from edge_daemon.models.prepare.converters.tfjs_graph import build_onnx, read_tfjs_graph, run_numpy

    graph_json = next(p for p in ModelStore().source_files("mobilefacenet").values() if p.suffix == ".json")
    shipped = read_tfjs_graph(graph_json)
    crops, people = verification_faces(TemplateAligner(112))
    rgb = np.stack(crops)[:, :, :, ::-1].astype(np.float32)
    check = parity_check(onnx_embeddings(build_onnx(shipped).SerializeToString(), rgb), run_numpy(shipped, rgb), people)
    assert check["min_cosine"] >= 0.9999  # the conversion itself is faithful...
    assert check["max_different_people"] > 0.99 and not check["passed"]  # ...the model is not
