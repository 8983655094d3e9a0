"""The one configuration tree: TOML file + ``EDGE_...`` environment overrides.

Every section is a pydantic model whose fields carry a title and description, so
``edge-daemon config schema`` documents itself. Precedence, highest first:
command-line flags, environment (``EDGE_DETECTOR__BACKEND=yunet_onnx``), TOML file,
defaults.
"""

from __future__ import annotations

import contextvars
import json
import re
import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticUndefined
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CAMERA_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
BOX_NAME_PATTERN = CAMERA_NAME_PATTERN


def default_box_name() -> str:
    """This machine's host name, reduced to what a box name may hold."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()).strip("-._")[:64]
    return name or "edge-daemon"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CameraConfig(Section):
    name: str = Field(
        title="Camera name",
        description="Unique name; used in events and MQTT topics (letters, digits, '_', '-', '.').",
        pattern=CAMERA_NAME_PATTERN,
    )
    url: str = Field(
        title="Source",
        description="A video file path, an 'rtsp://' / 'http://' URL, or 'usb:N' for a local capture device.",
        min_length=1,
    )
    detect_fps: float = Field(
        5.0, gt=0, le=60, title="Detection rate", description="Frames per second handed to face detection."
    )
    loop: bool = Field(False, title="Loop files", description="Restart a file source at its end (demos, benchmarks).")
    realtime: bool = Field(
        True,
        title="Pace files like a live camera",
        description=(
            "Files are read at their native frame rate and, like live cameras, drop the oldest frame when the "
            "pipeline is behind. False reads as fast as the pipeline takes frames and never drops one."
        ),
    )
    queue_size: int = Field(
        4, ge=1, le=256, title="Frame queue", description="Frames buffered between capture and detection."
    )
    reconnect_initial_s: float = Field(
        1.0, gt=0, title="First reconnect delay", description="Seconds before the first reconnect attempt."
    )
    reconnect_max_s: float = Field(
        30.0, gt=0, title="Longest reconnect delay", description="Upper bound of the exponential backoff."
    )
    decoder: Literal["auto", "opencv", "pyav"] = Field(
        "auto",
        title="Decoder",
        description="'pyav' decodes only the frames detection needs (skips B-frames, then non-reference frames, "
        "while the rest still cover detect_fps); 'opencv' decodes every frame and reads usb:N devices. "
        "'auto': pyav, except opencv for usb:N.",
    )
    stall_timeout_s: float = Field(
        6.0,
        ge=1,
        le=600,
        title="Stall timeout",
        description="A network camera that delivers no frame for this long, with its connection still open, is "
        "marked 'stalled' and reopened; opening one gives up after this long too.",
    )
    idle_detect_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        title="Full detection every",
        description="Seconds (of video) between whole-frame detections when nothing moves: a person standing still "
        "makes no motion and is found within this time. Between them, frames with no motion and no live track "
        "skip detection; the others are detected in regions around what moves and what is tracked (motion.enabled). "
        "Each camera has its own point in this period (from its name), the first detection included, so cameras "
        "started together take turns; a file with realtime = false has its first frame detected whole.",
    )
    motion_threshold: int = Field(
        15,
        ge=1,
        le=255,
        title="Motion threshold",
        description="Grey levels a pixel of the small motion frame must differ from the learnt background to count "
        "as moving; raise it for noisy night images.",
    )

    @property
    def is_file(self) -> bool:
        return not (self.url.startswith("usb:") or "://" in self.url)

    @model_validator(mode="after")
    def _pyav_reads_no_devices(self) -> CameraConfig:
        if self.decoder == "pyav" and self.url.startswith("usb:"):
            raise ValueError("decoder 'pyav' cannot read usb:N capture devices; use 'opencv' or 'auto'")
        return self


class DetectorConfig(Section):
    backend: Literal["yunet", "yuface", "yunet_onnx"] = Field(
        "yunet",
        title="Detector backend",
        description=(
            "'yunet' (the default): libfacedetection's YuNet on ONNX Runtime, its weights read from the yuface "
            "wheel and converted by 'edge-daemon models prepare' (yuface's boxes and landmarks, any CPU and Python). "
            "'yuface': libfacedetection's own compiled code (x86_64, CPython 3.10-3.11 only, optional). "
            "'yunet_onnx': OpenCV FaceDetectorYN with the YuNet ONNX file given in model_path."
        ),
    )
    model_path: Path | None = Field(
        None, title="YuNet ONNX file", description="Required for 'yunet_onnx' (OpenCV model zoo face_detection_yunet)."
    )
    model_cache: Path | None = Field(
        None,
        title="Converted model directory",
        description="Where 'yunet' finds its converted model (default: the directories 'edge-daemon models "
        "prepare' writes to; give the same directory as embedder.model_cache if you set that).",
    )
    score_threshold: float = Field(
        0.7, ge=0, le=1, title="Detection score", description="Detections scoring below are discarded."
    )
    max_side: int = Field(
        640, ge=64, le=4096, title="Detection size", description="Frames are downscaled to this longest side first."
    )
    separate_process: bool = Field(
        True,
        title="Own process",
        description="Run the model in a child process: it holds Python's GIL while it runs and would starve capture.",
    )
    recycle_after: int = Field(
        3000,
        ge=0,
        title="Recycle yuface after",
        description="Replace the yuface detector process after this many frames (0: never). yuface leaks about "
        "36 KB per call (measured), so 3000 bounds its growth near 100 MB; a spare takes over without a pause.",
    )
    min_face_px: int = Field(
        40, ge=0, title="Minimum face size", description="Faces narrower than this (frame pixels) are not embedded."
    )
    max_yaw: float = Field(
        0.8,
        ge=0,
        title="Most turned face",
        description=(
            "Frontalness from the 5 landmarks: horizontal nose offset from the eye midpoint divided by the eye "
            "distance (0 frontal, above 1 near profile). More turned faces are not embedded: their embeddings "
            "match the wrong people."
        ),
    )
    min_sharpness: float = Field(
        20.0,
        ge=0,
        title="Minimum sharpness",
        description="Variance of the Laplacian of the face crop; blurrier faces are not embedded.",
    )
    workers: int = Field(
        1,
        ge=1,
        le=16,
        title="Detection workers",
        description="Detector processes serving the one detection queue together, each with threads.model_process "
        "threads. On a 2-core box one is best (two raised p95 latency: the second competes with embedding and "
        "decoding); a box with cores to spare can detect bursts on many cameras in parallel.",
    )
    queue_max_age_s: float = Field(
        1.0,
        gt=0,
        le=60,
        title="Oldest frame detected",
        description="One detection worker serves every camera; a frame captured longer ago than this when its turn "
        "comes is skipped (counted as detect_stale) instead of detected late.",
    )
    queue_size: int = Field(
        2,
        ge=1,
        le=64,
        title="Detection queue per camera",
        description="Requests one camera may have waiting for the detection worker; a full queue drops its oldest "
        "(counted as detect_dropped).",
    )
    max_batch: int = Field(
        8,
        ge=1,
        le=64,
        title="Detection batch",
        description="Most requests (one per camera) in one detector call, for a detector that takes batches; the "
        "shipped detectors take one image a call.",
    )

    @model_validator(mode="after")
    def _onnx_needs_model(self) -> DetectorConfig:
        if self.backend == "yunet_onnx" and self.model_path is None:
            raise ValueError("backend 'yunet_onnx' needs detector.model_path (a YuNet .onnx file)")
        return self


EmbedderBackend = Literal["dlib_onnx", "mobilefacenet", "fused", "dlib_bin", "vgg16"]
# Flip averaging by default where it was calibrated: the ONNX face models (measured gain on LFW);
# the trainer's VGG16 threshold and the dlib-bin reference are single-crop.
FLIP_BY_DEFAULT = {"dlib_onnx": True, "mobilefacenet": True, "dlib_bin": False, "vgg16": False}


class FusionMember(Section):
    backend: Literal["dlib_onnx", "mobilefacenet", "dlib_bin", "vgg16"] = Field(
        title="Member backend", description="An embedder backend whose cosine is part of the fused score."
    )
    weight: float = Field(
        gt=0, title="Weight", description="Its share of the fused score (weights are normalised to sum 1)."
    )
    flip: bool | None = Field(
        None, title="Flip averaging", description="Embed the crop and its mirror and average; unset: the backend's default."
    )


class EmbedderConfig(Section):
    backend: EmbedderBackend = Field(
        "fused",
        title="Embedder backend",
        description="'fused' (default: dlib_onnx and mobilefacenet score-fused, the most accurate at >= 50 faces/s "
        "here), 'dlib_onnx' (dlib's 128-d ResNet on ONNX Runtime), 'mobilefacenet' (ArcFace MobileFaceNet, 192-d), "
        "'dlib_bin' (dlib's own runtime, the slow reference), 'vgg16' (a model from 'edge-daemon train').",
    )
    flip: bool | None = Field(
        None,
        title="Flip averaging",
        description="Embed each face and its mirror image and average the two (twice the compute, steadier). "
        "Unset: on for dlib_onnx and mobilefacenet, off for dlib_bin and vgg16.",
    )
    members: list[FusionMember] = Field(
        default_factory=lambda: [
            FusionMember(backend="dlib_onnx", weight=0.81, flip=False),
            FusionMember(backend="mobilefacenet", weight=0.19, flip=False),
        ],
        title="Fused members",
        description="For 'fused': the member backends, their weights and flip averaging. The default is the most "
        "accurate calibrated fusion on LFW (DevTest 99.4%): z-normalising weights (1 / spread of each member's "
        "impostor scores on LFW DevTrain), no flip averaging.",
    )
    model_cache: Path | None = Field(
        None,
        title="Model cache",
        description="Directory of converted ONNX models and their sources. Unset: $CACHE_DIRECTORY/models under "
        "systemd, else the checkout's models/ when run from one, else ~/.cache/edge-daemon/models; every one of "
        "these is searched for a verified file. 'edge-daemon models prepare' fills it.",
    )
    model_dir: Path | None = Field(
        None, title="Model directory", description="Required for 'vgg16': the trainer's output directory."
    )
    separate_process: bool = Field(
        True,
        title="Own process",
        description="Run the model in a child process, so its compute never competes with capture for Python's GIL.",
    )
    runtime: Literal["keras", "tflite", "tflite_int8"] = Field(
        "keras",
        title="VGG16 runtime",
        description="'keras' (reference) or TFLite float32 / dynamic-range int8, allowed only after "
        "'edge-daemon export-tflite' verified cosine >= 0.999 against Keras on real faces.",
    )
    runtime_threads: int = Field(1, ge=1, le=64, title="TFLite threads", description="XNNPACK threads of the TFLite runtime.")
    max_batch: int | None = Field(
        None,
        ge=1,
        le=256,
        title="Batch size",
        description="Most faces embedded in one call. Unset: 1 for dlib_bin (its batches are no faster, measured, "
        "and a face need not wait for others) and 8 for the others.",
    )
    queue_size: int = Field(
        16,
        ge=1,
        le=4096,
        title="Faces waiting",
        description="Faces queued for the embedder; when full, new faces are deferred to a later frame instead of "
        "waiting to go stale (bounds capture-to-event latency under overload).",
    )
    max_wait_ms: float = Field(
        30.0, ge=0, le=5000, title="Batch wait", description="Longest a face waits for others to fill a batch."
    )

    @property
    def batch_size(self) -> int:
        if self.max_batch is not None:
            return self.max_batch
        return 1 if self.backend == "dlib_bin" else 8

    def flip_for(self, backend: str) -> bool:
        return FLIP_BY_DEFAULT[backend] if self.flip is None else self.flip

    def member_config(self, member: FusionMember) -> EmbedderConfig:
        """The configuration of one member of a fused embedder."""
        flip = self.flip if member.flip is None else member.flip
        return self.model_copy(update={"backend": member.backend, "flip": flip, "members": []})

    @model_validator(mode="after")
    def _backend_needs(self) -> EmbedderConfig:
        uses_vgg16 = self.backend == "vgg16" or (
            self.backend == "fused" and any(member.backend == "vgg16" for member in self.members)
        )
        if uses_vgg16 and self.model_dir is None:
            raise ValueError("backend 'vgg16' needs embedder.model_dir (the output of 'edge-daemon train')")
        if self.backend == "fused" and len(self.members) < 2:
            raise ValueError("backend 'fused' needs two or more embedder.members")
        return self


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
        "smaller ones with the exact IndexFlatIP. Unset: always exact. See bench/search.py.",
    )


class TrackerConfig(Section):
    max_speed: float = Field(
        12.0,
        gt=0,
        le=100,
        title="Fastest face",
        description="Fastest a face is expected to move, in face widths per second (a face is about 16 cm wide, so a "
        "walker at 1.4 m/s moves about 9 widths/s at any distance); how far a new track's next detection may be.",
    )
    gate_sd: float = Field(
        3.0,
        gt=0,
        le=10,
        title="Match gate",
        description="A detection continues a track only when its centre is within this many standard deviations of "
        "the track's predicted centre; the deviation grows with the face's width and the time since it was seen.",
    )
    max_distance: float = Field(
        5.0,
        gt=0,
        le=50,
        title="Farthest jump",
        description="A detection continues a track only when its centre is within this many face widths of the "
        "track's predicted centre, however long the track was unseen: a face found far from where it should be is "
        "someone else (in a crowd, the gate alone would let a track that lost its face take a passer-by's).",
    )
    max_size_ratio: float = Field(
        1.5,
        gt=1,
        title="Size change",
        description="A detection continues a track only when its width is within this factor of the predicted width.",
    )
    min_appearance_similarity: float = Field(
        0.65,
        ge=-1,
        le=1,
        title="Appearance check",
        description="When a track and a detection both have an embedding, refuse the match below this cosine "
        "similarity (a swap of people); -1 turns the check off. For the default embedder on LFW dev pairs, the "
        "same person scores 0.79 or more and 29% of different people score below 0.65.",
    )
    max_missed_s: float = Field(
        1.5,
        gt=0,
        title="Track timeout",
        description="A track not seen for this many seconds has ended (at once when its predicted position has left "
        "the frame).",
    )
    max_attempts: int = Field(
        3, ge=1, le=50, title="Embeddings per track", description="Most faces of one track that are embedded."
    )
    uncertain_after: int = Field(
        3,
        ge=0,
        title="Uncertain after",
        description="A track detected this many times whose every face the quality gates refused (too small, "
        "blurred, turned away) is decided 'uncertain': someone is there, too poorly seen to say who (0: such "
        "tracks stay silent). A later face good enough to embed revises it ('updated').",
    )
    better_face_ratio: float = Field(
        1.3,
        ge=0,
        title="Clearly better face",
        description="Embed again only when a face's quality (area x sharpness) beats the best embedded one by this "
        "factor; 0 embeds every face of every frame (up to max_attempts).",
    )

    @model_validator(mode="before")
    @classmethod
    def _iou_options_removed(cls, data: object) -> object:
        # Refused rather than ignored: a box tuned for IoU matching must learn that its tuning no
        # longer applies, and what replaces it.
        removed = sorted({"iou_threshold", "iou_buffer"} & set(data)) if isinstance(data, dict) else []
        if removed:
            raise ValueError(
                f"no longer supported: {', '.join(removed)} (tracks follow predicted motion now; delete the "
                "line: max_speed, gate_sd, max_distance and max_size_ratio tune the matching)"
            )
        return data


class DecisionConfig(Section):
    mode: Literal["template", "vote"] = Field(
        "template",
        title="Decision per track",
        description="'template': a track's faces combine into one quality-weighted template, matched against the "
        "gallery with the threshold for its quality and number of faces. 'vote': each face is matched alone and "
        "votes for its identity with its score (the old way, kept for benchmarks).",
    )
    min_quality: float = Field(
        0.02,
        ge=0,
        le=1,
        title="Useless face",
        description="Faces below this quality score add nothing to a template and are dropped (counted as "
        "faces_dropped_useless); poorer faces above it still add, with a low weight.",
    )


class EventsConfig(Section):
    jsonl: str | None = Field(
        "-", title="JSON-lines output", description="File to append events to, '-' for stdout, empty to disable."
    )
    crops_dir: Path | None = Field(
        None, title="Face crops", description="If set, the face behind each decision is saved here as a JPEG."
    )


class MqttConfig(Section):
    url: str | None = Field(
        None,
        title="Broker",
        description="'mqtt://HOST[:1883]', or 'mqtts://HOST[:8883]' for TLS; unset disables MQTT.",
    )
    prefix: str = Field(
        "edge-daemon",
        title="Topic prefix",
        description="Events of every box go to <prefix>/events, and to <prefix>/<box>/<camera>/events; this box's "
        "availability to <prefix>/<box>/availability (see service.box).",
        pattern=r"^[^#+\x00]+$",
    )
    client_id: str | None = Field(None, title="Client id", description="Defaults to edge-daemon-<box> (service.box).")
    username: str | None = Field(None, title="User name", description="Broker user name.")
    password: SecretStr | None = Field(
        None, title="Password", description="Broker password (never logged); prefer EDGE_MQTT__PASSWORD or password_file."
    )
    password_file: Path | None = Field(
        None, title="Password file", description="File holding the broker password (e.g. a systemd credential)."
    )
    tls: bool = Field(False, title="TLS", description="Connect with TLS; an mqtts:// url implies it.")
    ca_file: Path | None = Field(
        None, title="CA file", description="PEM CA bundle that signed the broker's certificate; the system store when unset."
    )
    client_cert: Path | None = Field(
        None,
        title="Client certificate",
        description="PEM certificate (chain) this box presents to the broker (mutual TLS, e.g. AWS IoT Core); "
        "the file may hold the private key too.",
    )
    client_key: Path | None = Field(
        None, title="Client key", description="Unencrypted PEM private key of client_cert, when client_cert does not hold it."
    )
    keepalive_s: int = Field(30, ge=5, le=3600, title="Keepalive", description="MQTT keepalive in seconds.")
    homeassistant: bool = Field(
        True, title="Home Assistant discovery", description="Announce an event entity and a last-identity sensor per camera."
    )
    discovery_prefix: str = Field(
        "homeassistant", title="Discovery prefix", description="Home Assistant's MQTT discovery prefix.", pattern=r"^[^#+\x00]+$"
    )
    stats_interval_s: float = Field(
        0.0, ge=0, title="Stats interval", description="Publish pipeline counters to <prefix>/<box>/stats this often; 0 disables."
    )

    def secret_password(self) -> str | None:
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"mqtt.password_file: cannot read {self.password_file}: {exc.strerror}") from None
        return self.password.get_secret_value() if self.password else None

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, url: str | None) -> str | None:
        if url:
            parsed = urlparse(url)
            if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
                raise ValueError("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
            parsed.port  # noqa: B018 - raises ValueError on a bad port
        return url or None

    @field_validator("ca_file", "client_cert", "client_key")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        # Checked here, so that a typo is a config error at start and not a TLS failure at every retry.
        if path is not None:
            try:
                path.open("rb").close()
            except OSError as exc:
                raise ValueError(f"cannot read {path}: {exc.strerror}") from None
        return path

    @model_validator(mode="after")
    def _client_certificate_needs(self) -> MqttConfig:
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert (the certificate the key belongs to)")
        if self.client_cert is not None and not self.use_tls:
            raise ValueError("client_cert needs TLS: use an mqtts:// url or tls = true")
        return self

    @property
    def use_tls(self) -> bool:
        return self.tls or urlparse(self.url or "").scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or "localhost"

    @property
    def port(self) -> int:
        return urlparse(self.url).port or (8883 if urlparse(self.url).scheme == "mqtts" else 1883)


class SpoolConfig(Section):
    path: Path | None = Field(
        None,
        title="Spool file",
        description="SQLite file where events wait for the broker; default $STATE_DIRECTORY/spool.db under systemd, "
        "else ~/.local/state/edge-daemon/spool.db.",
    )
    max_events: int = Field(100_000, ge=1, title="Most events kept", description="Oldest are dropped (and counted) beyond.")
    max_age_s: float = Field(
        7 * 24 * 3600.0, gt=0, title="Oldest event kept", description="Events older than this many seconds are dropped."
    )


class HistoryConfig(Section):
    enabled: bool = Field(
        True, title="Face history", description="Keep each decision's face (crop and embedding) on this box for review."
    )
    path: Path | None = Field(
        None,
        title="History directory",
        description="SQLite rows and JPEG crops; default $STATE_DIRECTORY/history under systemd, else "
        "~/.local/state/edge-daemon/history. Nothing in it leaves the box unless asked.",
    )
    max_faces: int = Field(100_000, ge=1, title="Most faces kept", description="The oldest are dropped (and counted) beyond.")
    max_age_days: float = Field(30.0, gt=0, title="Oldest face kept", description="Faces older than this many days are dropped.")
    group_fpir: float = Field(
        0.003,
        gt=0,
        lt=1,
        title="Grouping stranger rate",
        description="Unknown tracks are grouped into people at the threshold that keeps this share of new "
        "people from joining someone else's group, for the number of groups there are (the open-set table's, for "
        "the track's quality and number of faces): lower keeps groups purer, higher splits a person less. "
        "0.003 kept 99.3% of tracks in the right group on LFW View 1 DevTrain.",
    )
    group_min_quality: float = Field(
        0.35,
        ge=0,
        le=1,
        title="Poorest track grouped",
        description="Unknown tracks whose template's quality is below this stay on their own: the faces of small, "
        "blurred tracks look alike, and groups of them mix people (0.35: the poorest fifth of the faces the "
        "open-set table was calibrated on).",
    )


class ReviewConfig(Section):
    enabled: bool = Field(
        False,
        title="Review page",
        description="Serve /review on the metrics port: recent faces, unknown groups to enrol, 'not this person'.",
    )
    token_file: Path | None = Field(
        None,
        title="Review token file",
        description="File holding the access token (16+ characters, e.g. a systemd credential); required when "
        "enabled. Open /review?token=... once; the page is refused without it.",
    )


class ServiceConfig(Section):
    box: str | None = Field(
        None,
        title="Box name",
        description="This box's name, unique among the boxes sharing a broker: in every event ('box'), the MQTT "
        "client id, topics and Home Assistant unique ids. Unset: the host name.",
        pattern=BOX_NAME_PATTERN,
    )
    stuck_after_s: float = Field(
        30.0,
        gt=0,
        title="Stuck after",
        description="Unhealthy (no systemd watchdog ping, /healthz 503) when a streaming camera has had no frame "
        "processed for this many seconds.",
    )
    ready_timeout_s: float = Field(
        30.0, gt=0, title="Ready timeout", description="Tell systemd READY=1 at the latest after this, even if a camera is still opening."
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, title="Metrics port", description="Serve /metrics and /healthz on this port; 0 disables."
    )
    metrics_host: str = Field("127.0.0.1", title="Metrics address", description="Address to listen on (local by default).")

    @property
    def box_name(self) -> str:
        return self.box or default_box_name()


class MotionConfig(Section):
    enabled: bool = Field(
        True,
        title="Motion gating",
        description="Detect only what the scene needs: skip frames with no motion and no live track, detect "
        "regions around what moves, the whole frame every cameras.idle_detect_s. False detects every frame whole.",
    )
    width: int = Field(
        240, ge=16, le=1920, title="Motion frame width", description="Pixels of the small grey frame motion is found on."
    )
    min_area: int = Field(
        6, ge=1, title="Smallest motion", description="Small-frame pixels a moving blob needs (after dilation) to count."
    )
    dilate_px: int = Field(
        2,
        ge=0,
        le=32,
        title="Motion dilation",
        description="Small-frame pixels each moving pixel is grown by, joining the edges of one moving person into one blob.",
    )
    learning_rate: float = Field(
        0.05,
        gt=0,
        le=1,
        title="Background learning rate",
        description="Share of the background replaced by each frame; someone standing still fades into it within "
        "a few seconds (their track keeps a region on them).",
    )
    light_change: float = Field(
        0.5,
        gt=0,
        le=1,
        title="Light change",
        description="Share of the frame changing at once that is taken as light (lamps, day/night, exposure), not "
        "motion: the background is learnt again and the whole frame detected once.",
    )
    region_min_side: int = Field(
        64,
        ge=8,
        le=4096,
        multiple_of=8,
        title="Smallest region side",
        description="Frame pixels of a region's shortest side at least; a multiple of 8 (YuNet's finest stride).",
    )
    region_box_scale: float = Field(
        1.25, ge=1, le=8, title="Region size", description="A region's width and height per the box's it is around."
    )
    region_padding_px: int = Field(
        24,
        ge=0,
        le=1024,
        title="Region padding",
        description="Frame pixels kept around a box at least, so a face the motion box cuts is whole in its region.",
    )
    region_merge_overlap: float = Field(
        0.3,
        gt=0,
        le=1,
        title="Region merge overlap",
        description="Regions overlapping by this share of the smaller one become one region around both.",
    )
    duplicate_iou: float = Field(
        0.3,
        gt=0,
        le=1,
        title="Duplicate face overlap",
        description="A face found in two regions whose boxes overlap by this IoU is kept once.",
    )
    region_face_px: int = Field(
        40,
        ge=0,
        le=1024,
        title="Tracked face size",
        description="A region around a live track is shrunk until its face is this many pixels wide for the detector "
        "(never below the whole frame's own downscale, never enlarged), and so is a moving blob of that person's "
        "size around it; motion with no tracked face is detected at full size. 0: every region at full size.",
    )
    max_region_cost: float = Field(
        1.0,
        gt=0,
        le=16,
        title="Most region cost",
        description="When the regions would cost more than this times the whole frame (motion everywhere), the "
        "whole frame is detected instead. Costs are the detector's input pixels, a fixed cost per detector call and "
        "the shrinking of what is shrunk for it (the whole frame's downscale included).",
    )


class ThreadsConfig(Section):
    opencv: int = Field(
        1, ge=0, le=64, title="OpenCV threads", description="cv2.setNumThreads in the daemon (resizing, warping); 0: OpenCV's default."
    )
    faiss: int = Field(
        1, ge=0, le=64, title="FAISS threads", description="OpenMP threads for gallery search; one query is fastest on one. 0: default."
    )
    model_process: int = Field(
        1, ge=1, le=64, title="Threads per model process", description="Compute threads of each detector/embedder process."
    )


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = Field("info", title="Log level", description="Least severity logged.")
    format: Literal["auto", "json", "console"] = Field(
        "auto", title="Log format", description="'auto': readable on a terminal, JSON otherwise."
    )


_toml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("toml_file", default=None)


class Settings(BaseSettings):
    """The daemon's whole configuration."""

    model_config = SettingsConfigDict(env_prefix="EDGE_", env_nested_delimiter="__", extra="forbid")

    cameras: list[CameraConfig] = Field(
        default_factory=list, title="Cameras", description="Streams to watch, one capture thread each."
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig, title="Face detection")
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig, title="Face embedding")
    gallery: GalleryConfig = Field(default_factory=GalleryConfig, title="Enrolled people")
    motion: MotionConfig = Field(default_factory=MotionConfig, title="Motion gating and regions")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, title="Tracking and decisions")
    decisions: DecisionConfig = Field(default_factory=DecisionConfig, title="Decisions (templates, verdicts)")
    events: EventsConfig = Field(default_factory=EventsConfig, title="Event outputs")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, title="MQTT")
    spool: SpoolConfig = Field(default_factory=SpoolConfig, title="Event spool (MQTT delivery)")
    history: HistoryConfig = Field(default_factory=HistoryConfig, title="Face history (review, unknowns, search)")
    review: ReviewConfig = Field(default_factory=ReviewConfig, title="Review page (needs a token)")
    service: ServiceConfig = Field(default_factory=ServiceConfig, title="Service (systemd, metrics, health)")
    threads: ThreadsConfig = Field(default_factory=ThreadsConfig, title="Threads (two cores are shared by every stage)")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, title="Logging")

    @model_validator(mode="after")
    def _review_needs(self) -> Settings:
        if self.review.enabled and (
            self.review.token_file is None or not self.service.metrics_port or not self.history.enabled
        ):
            raise ValueError("review.enabled needs review.token_file, service.metrics_port and history.enabled")
        return self

    @model_validator(mode="after")
    def _gallery_sync_needs(self) -> Settings:
        if self.gallery.sync == "mqtt" and (not self.mqtt.url or self.gallery.path is None):
            raise ValueError("gallery.sync = 'mqtt' needs mqtt.url and gallery.path (where revisions are kept)")
        return self

    @field_validator("cameras")
    @classmethod
    def _unique_camera_names(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        names = [camera.name for camera in cameras]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"camera names must be unique, repeated: {', '.join(duplicates)}")
        return cameras

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        toml_file = _toml_file.get()
        if toml_file is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=toml_file),)
        return sources


