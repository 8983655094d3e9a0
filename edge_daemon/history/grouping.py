"""Grouping the history's faces into clusters, one per person.

Single linkage (connected components of the graph "cosine >= threshold") chains: one face that
looks a little like two people (a blurred or half-turned face) joins them into one cluster. So the
components only bound which faces may share a cluster, and inside each component a face joins a
cluster only if its cosine to the cluster's normalised mean is >= threshold:
  1. faces are taken oldest first; each joins the cluster whose mean is closest if that is within
     the threshold, else starts a new one (leader clustering on means);
  2. one reassignment step: every face moves to the closest final mean, or is left alone when none
     is within the threshold (the first pass depends on which faces came first; this undoes it).
A mean stands for many faces, so a bridge close to one or two faces of each person is far from
both means and cannot pull the two together, while a genuine face is closer to its person's mean
than to the person's individual faces, so the same threshold as the gallery's can be used.

Two faces seen in the same frame (same box, camera and capture time) are two people: in both steps
a face never joins a cluster that already holds a face of its frame; it takes the next closest
cluster within the threshold, or starts its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import faiss
import numpy as np

from edge_daemon.history.store import FaceRow, stacked_embeddings


@dataclass(frozen=True)
class Cluster:
    cluster_id: int  # 1-based, largest cluster first, stable within one call
    face_ids: tuple[int, ...]  # most typical first (closest to the cluster's mean)
    size: int
    cameras: tuple[str, ...]
    first_seen: float
    last_seen: float
    representative: int  # the face closest to the cluster's mean
    representative_crop: Path


def cluster_faces(rows: list[FaceRow], threshold: float) -> list[Cluster]:
    """Group ``rows`` (of one embedder version) so that one cluster is about one person; the rule is
    in the module docstring. Faces that joined no one are returned as clusters of one, after the
    others; clusters are ordered largest first (then earliest seen)."""
    if not rows:
        return []
    vectors = stacked_embeddings(rows)
    numbers: dict[tuple, int] = {}
    frames = np.array([numbers.setdefault((row.box, row.camera, row.ts), len(numbers)) for row in rows])
    groups: list[np.ndarray] = []
    for members in _components_oldest_first(rows, _connected_components(vectors, threshold)):
        groups += _split_by_mean(vectors, frames, members, threshold) if len(members) > 1 else [members]
    clusters = [_describe(members, rows, vectors) for members in groups]
    clusters.sort(key=lambda cluster: (-cluster.size, cluster.first_seen, cluster.representative))
    return [replace(cluster, cluster_id=number) for number, cluster in enumerate(clusters, start=1)]


def _connected_components(vectors: np.ndarray, threshold: float, batch: int = 4096) -> np.ndarray:
    """A component label per row of the graph with an edge wherever cosine >= threshold: FAISS
    range search a batch of queries at a time (a frequent face has thousands of neighbours), each
    batch's edges merged at once into a union–find forest."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    radius = float(np.nextafter(np.float32(threshold), np.float32(-2)))  # range_search keeps scores > radius
    parent = np.arange(len(vectors))
    for start in range(0, len(vectors), batch):
        limits, _, neighbours = index.range_search(vectors[start : start + batch], radius)
        queries = start + np.repeat(np.arange(len(limits) - 1), np.diff(limits).astype(np.int64))
        later = neighbours > queries  # each pair is found from both ends, and every face finds itself
        _union(parent, queries[later], neighbours[later])
    return parent


def _components_oldest_first(rows: list[FaceRow], labels: np.ndarray) -> list[np.ndarray]:
    """Row positions of each component, each component's oldest first."""
    by_time = np.lexsort(([row.face_id for row in rows], [row.ts for row in rows]))
    grouped = by_time[np.argsort(labels[by_time], kind="stable")]
    starts = np.flatnonzero(np.diff(labels[grouped])) + 1
    return np.split(grouped, starts)


def _union(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Union–find over many edges at once: hook the larger root of each edge onto the smaller, then
    compress paths until every face points at its root; repeat until no edge joins two roots."""
    while True:
        root_a, root_b = parent[a], parent[b]
        apart = root_a != root_b
        if not apart.any():
            return
        low, high = np.minimum(root_a[apart], root_b[apart]), np.maximum(root_a[apart], root_b[apart])
        np.minimum.at(parent, high, low)
        while not np.array_equal(parent, parent[parent]):
            parent[:] = parent[parent]


def _split_by_mean(vectors: np.ndarray, frames: np.ndarray, members: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Split one component (``members``, oldest first) into clusters by cosine to cluster means;
    ``frames`` numbers each row's frame, and no cluster holds two faces of one frame."""
    sums = np.zeros((len(members), vectors.shape[1]), dtype=np.float64)
    norms = np.zeros(len(members))
    seen: list[set[int]] = []  # the frames of each cluster
    for index in members:
        vector = vectors[index]
        best = _closest_allowed(sums[: len(seen)] @ vector / norms[: len(seen)], seen, frames[index], threshold)
        if best is None:
            sums[len(seen)], norms[len(seen)] = vector, np.linalg.norm(vector)
            seen.append({frames[index]})
        else:
            sums[best] += vector
            norms[best] = np.linalg.norm(sums[best])
            seen[best].add(frames[index])
    count = len(seen)
    cosines = vectors[members] @ (sums[:count] / norms[:count, None]).T.astype(np.float32)
    # Reassignment, surest faces first, so that of two faces of one frame the closer keeps the place.
    final: list[set[int]] = [set() for _ in range(count)]
    assigned = np.full(len(members), -1)
    for position in np.argsort(-cosines.max(axis=1), kind="stable"):
        best = _closest_allowed(cosines[position], final, frames[members[position]], threshold)
        if best is not None:
            assigned[position] = best
            final[best].add(frames[members[position]])
    groups = [members[assigned == cluster] for cluster in range(count)]
    return [group for group in groups if len(group)] + [members[i : i + 1] for i in np.flatnonzero(assigned < 0)]


def _closest_allowed(cosines: np.ndarray, frames_of: list[set[int]], frame: int, threshold: float) -> int | None:
    """The closest cluster within ``threshold`` that holds no face of ``frame``, or None."""
    for cluster in np.argsort(-cosines, kind="stable"):
        if cosines[cluster] < threshold:
            return None
        if frame not in frames_of[cluster]:
            return int(cluster)
    return None


def _describe(members: np.ndarray, rows: list[FaceRow], vectors: np.ndarray) -> Cluster:
    """A cluster of ``members`` (row positions), id 0 until the clusters are ordered."""
    mean = vectors[members].sum(axis=0)
    typical_first = members[np.argsort(-(vectors[members] @ mean), kind="stable")]
    faces = [rows[i] for i in typical_first]
    return Cluster(
        cluster_id=0,
        face_ids=tuple(face.face_id for face in faces),
        size=len(faces),
        cameras=tuple(sorted({face.camera for face in faces})),
        first_seen=min(face.ts for face in faces),
        last_seen=max(face.ts for face in faces),
        representative=faces[0].face_id,
        representative_crop=faces[0].crop_path,
    )
