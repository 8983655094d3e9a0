"""Unknown groups: the history's unknown tracks grouped so that one group is one person.

A group is built from tracks, not from the faces of single frames: each ended track stands in it by
its template (the quality-weighted mean of all its faces, what its decision was made on). Groups
grow online, as tracks end (``HistoryGroups.record_track``): a track joins the group it is most like
on average -- the mean of its cosines to the group's tracks (average linkage) -- if that is at or
above the grouping threshold for the track's quality and effective number of faces
(``GroupingRule``), else it starts a group. Against the average, a track that looks a little like
two people cannot chain them together the way single linkage would; and unlike the cosine to a
group's *normalised* mean, the average does not grow as a group grows (the normalised mean of many
different faces is close to every face, so such a group would swallow everyone). Only tracks
decided ``unknown`` are grouped: an ``uncertain`` track is one whose faces were too poor to say who
it was, and it stays on its own.

Two tracks seen by one camera at the same time are two people: a track never joins a group that
holds a track of the same box and camera whose time span overlaps its own. (A face of a history
from before tracks were kept is a track of one face, so this is also "two faces of one frame are
never grouped together".)

The grouping threshold is found as recognition finds its own (``grouping_rule``, from the
settings): the groups are a gallery a new track is identified against, so the threshold holds a
target rate of strangers joining someone else's group (``history.group_fpir``) for the number of
groups there are, read off the embedder's open-set table (``recognition.thresholds``: calibrated on
LFW View 1 DevTrain and its degraded copies) for the track's quality and size. A fixed
per-comparison rate would not do: a new track meets every group, so the more groups there are, the
likelier one of them takes a stranger. A track of quality below ``history.group_min_quality`` is too
poor to group and stays on its own: poor faces look more alike than the table's impostors, and a
group is only worth showing if it is one person. The measurements behind these choices are in
docs/guide/review.md.

Adding a track costs one matrix-vector product over the groups' sums; listing the groups
(``FaceHistory.unknown_groups``) is one query over the stored faces and their tracks' groups, so the
review page never regroups the history when it loads. The groups' sums are rebuilt from the stored
tracks when the history is opened; a track dropped by the history's bounds stays in its group's sum
until then.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from edge_daemon.config import GalleryConfig, HistoryConfig
from edge_daemon.history.queries import Cluster, TrackRow
from edge_daemon.history.store import FaceHistory
from edge_daemon.recognition.thresholds import OpenSetTable, open_set_table, per_comparison_far

INITIAL_CAPACITY = 256


@dataclass(frozen=True)
class GroupingRule:
    """The mean cosine a track must reach to a group's tracks to join it: the open-set ``table``'s
    threshold holding ``fpir`` against ``groups`` groups for the track's quality and faces, or
    ``fixed`` where the embedder has no table. None for a track of quality below ``min_quality``:
    too poor to group, it stays on its own."""

    table: OpenSetTable | None
    fpir: float
    fixed: float | None = None
    min_quality: float = 0.0

    def threshold(self, quality: float, faces: float, groups: int = 1) -> float | None:
        if quality < self.min_quality:
            return None
        if self.fixed is not None or self.table is None:
            if self.fixed is None:
                raise ValueError("no threshold to group with: the embedder has no open-set table and none was given")
            return self.fixed
        return self.table.threshold(per_comparison_far(self.fpir, groups), quality, faces)[0]


def grouping_rule(embedder, history: HistoryConfig, gallery: GalleryConfig) -> GroupingRule:
    """The rule the settings give for this embedder's tracks: its open-set table at
    ``history.group_fpir``, else (no table) the single unknown-threshold (``gallery.threshold``, or
    the embedder's calibrated one); tracks below ``history.group_min_quality`` stay on their own."""
    table = open_set_table(embedder.name, embedder.version)
    fixed = None
    if table is None:
        fixed = gallery.threshold if gallery.threshold is not None else embedder.default_threshold
    return GroupingRule(table, history.group_fpir, fixed, history.group_min_quality)


@dataclass(frozen=True)
class Span:
    """Where and when one track of a group was seen."""

    box: str
    camera: str
    first_ts: float
    last_ts: float

    @classmethod
    def of(cls, track: TrackRow) -> Span:
        return cls(track.box, track.camera, track.first_ts, track.last_ts)

    def overlaps(self, other: Span) -> bool:
        return (
            self.box == other.box
            and self.camera == other.camera
            and self.first_ts <= other.last_ts
            and other.first_ts <= self.last_ts
        )


class UnknownGroups:
    """Groups of track templates in memory: the rule in the module docstring."""

    def __init__(self, rule: GroupingRule, first_id: int = 1):
        self._rule = rule
        self._next_id = first_id
        self._ids: list[int] = []
        self._position: dict[int, int] = {}
        self._sums = np.zeros((0, 0))  # per group, the sum of its tracks' templates
        self._counts = np.zeros(0)
        self._spans: list[list[Span]] = []
        self._lock = threading.Lock()  # the decisions thread adds while the review page may reload

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, vector: np.ndarray, quality: float, faces: float, span: Span, group_id: int | None = None) -> int | None:
        """The group a track of template ``vector`` joins (``group_id``: the one it is known to be
        in, when rebuilding), starting one when none may take it; None for a track too poor to group."""
        vector = np.asarray(vector, dtype=np.float64)
        with self._lock:
            if group_id is None:
                threshold = self._rule.threshold(quality, faces, len(self._ids))
                if threshold is None:
                    return None
                group_id = self._closest_allowed(vector, span, threshold)
            if group_id is None or group_id not in self._position:
                group_id = self._start(vector, group_id)
            position = self._position[group_id]
            self._sums[position] += vector
            self._counts[position] += 1
            self._spans[position].append(span)
            return group_id

    def add_track(self, track: TrackRow, group_id: int | None = None) -> int | None:
        return self.add(track.embedding, track.quality, track.faces, Span.of(track), group_id)

    def _closest_allowed(self, vector: np.ndarray, span: Span, threshold: float) -> int | None:
        if not self._ids:
            return None
        count = len(self._ids)
        cosines = self._sums[:count] @ vector / self._counts[:count]  # mean cosine to each group's tracks
        for position in np.argsort(-cosines, kind="stable"):
            if cosines[position] < threshold:
                return None
            if not any(span.overlaps(other) for other in self._spans[position]):
                return self._ids[position]
        return None

    def _start(self, vector: np.ndarray, group_id: int | None) -> int:
        if group_id is None:
            group_id = self._next_id
        self._next_id = max(self._next_id, group_id + 1)
        count = len(self._ids)
        if count == len(self._sums):  # grow by doubling: adding stays amortised O(dim)
            capacity = max(INITIAL_CAPACITY, 2 * count)
            sums, counts = np.zeros((capacity, vector.size)), np.zeros(capacity)
            if count:
                sums[:count], counts[:count] = self._sums[:count], self._counts[:count]
            self._sums, self._counts = sums, counts
        self._ids.append(group_id)
        self._position[group_id] = count
        self._spans.append([])
        return group_id