class ConfigError(Exception):
    """Invalid configuration; the message lists every bad field with its path and reason."""


def load_settings(path: Path | None = None, **overrides: object) -> Settings:
    """Read the TOML file (if any), apply ``EDGE_`` env vars and then ``overrides``; validate everything."""
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"config file not found: {path}")
    token = _toml_file.set(Path(path) if path is not None else None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except ValueError as exc:  # TOML syntax errors and undecodable env values
        raise ConfigError(f"cannot read configuration: {exc}") from None
    finally:
        _toml_file.reset(token)


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"{location}: {error['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def parse_camera_flag(flag: str) -> dict[str, str]:
    """``NAME=URL`` from ``--camera`` into a camera entry (validated with the rest of the config)."""
    name, sep, url = flag.partition("=")
    if not sep or not name or not url:
        raise ConfigError(f"--camera expects NAME=URL, got {flag!r}")
    if not re.match(CAMERA_NAME_PATTERN, name):
        raise ConfigError(f"--camera name {name!r}: use letters, digits, '_', '-', '.'")
    return {"name": name, "url": url}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, BaseModel):
        fields = value.model_dump(exclude_none=True)
        return "{" + ", ".join(f"{key} = {_toml_value(item)}" for key, item in fields.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def _commented_options(model: type[BaseModel]) -> list[str]:
    lines = []
    for name, option in model.model_fields.items():
        if option.default_factory is not None:
            rendered = _toml_value(option.default_factory())
        elif option.default is PydanticUndefined:
            rendered = "...  # required"
        elif option.default is None:
            rendered = '""  # unset'
        else:
            rendered = _toml_value(option.default)
        lines += [f"# {option.title}: {option.description}", f"# {name} = {rendered}"]
    return lines


def example_toml() -> str:
    """A TOML file with every option, its default and its description as comments (from the schema)."""
    lines = [
        "# edge-daemon configuration: every option, commented out at its default.",
        "# Generated by 'edge-daemon config example'; environment variables override the file as",
        "# EDGE_<SECTION>__<OPTION>, e.g. EDGE_DETECTOR__BACKEND=yunet_onnx.",
        "",
        "# [[cameras]]  (one table per camera)",
        *_commented_options(CameraConfig),
        "",
    ]
    for section, field in Settings.model_fields.items():
        if section != "cameras":
            lines += [f"[{section}]  # {field.title}", *_commented_options(field.annotation), ""]
    return "\n".join(lines)
