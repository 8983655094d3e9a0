"""Searching the history for the faces most like a query embedding."""

from __future__ import annotations

import faiss
import numpy as np

from edge_daemon.history.queries import FaceRow
from edge_daemon.history.schema import unit_vector


def search_faces(
    rows: list[FaceRow], query: np.ndarray, top: int = 20, approximate_from: int = 200_000
) -> list[tuple[FaceRow, float]]:
    """The ``top`` stored faces most like ``query`` (an embedding of the rows' embedder), with their
    cosine, best first: exact search, HNSW from ``approximate_from`` rows on (as the gallery does)."""
    if not rows or top <= 0:
        return []
    vectors = _stacked_embeddings(rows)
    query = unit_vector(query).astype(np.float32).reshape(1, -1)
    if query.shape[1] != vectors.shape[1]:
        raise ValueError(f"query has {query.shape[1]} dimensions, the faces {vectors.shape[1]}")
    scores, found = _search_index(vectors, approximate_from).search(query, min(top, len(rows)))
    return [(rows[i], float(score)) for score, i in zip(scores[0], found[0]) if i >= 0]


def _stacked_embeddings(rows: list[FaceRow]) -> np.ndarray:
    """The rows' embeddings as one float32 matrix, a row each, to search."""
    # Cosines between two embedders' vectors mean nothing, even at the same dimension.
    versions = {row.embedder_version for row in rows}
    if len(versions) > 1:
        raise ValueError(f"faces from {len(versions)} embedder versions: select one with faces(embedder_version=...)")
    return np.ascontiguousarray(np.stack([row.embedding for row in rows]), dtype=np.float32)


def _search_index(vectors: np.ndarray, approximate_from: int) -> faiss.Index:
    """The gallery's rule (``Gallery._build_index``): exact inner product, HNSW for large sets."""
    dim = vectors.shape[1]
    if len(vectors) >= approximate_from:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(vectors)
    return index