class HistoryGroups:
    """The unknown groups of one embedder version's tracks in a face history: rebuilt from its
    stored tracks when made (unknown tracks without a group, as a history migrated from faces
    has, are grouped then), grown by every unknown track recorded through it."""

    def __init__(self, history: FaceHistory, embedder_version: str, rule: GroupingRule):
        self.history = history
        self.embedder_version = embedder_version
        self._groups = UnknownGroups(rule, first_id=history.largest_group_id() + 1)
        for track in history.tracks(embedder_version, unknown_only=True, grouped=True):
            self._groups.add_track(track, group_id=track.group_id)
        fresh = {
            track.track_ref: self._groups.add_track(track)
            for track in history.tracks(embedder_version, unknown_only=True, grouped=False)
            if track.verdict == "unknown"
        }
        fresh = {track_ref: group for track_ref, group in fresh.items() if group is not None}
        if fresh:
            history.set_groups(fresh)

    def __len__(self) -> int:
        return len(self._groups)

    def record_track(self, *, identity: str | None, verdict: str, **track) -> int | None:
        """Store an ended track (``FaceHistory.record_track``'s arguments); an unknown one joins or
        starts a group first. Returns its track_ref (None: not stored)."""
        group_id = None
        if identity is None and verdict == "unknown":
            span = Span(track["box"], track["camera"], track["first_ts"], track["last_ts"])
            group_id = self._groups.add(track["embedding"], track["quality"], track["faces"], span)
        return self.history.record_track(
            identity=identity, verdict=verdict, embedder_version=self.embedder_version, group_id=group_id, **track
        )

    def listing(self, since: float | None = None, camera: str | None = None, min_faces: int = 1,
                limit: int | None = None) -> list[Cluster]:
        """The stored groups of this embedder's unknown, not enrolled faces (``FaceHistory.unknown_groups``)."""
        return self.history.unknown_groups(self.embedder_version, since, camera, min_faces, limit)
