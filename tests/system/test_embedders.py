"""Embedders as a user meets them: an old gallery is rebuilt, ``models list`` reports every model,
and the default pipeline runs without TensorFlow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from edge_daemon.config import EmbedderConfig
from edge_daemon.embedders import create_local_embedder
from edge_daemon.models.prepare.store import ModelStore
from edge_daemon.recognition.gallery import Gallery
from tests.support.paths import DATA, HAMILTON, ROOT, need


def embedder(backend: str, **options):
    return create_local_embedder(EmbedderConfig(backend=backend, **options))


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "edge_daemon.cli", *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, **(env or {})},
    )


def test_old_dlib_gallery_is_refused_then_rebuilt_from_its_photos_and_later_from_its_kept_faces(tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(need(HAMILTON / "gallery"), photos)
    gallery_dir = tmp_path / "gallery"
    built = cli("gallery", "build", str(photos), "--out", str(gallery_dir), env={"EDGE_EMBEDDER__BACKEND": "dlib_onnx"})
    assert built.returncode == 0, built.stderr[-2000:]
    # Make it what an older edge-daemon wrote: dlib-bin's embedder name, no kept face crops.
    meta = json.loads((gallery_dir / "gallery.json").read_text())
    meta.update(embedder="dlib_resnet", embedder_version="dlib_face_recognition_resnet_model_v1")
    (gallery_dir / "gallery.json").write_text(json.dumps(meta))
    labels = json.loads((gallery_dir / "labels.json").read_text())
    del labels["faces"]
    (gallery_dir / "labels.json").write_text(json.dumps(labels))
    shutil.rmtree(gallery_dir / "faces")
    probe = str(photos / "lin_manuel_miranda" / sorted(p.name for p in (photos / "lin_manuel_miranda").iterdir())[0])

    refused = cli("recognize", probe, "--gallery", str(gallery_dir))
    assert refused.returncode == 1 and "edge-daemon gallery rebuild" in refused.stderr
    assert "Traceback" not in refused.stderr

    rebuilt = cli("gallery", "rebuild", str(gallery_dir))
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    summary = json.loads(rebuilt.stdout)
    assert summary["embedder"] == "fused" and summary["previous"]["embedder"] == "dlib_resnet"
    assert summary["embeddings"] == summary["previous"]["embeddings"] - len(summary["skipped"]) > 0
    assert Path(summary["previous"]["kept_in"], "embeddings.npy").is_file()  # nothing thrown away
    recognised = cli("recognize", probe, "--gallery", str(gallery_dir), "--json")
    assert json.loads(recognised.stdout)["faces"][0]["identity"] == "lin_manuel_miranda"

    # The rebuilt gallery kept a crop of each face: the photos are no longer needed.
    shutil.rmtree(photos)
    again = cli("gallery", "rebuild", str(gallery_dir), env={"EDGE_EMBEDDER__BACKEND": "mobilefacenet"})
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    assert summary["skipped"] == [] and summary["embeddings"] == summary["previous"]["embeddings"]
    assert Gallery.load(gallery_dir).embedder == "mobilefacenet"


def test_models_list_reports_every_model_ready():
    listed = cli("models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {(row["model"], row["precision"]): row for row in json.loads(listed.stdout)}
    assert set(rows) == {("yunet", "float32"), ("dlib_resnet", "float32"), ("dlib_resnet", "int8"), ("mobilefacenet", "float32")}
    for row in rows.values():
        assert row["converted"] and row["check"]["passed"]
    assert "research" in ModelStore().entry("mobilefacenet")["training_data"]


def test_default_pipeline_runs_without_tensorflow():
    image = need(DATA / "photos" / "group" / "obama_and_biden.jpg")
    blocked = (
        "import sys; sys.modules['tensorflow'] = sys.modules['keras'] = None; "
        "from edge_daemon.cli import main; sys.exit(main(['recognize', sys.argv[1], '--json']))"
    )
    result = subprocess.run([sys.executable, "-c", blocked, str(image)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(json.loads(result.stdout)["faces"]) >= 2  # detected and embedded
