"""``[gallery]``: the enrolled people, the unknown threshold and the fleet's gallery from the broker."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from edge_daemon.config.base import Section


class GalleryConfig(Section):
    path: Path | None = Field(
        None, title="Gallery directory", description="Built by 'edge-daemon gallery build'; without one every face is unknown."
    )
    threshold: float | None = Field(
        None,
        ge=-1,
        le=1,
        title="Unknown threshold",
        description="One fixed cosine similarity below which a face is 'unknown', whatever the gallery's size or the "
        "face's quality. Unset: the embedder's open-set table (target_fpir), or, for an embedder without one, the "
        "calibrated value stored in the gallery.",
    )
    target_fpir: float = Field(
        0.01,
        gt=0,
        lt=1,
        title="Strangers named",
        description="Largest share of strangers (people not enrolled) that may be named as someone enrolled: the "
        "threshold is derived for the gallery's number of people, the face's quality and the track's number of faces "
        "from the embedder's open-set table, and again whenever the gallery changes.",
    )
    min_useful_tar: float = Field(
        0.8,
        ge=0,
        le=1,
        title="Useful true-accept rate",
        description="Where holding target_fpir leaves fewer than this share of enrolled people recognised (a small or "
        "blurred face, a large gallery), a face below the threshold is 'uncertain' rather than 'unknown'.",
    )
    top_k: int = Field(5, ge=1, le=100, title="Neighbours", description="Gallery entries compared per face.")
    sync: Literal["off", "mqtt"] = Field(
        "off",
        title="Gallery from the broker",
        description="'mqtt': adopt the fleet's gallery published with 'edge-daemon gallery publish' (retained on "
        "the broker under <mqtt.prefix>/gallery), written to path so a restart without the broker keeps it.",
    )
    sync_chunk_bytes: int = Field(
        1 << 20,
        ge=1024,
        le=256 << 20,
        title="Gallery chunk size",
        description="'gallery publish' splits a revision into retained messages of at most this many bytes.",
    )
    approximate_from: int | None = Field(
        200_000,
        ge=1,
        title="Approximate search from",
        description="Galleries with at least this many embeddings are searched with HNSW (approximate, faster); "
        "smaller ones with the exact IndexFlatIP. Unset: always exact. See python -m bench.search.",
    )
