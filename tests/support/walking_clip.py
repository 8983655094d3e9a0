"""People walking past a camera, one after another: the clip a tracker must keep as one track per walk.

Each walk lasts 3 s at a normal pace, left to right or right to left across a 1280x720 static
scene, as a sequence of different LFW photos of one person: a new pose every 0.6 s, so the detector
sees the head turn and the box jump as it would on a real walker. Faces are scaled to ``face_px``
wide (48 px: a person a few metres from a 720p camera; 28: further away). A normal pace (1.4 m/s) is
about 9 face widths a second at any distance (a face is about 16 cm wide), so a 48 px walker
crosses the whole frame in the 3 s and a 28 px one, further away, the middle 60% of it.

``condition`` renders every frame as a camera sees it in difficult light
(``edge_daemon.evaluation.conditions``; ``infrared``: a night-vision camera), each walk with its own
camera settings drawn from the condition's range and every frame with fresh sensor noise; the
gallery stays enrolled from colour photos.

LFW rather than pins14: the clip needs many different people (40 strangers beside the enrolled)
with several photos each, and LFW's deep-funnelled photos put every face at the same place and
size, so a face's width in the clip is set exactly without detecting it first. The clip measures
the daemon (development metrics, what eval/lfw is for); nothing is trained on it.

    walks, candidates = choose_walks(LFW, enrolled=10, strangers=40)
    write_clip(path, walks, face_px=48)
    gallery, _ = enrol(candidates, out, detector={})
    started_at, stats = watch(path, gallery, events, detect_fps=5.0, detector={})
    print(score(walks, [json.loads(line) for line in events.read_text().splitlines()], started_at))
"""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from edge_daemon.config import DetectorConfig, EmbedderConfig, Settings
from edge_daemon.evaluation.conditions import photo_rng, render

FRAME_SIZE = (1280, 720)  # width, height
FPS = 15  # a typical surveillance stream rate; detection samples it at detect_fps
WALK_S = 3.0
PACE = 9.0  # face widths per second
POSE_S = 0.6
GAP_S = 1.0  # nobody in view between walks: longer than a detection interval, shorter than max_missed_s
POSES = round(WALK_S / POSE_S)
# LFW deep-funnelled photos are 250x250 with the face centred at (125, 123) and 94 px wide (the
# median of yuface's boxes on 40 random LFW people; 10-90% range 86-105 px).
LFW_FACE_WIDTH = 94
LFW_FACE_CENTRE = (125, 123)


@dataclass
class Walk:
    identity: str
    enrolled: bool
    photos: list[str]  # one per pose, in order
    start_s: float
    direction: int  # +1 left to right, -1 right to left
    height: float  # face centre's row, as a fraction of the frame height

    @property
    def end_s(self) -> float:
        return self.start_s + WALK_S


def choose_walks(lfw: Path, enrolled: int, strangers: int, seed: int = 0) -> tuple[list[Walk], dict[str, list[str]]]:
    """``enrolled`` people who walk past twice (ten photos) and have more, not walked, for the
    gallery, and ``strangers`` who walk past once; in a shuffled order, back to back. Returns the
    walks and, per enrolled person, the photos not walked past with: gallery candidates."""
    rng = random.Random(seed)
    photos = {person.name: sorted(person.glob("*.jpg")) for person in sorted(lfw.iterdir()) if person.is_dir()}
    people = [name for name, own in photos.items() if len(own) >= POSES]
    # Three photos beyond the walked ten: LFW photos often hold a second face, which enrolment refuses.
    regulars = rng.sample([name for name in people if len(photos[name]) >= 2 * POSES + 3], enrolled)
    others = rng.sample([name for name in people if name not in regulars], strangers)
    gallery = {name: [str(photo) for photo in photos[name][:1] + photos[name][1 + 2 * POSES :]] for name in regulars}
    planned = [(name, True, photos[name][1 + i * POSES : 1 + (i + 1) * POSES]) for name in regulars for i in (0, 1)]
    planned += [(name, False, photos[name][:POSES]) for name in others]
    rng.shuffle(planned)
    walks = [
        Walk(name, enrolled, [str(photo) for photo in poses], 0.5 + i * (WALK_S + GAP_S),
             1 if i % 2 == 0 else -1, rng.uniform(0.3, 0.6))
        for i, (name, enrolled, poses) in enumerate(planned)
    ]
    return walks, gallery


