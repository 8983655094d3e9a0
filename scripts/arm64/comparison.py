"""The x86_64 and aarch64 results of the steps (steps.py) compared: every step finished on both; the
same identities enrolled from the Hamilton gallery; recognize: the same faces with the same
identities, scores and boxes within tolerance; the daemon on the demo clip: the same tracks,
decisions and identities, and on its lossless copy (the same pixels on both) scores and boxes
within tolerance too. A result file that cannot be read fails its check with the reason."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from scripts.arm64.checks import Check
from scripts.arm64.steps import STEP_LOG

SIDES = ("x86_64", "aarch64")
# the daemon's decisions, in their order within one track
DECISION_ORDER = {"recognized": 0, "unknown": 0, "updated": 1, "ended": 2}


class MalformedResult(ValueError):
    pass


@dataclass(frozen=True)
class Tolerance:
    score: float
    box_px: float


@dataclass
class Largest:
    """The largest score and box differences seen."""

    score: float = 0.0
    box_px: float = 0.0

    def update(self, score: float, box_px: float) -> None:
        self.score, self.box_px = max(self.score, score), max(self.box_px, box_px)

    def within(self, tolerance: Tolerance) -> bool:
        return self.score <= tolerance.score and self.box_px <= tolerance.box_px


@dataclass
class Part:
    """One part of the comparison: its checks, and what it adds to the largest differences."""

    checks: list[Check]
    largest: Largest = field(default_factory=Largest)
    compared: int = 0  # faces or events held to the tolerances
    stories: dict[str, str] = field(default_factory=dict)  # side -> its decisions, in words


def json_lines(path: Path) -> list[dict]:
    """The JSON objects on the file's lines that start with '{' (none when it is missing)."""
    if not path.exists():
        return []
    objects = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if line.strip().startswith("{"):
            try:
                objects.append(json.loads(line))
            except ValueError as exc:
                raise MalformedResult(f"{path.parent.name}/{path.name} line {number}: {exc}") from None
    return objects


def box_difference(box1: list[float], box2: list[float]) -> float:
    return max((abs(p - q) for p, q in zip(box1, box2)), default=0.0)


def score_difference(item1: dict, item2: dict) -> float:
    return abs((item1.get("score") or 0) - (item2.get("score") or 0))


def last_error_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return lines[-1][:90] if lines else ""


def compare_steps(x86: Path, arm: Path) -> Part:
    """Every step the x86_64 side ran finished (exit status 0) on both sides."""
    steps = {
        side: {step["step"]: step for step in json_lines(directory / STEP_LOG)} for side, directory in zip(SIDES, (x86, arm))
    }
    if not steps["x86_64"]:
        return Part([Check.of("steps", False, f"none in {x86 / STEP_LOG}", "-")])
    checks = []
    for name, x in steps["x86_64"].items():
        a = steps["aarch64"].get(name, {"rc": "missing", "seconds": "-"})
        ok = x["rc"] == 0 and a["rc"] == 0
        error = "" if ok else " " + (last_error_line(arm / f"{name}.err") or last_error_line(x86 / f"{name}.err"))
        checks.append(
            Check.of(f"step {name}", ok, f"rc={x['rc']} {x['seconds']}s", f"rc={a['rc']} {a['seconds']}s{error}".rstrip())
        )
    return Part(checks)


def gallery_identities(path: Path) -> list[str] | None:
    """The names `gallery list --json` printed, or None when it printed nothing readable."""
    try:
        return sorted(json.loads(path.read_text(encoding="utf-8"))["identities"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def compare_galleries(x86: Path, arm: Path) -> Part:
    gx, ga = gallery_identities(x86 / "gallery_list.out"), gallery_identities(arm / "gallery_list.out")
    ok = gx is not None and gx == ga
    unreadable = "no readable gallery list"
    shown_x86 = unreadable if gx is None else f"{len(gx)} identities"
    shown_arm = "same" if ok else (unreadable if ga is None else str(ga))
    return Part([Check.of("gallery identities (hamilton)", ok, shown_x86, shown_arm)])


def faces_by_position(answer: dict) -> list[dict]:
    return sorted(answer.get("faces", []), key=lambda face: (face["bbox"][0], face["bbox"][1]))


def names(faces: list[dict]) -> str:
    return ",".join(face.get("identity") or "unknown" for face in faces)


def compare_recognized(x86: Path, arm: Path, tolerance: Tolerance) -> Part:
    """Per photo: the same faces (left to right), identities equal, scores and boxes within tolerance."""
    rx, ra = json_lines(x86 / "recognize.out"), json_lines(arm / "recognize.out")
    part = Part([], compared=sum(len(answer.get("faces", [])) for answer in rx))
    for x, a in zip(rx, ra):
        image = Path(x["image"]).name
        fx, fa = faces_by_position(x), faces_by_position(a)
        ok = "error" not in x and "error" not in a and Path(a["image"]).name == image and len(fx) == len(fa)
        photo = Largest()
        for f1, f2 in zip(fx, fa):
            score, box = score_difference(f1, f2), box_difference(f1["bbox"], f2["bbox"])
            photo.update(score, box)
            ok = ok and f1.get("identity") == f2.get("identity") and score <= tolerance.score and box <= tolerance.box_px
        part.largest.update(photo.score, photo.box_px)
        shown = "same" if ok else f"{len(fa)} faces: {names(fa)}" + (f" {a['error']}" if "error" in a else "")
        part.checks.append(Check.of(
            f"recognize {image}", ok, f"{len(fx)} faces: {names(fx)}",
            f"{shown} (scores within {photo.score:.1e}, boxes {photo.box_px:.2f} px)",
        ))  # fmt: skip
    part.checks.append(
        Check.of("recognize: images answered", len(rx) == len(ra) and len(rx) > 0, f"{len(rx)} images", f"{len(ra)} images")
    )
    return part


def decisions(path: Path) -> list[dict]:
    """The daemon's decision events, track by track in their order."""
    events = [event for event in json_lines(path) if event.get("type") in DECISION_ORDER]
    return sorted(events, key=lambda event: (event["track_id"], DECISION_ORDER[event["type"]], event.get("ts", "")))


def story(events: list[dict]) -> str:
    return "; ".join(
        f"{event['track_id']}:{event['type']}" + (f":{event.get('identity') or '-'}" if event["type"] != "ended" else "")
        for event in events
    )


def compare_demo(x86: Path, arm: Path, name: str, label: str, tolerance: Tolerance, strict: bool) -> Part:
    """The same tracks, decisions and identities; with strict, decision scores and boxes within tolerance."""
    dx, da = decisions(x86 / f"{name}-events.jsonl"), decisions(arm / f"{name}-events.jsonl")
    ok = len(dx) == len(da) and len(dx) > 0
    clip = Largest()
    for e1, e2 in zip(dx, da):
        ok = ok and (e1["track_id"], e1["type"], e1.get("identity")) == (e2["track_id"], e2["type"], e2.get("identity"))
        if e1["type"] != "ended":  # an 'ended' event carries the track's last box, not a decision's
            clip.update(score_difference(e1, e2), box_difference(e1.get("bbox") or [], e2.get("bbox") or []))
    if strict:
        ok = ok and clip.within(tolerance)
    check = Check.of(
        label, ok, names([event for event in dx if event["type"] != "ended"]),
        ("same" if ok else story(da)) + f" (scores within {clip.score:.1e}, boxes {clip.box_px:.2f} px)",
    )  # fmt: skip
    return Part([check], clip if strict else Largest(), len(dx) if strict else 0, {"x86_64": story(dx), "aarch64": story(da)})


def guarded(label: str, compare, *args, **kwargs) -> Part:
    """compare(*args, **kwargs), or one failed check named LABEL when a result file is malformed."""
    try:
        return compare(*args, **kwargs)
    except (LookupError, TypeError, ValueError, AttributeError) as exc:
        return Part([Check.of(label, False, "-", f"malformed results ({type(exc).__name__}: {exc})")])


def compare(work: Path, tolerance: Tolerance) -> tuple[list[Check], dict]:
    """The checks, and the details summary.json keeps: both sides' decisions on the lossless clip and
    the largest differences. WORK holds each side's step results in WORK/x86_64 and WORK/aarch64."""
    x86, arm = (work / side for side in SIDES)
    steps = guarded("steps", compare_steps, x86, arm)
    gallery = guarded("gallery identities (hamilton)", compare_galleries, x86, arm)
    photos = guarded("recognize", compare_recognized, x86, arm, tolerance)
    clip_label, lossless_label = "demo clip.mp4: tracks and identities", "demo clip, lossless copy: decisions"
    clip = guarded(clip_label, compare_demo, x86, arm, "demo_mp4", clip_label, tolerance, strict=False)
    lossless = guarded(lossless_label, compare_demo, x86, arm, "demo_lossless", lossless_label, tolerance, strict=True)
    largest, compared = Largest(), photos.compared + lossless.compared
    for part in (photos, lossless):
        largest.update(part.largest.score, part.largest.box_px)
    overall = Check.of(
        "largest differences (photos, lossless clip)", compared > 0 and largest.within(tolerance),
        f"tol {tolerance.score:g} / {tolerance.box_px:g} px",
        f"score {largest.score:.2e}, box {largest.box_px:.3f} px over {compared} faces and events",
    )  # fmt: skip
    checks = steps.checks + gallery.checks + photos.checks + clip.checks + lossless.checks + [overall]
    details = {
        "demo_x86_64": lossless.stories.get("x86_64", ""),
        "demo_aarch64": lossless.stories.get("aarch64", ""),
        "worst_score": largest.score,
        "worst_box_px": largest.box_px,
    }
    return checks, details


def write_summary(work: Path, checks: list[Check], details: dict) -> None:
    rows = [[check.name, check.result, check.x86_64, check.aarch64] for check in checks]
    (work / "summary.json").write_text(json.dumps({"rows": rows, "details": details}, indent=2), encoding="utf-8")
