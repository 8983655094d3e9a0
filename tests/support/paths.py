"""Where the shared data and the repository are: ``../shared`` beside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
YUNET_ONNX = SHARED / "models" / "face_detection_yunet.onnx"
HAMILTON = DATA / "video" / "hamilton"
HAMILTON_CLIP = HAMILTON / "short_hamilton_clip.mp4"
CROWD_CLIP = DATA / "video" / "crowd" / "crowd_1080p.mp4"
LFW = DATA / "eval" / "lfw"


def need(path: Path) -> Path:
    """Skip (with the reason) when shared data is absent; tests never fake it."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (expected ../shared beside the repository)")
    return path


def tiny_dataset(root, identities=4, images=20):
    """Symlinks to a few celeb24 people (nothing is copied)."""
    source = need(DATA / "train" / "celeb24")
    for person in sorted(source.iterdir())[:identities]:
        (root / person.name).mkdir(parents=True)
        for image in sorted(person.iterdir())[:images]:
            (root / person.name / image.name).symlink_to(image.resolve())
    return root