def background() -> np.ndarray:
    """A static scene with no face in it (scikit-image's coffee cup, blurred like a far wall)."""
    from skimage import data

    scene = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    return cv2.GaussianBlur(cv2.resize(scene, FRAME_SIZE), (0, 0), 3)


class Painter:
    """Draws the walker of the moment onto the background; photos are read and scaled once."""

    def __init__(self, walks: list[Walk], face_px: int):
        self._walks = walks
        self._span = WALK_S * PACE * face_px  # how far the face centre travels in a walk
        self._scale = face_px / LFW_FACE_WIDTH
        self._background = background()
        self._patches: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _patch(self, photo: str) -> tuple[np.ndarray, np.ndarray]:
        if photo not in self._patches:
            image = cv2.imread(photo)
            side = round(image.shape[1] * self._scale)
            image = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
            # An elliptical, feathered cut-out: the head and shoulders, not a square photo sliding by.
            mask = np.zeros((side, side), np.float32)
            cv2.ellipse(mask, (side // 2, side // 2), (int(side * 0.36), int(side * 0.48)), 0, 0, 360, 1.0, -1)
            self._patches[photo] = image, cv2.GaussianBlur(mask, (0, 0), side * 0.03)[..., None]
        return self._patches[photo]

    def frame(self, t: float) -> np.ndarray:
        image = self._background.copy()
        walk = next((walk for walk in self._walks if walk.start_s <= t < walk.end_s), None)
        if walk is None:
            return image
        progress = (t - walk.start_s) / WALK_S
        patch, mask = self._patch(walk.photos[min(int((t - walk.start_s) / POSE_S), POSES - 1)])
        side = patch.shape[0]
        width, height = FRAME_SIZE
        # The face centre travels its span, centred on the frame, bobbing 1/20 of the photo's side
        # at two steps a second.
        offset = (progress - 0.5) * self._span
        x = width / 2 + offset * walk.direction
        y = walk.height * height + 0.05 * side * np.sin(2 * np.pi * 2 * (t - walk.start_s))
        left = round(x - LFW_FACE_CENTRE[0] * self._scale)
        top = round(y - LFW_FACE_CENTRE[1] * self._scale)
        # Clip the patch to the frame.
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + side, width), min(top + side, height)
        if x1 <= x0 or y1 <= y0:
            return image
        region = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
        alpha = mask[region]
        image[y0:y1, x0:x1] = (patch[region] * alpha + image[y0:y1, x0:x1] * (1 - alpha)).astype(np.uint8)
        return image


def walk_at(walks: list[Walk], t: float, margin_s: float = 0.2) -> int | None:
    """The index of the walk in view at ``t`` (seconds into the clip), give or take ``margin_s``."""
    return next((i for i, walk in enumerate(walks) if walk.start_s - margin_s <= t <= walk.end_s + margin_s), None)


def duration(walks: list[Walk]) -> float:
    return walks[-1].end_s + GAP_S


def write_clip(path: Path, walks: list[Walk], face_px: int, condition: str = "daylight", seed: int = 0) -> None:
    painter = Painter(walks, face_px)
    noise = np.random.default_rng([seed, len(walks)])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, FRAME_SIZE)
    try:
        for index in range(round(duration(walks) * FPS)):
            t = index / FPS
            # The settings of the walk in view, or of the nearer walk in the gap between two.
            walk = walk_at(walks, t, margin_s=GAP_S / 2)
            settings = photo_rng(seed, f"walk-{len(walks) - 1 if walk is None else walk}")
            writer.write(render(painter.frame(t), condition, settings, noise))
    finally:
        writer.release()


def truth(walks: list[Walk], gallery: dict[str, str], face_px: int, condition: str = "daylight") -> dict:
    """Who walks when, and the photo each enrolled walker was enrolled with: the clip's ground truth."""
    return {
        "frame_size": FRAME_SIZE,
        "fps": FPS,
        "face_px": face_px,
        "condition": condition,
        "gallery": gallery,
        "walks": [{**asdict(walk), "end_s": walk.end_s} for walk in walks],
    }


# --- watching it: enrolment, the daemon on the clip, and the score (bench/walking.py, tests) ---

DECISIONS = ("recognized", "unknown", "updated")


