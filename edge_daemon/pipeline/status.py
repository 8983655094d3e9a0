"""What the running daemon says about itself: a typed snapshot, taken by ``Daemon.status()``.

The service layer reads only this (the health check, the systemd status line, ``/metrics``), and
the stats dict is derived from it (the ``daemon stopped`` log line, the MQTT stats message). Every
value is a copy taken when the snapshot was made: it stays as it was while the pipeline runs on.
``CameraView`` is what one camera sees now, for the review pages' cameras view (``camera_view``).
Times named ``*_at`` or ``*_since`` without a unit are ``time.monotonic()`` readings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_daemon.messages import BBox


@dataclass(frozen=True)
class TrackVerdict:
    """A track's latest decision, as the decisions thread made it."""

    verdict: str  # recognized, unknown or uncertain
    identity: str | None
    score: float


@dataclass(frozen=True)
class FaceView:
    """One face found in a camera's latest frame, and what became of it."""

    track_id: int
    bbox: BBox  # frame pixels
    detector_score: float
    quality: float  # the face-quality score (0 useless to 1), as face selection ranks faces
    # The quality gate that keeps it from the embedder (too_small, low_score, profile, blurry); None: none does.
    refused_by: str | None
    verdict: TrackVerdict | None  # its track's latest decision; None: not decided (yet)

    @property
    def width_px(self) -> float:
        return self.bbox[2]


@dataclass(frozen=True)
class CameraView:
    """What one camera sees now (``CameraViews.snapshot``). Unlike the other snapshots, ``image`` is
    not a copy: it is the pipeline's own frame, made read-only, so a page scales it before drawing."""

    name: str
    state: str  # as CameraStatus.state
    image: np.ndarray | None  # the latest frame taken by its tracking thread, BGR; None before the first
    seq: int | None  # that frame's number from its camera
    captured_at: float | None  # Unix time that frame was read
    faces: tuple[FaceView, ...]
    motion: tuple[BBox, ...]  # the moving areas the motion gate found in that frame (frame pixels); none without motion gating


@dataclass(frozen=True)
class CameraStatus:
    name: str
    state: str  # starting, streaming, reconnecting, stalled, failed, ended or stopped
    streaming_since: float | None  # the last successful open
    last_frame_at: float | None  # when its tracking thread last took a frame
    tracking_alive: bool  # its tracking thread (detection and tracking) is running
    capture: dict[str, int]  # the camera's counters: frames read, sent, dropped; reconnects, stalls
    tracking: dict[str, int]  # its tracking thread's: frames processed, faces detected, tracks started, ...
    motion_gate: dict[str, int] | None  # its detection policy's (skipped, regions, full); None when motion gating is off
    detection: dict[str, int]  # the detection queue's for this camera: submitted, stale, dropped, failed

    @property
    def counters(self) -> dict[str, int]:
        """Every counter of the camera in one dict, as the stats list them."""
        return {**self.capture, **self.tracking, **(self.motion_gate or {}), **self.detection}


@dataclass(frozen=True)
class WorkerStatus:
    """One of the threads every camera shares (the detection queue, the embedder, the decisions)."""

    name: str
    alive: bool


@dataclass(frozen=True)
class DetectorStatus:
    busy_s: float  # seconds the detectors spent detecting, all workers together, to the millisecond
    batch_sizes: dict[int, int]  # requests per detector call -> calls, smallest first


@dataclass(frozen=True)
class EmbedderStatus:
    counters: dict[str, int]  # faces embedded, failed
    batch_sizes: dict[int, int]  # faces per batch -> batches, smallest first
    embed_seconds: float  # to the millisecond


@dataclass(frozen=True)
class HistogramStatus:
    buckets: tuple[float, ...]  # upper bounds
    counts: dict[float, int]  # observations per bucket, by its upper bound (inf for the rest)
    total: float  # the sum of the observations


@dataclass(frozen=True)
class MqttStatus:
    link: dict  # the broker link as BrokerLink.state() reports it: connected, since (ISO), and why not
    spool_depth: int  # events waiting on disk for the broker
    spool_dropped: int  # events the spool's bounds dropped
    state_since: float  # Unix time since when the link is up, or down
    connect_failures: int  # failed connection attempts since start
    memory_depth: int = 0  # events waiting in memory: the spool could not take them
    memory_dropped: int = 0  # events dropped from memory: spool and broker both failing, the buffer full

    @property
    def connected(self) -> bool:
        return self.link["connected"]

    def report(self) -> dict:
        """The link and the spool in one dict, for the stats and ``/healthz``."""
        return {**self.link, "spool_depth": self.spool_depth, "spool_dropped": self.spool_dropped,
                "memory_depth": self.memory_depth, "memory_dropped": self.memory_dropped}


@dataclass(frozen=True)
class HistoryStatus:
    dropped: int  # faces removed by the history's bounds (max_faces, max_age_days)
    failures: int  # faces that could not be recorded


@dataclass(frozen=True)
class GalleryStatus:
    version: str | None  # None: no gallery yet
    sync: dict[str, int]  # revisions from the broker by outcome (adopted, refused_...); empty without gallery.sync


@dataclass(frozen=True)
class DaemonStatus:
    cameras: tuple[CameraStatus, ...]
    workers: tuple[WorkerStatus, ...]
    detector: DetectorStatus
    embedder: EmbedderStatus
    events: dict[str, int]  # events made, by type
    decisions: dict[str, int]  # faces left out of templates, by reason
    capture_to_event: HistogramStatus  # seconds from a face's capture to its track's first decision
    # Events by result and transport (published_jsonl, spooled_mqtt, failed_...); published_mqtt
    # counts what the broker acknowledged.
    transports: dict[str, int]
    mqtt: MqttStatus | None  # None without a broker
    history: HistoryStatus | None  # None without a face history
    gallery: GalleryStatus
    # Why the daemon runs degraded (a spool, history or crops directory it cannot write); empty: it
    # does not. Degraded is not unhealthy: recognition and delivery go on, and a restart would not
    # mend a disk.
    degraded: tuple[str, ...] = ()

    def stats(self) -> dict:
        """The stats as plain data: logged at stop, published over MQTT, read by tests and benchmarks."""
        return {
            "cameras": {camera.name: {"state": camera.state, **camera.counters} for camera in self.cameras},
            "detector": {"busy_s": self.detector.busy_s, "batches": dict(self.detector.batch_sizes)},
            "embedder": {
                **self.embedder.counters,
                "batches": dict(self.embedder.batch_sizes),
                "embed_seconds": self.embedder.embed_seconds,
            },
            "events": dict(self.events),
            "decisions": dict(self.decisions),
            "transports": dict(self.transports),
            "mqtt": self.mqtt.report() if self.mqtt else {},
            "history": {"dropped": self.history.dropped, "failures": self.history.failures} if self.history else {},
            "gallery": {"version": self.gallery.version, **self.gallery.sync},
            "degraded": list(self.degraded),
        }