def enrol(candidates: dict[str, list[str]], out: Path, detector: dict) -> tuple[Path, dict[str, str]]:
    """The gallery of the enrolled walkers, one photo each: the first of their photos not walked past
    with in which enrolment finds one face. Returns the gallery and the photo each was enrolled with."""
    from edge_daemon.api import build_gallery, find_faces, load_image
    from edge_daemon.detectors import create_detector
    from edge_daemon.embedders import create_embedder

    face_finder = create_detector(DetectorConfig(**detector), separate_process=False)
    embedder = create_embedder(EmbedderConfig(), separate_process=False)
    try:
        chosen = {
            identity: next((photo for photo in photos if len(find_faces(load_image(photo), face_finder)) == 1),
                           photos[0])  # none holds one face: enrolment below says why
            for identity, photos in candidates.items()
        }
        photos = out / "gallery-photos"
        shutil.rmtree(photos, ignore_errors=True)
        for identity, photo in chosen.items():
            (photos / identity).mkdir(parents=True)
            (photos / identity / Path(photo).name).symlink_to(photo)
        gallery, skipped = build_gallery(photos, face_finder, embedder)
    finally:
        face_finder.close()
        embedder.close()
    if skipped:
        raise RuntimeError("not enrolled: " + ", ".join(f"{item.path} ({item.reason})" for item in skipped))
    path = out / "gallery"
    shutil.rmtree(path, ignore_errors=True)
    gallery.save(path)
    return path, chosen


def watch(clip: Path, gallery: Path, events: Path, detect_fps: float, detector: dict) -> tuple[float, dict]:
    """Runs the daemon on the clip until it ends, its face history beside ``events``. Returns the
    wall-clock time the clip started playing and the daemon's stats."""
    from edge_daemon.service.runner import DaemonRunner

    settings = Settings(
        cameras=[{"name": "walk", "url": str(clip), "realtime": True, "detect_fps": detect_fps}],
        detector=detector,
        gallery={"path": str(gallery)},
        events={"jsonl": str(events)},
        history={"path": str(events.parent / "history")},
    )
    runner = DaemonRunner(settings)
    wall_minus_monotonic = time.time() - time.monotonic()
    code = runner.run()
    if code != 0:
        raise SystemExit(f"the daemon exited with {code}")
    return runner.daemon.cameras[0].streaming_since + wall_minus_monotonic, runner.daemon.stats()


def score(walks: list[Walk], events: list[dict], started_at: float) -> dict:
    """Per walk: its decided tracks and the names they were given; then the totals."""
    tracks: dict[int, dict] = {}
    for event in events:
        if event["type"] in DECISIONS:
            track = tracks.setdefault(event["track_id"], {"first_frame_ts": event["frame_ts"], "names": set(), "verdicts": set()})
            track["verdicts"].add(event["verdict"])
            if event["identity"] is not None:
                track["names"].add(event["identity"])
    per_walk: list[list[dict]] = [[] for _ in walks]
    unplaced = 0
    for track in tracks.values():
        seconds = datetime.fromisoformat(track["first_frame_ts"].replace("Z", "+00:00")).timestamp() - started_at
        index = walk_at(walks, seconds, margin_s=0.3)
        if index is None:
            unplaced += 1
        else:
            per_walk[index].append(track)
    outcome: Counter = Counter()
    for walk, walk_tracks in zip(walks, per_walk):
        names = set().union(*(track["names"] for track in walk_tracks))
        # Unnamed: "unknown" if any of its tracks was seen well enough to say so, else "uncertain".
        unnamed = "unknown" if any("unknown" in track["verdicts"] for track in walk_tracks) else "uncertain"
        if not walk_tracks:
            outcome["not decided"] += 1
        elif walk.enrolled:
            outcome["enrolled: named wrong" if names - {walk.identity} else
                    "enrolled: named right" if names else f"enrolled: not named, {unnamed}"] += 1
        else:
            outcome["stranger: named" if names else f"stranger: not named, {unnamed}"] += 1
    enrolled = sum(walk.enrolled for walk in walks)
    return {
        "walks": len(walks),
        "enrolled_walks": enrolled,
        "stranger_walks": len(walks) - enrolled,
        "decided_tracks": len(tracks),
        "decided_tracks_per_walk": round(sum(map(len, per_walk)) / len(walks), 2),
        "most_tracks_in_a_walk": max(map(len, per_walk)),
        "tracks_outside_walks": unplaced,
        **dict(sorted(outcome.items())),
    }
