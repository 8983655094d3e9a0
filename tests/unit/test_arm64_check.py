"""scripts/arm64: the logic of scripts/test-arm64.sh on small made-up inputs (no network, no
emulation): the checks table and its verdict, the aarch64 resolution and the pins, the apt mirror,
the steps both sides run, and the comparison of their results."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import av
import numpy as np
import pytest

from scripts.arm64 import checks, resolution, steps
from scripts.arm64.__main__ import main
from scripts.arm64.apt_sources import DEFAULT_MIRROR, apt_mirror, deb822_mirror, one_line_mirror
from scripts.arm64.checks import Check
from scripts.arm64.comparison import Tolerance, compare
from scripts.arm64.lossless import lossless_copy

TOLERANCE = Tolerance(score=2e-3, box_px=1.0)
STEP_NAMES = [name for name, _ in steps.plan("edge-daemon", Path("/o"), Path("/s"), Path("/a"), None)]


# --- the checks file and the verdict ----------------------------------------------------------------


def test_a_run_without_failures_passes_and_names_what_it_skipped(tmp_path):
    path = tmp_path / "checks.tsv"
    path.write_text("resolve cp311 manylinux_2_28_aarch64\tPASS\t-\t39 packages, all wheels\n")
    checks.append(path, [Check("arm64 emulation", "SKIP", "-", "EDGE_ARM64_EMULATE=0")])
    text, status = checks.summary(checks.read(path), 37, Path("/cache/arm64-run"))
    assert status == 0
    assert text.splitlines()[1].split() == ["CHECK", "RESULT", "X86_64", "AARCH64"]
    assert text.splitlines()[-1] == (
        "test-arm64: PASS: 1 checks; SKIPPED arm64 emulation: EDGE_ARM64_EMULATE=0 (37 s; details in /cache/arm64-run)"
    )


def test_one_failed_check_fails_the_run():
    rows = [Check("a", "PASS"), Check("b", "FAIL", "-", "differs"), Check("c", "SKIP")]
    text, status = checks.summary(rows, 5, Path("/w"))
    assert status == 1
    assert text.splitlines()[-1] == "test-arm64: FAIL: 1 of 3 checks failed (5 s; details in /w)"


def test_a_row_that_is_not_a_check_counts_as_failed(tmp_path):
    path = tmp_path / "checks.tsv"
    path.write_text("Traceback (most recent call last):\n\nresolve\tPASS\t-\tok\n")
    rows = checks.read(path)
    assert [row.result for row in rows] == ["FAIL", "PASS"]
    assert checks.summary(rows, 1, tmp_path)[1] == 1


def test_tabs_and_newlines_in_a_column_stay_in_their_row(tmp_path):
    path = tmp_path / "checks.tsv"
    checks.append(path, [Check.of("step recognize", False, "rc=0 1.0s", "rc=1\tboom\nmore")])
    assert checks.read(path) == [Check("step recognize", "FAIL", "rc=0 1.0s", "rc=1 boom more")]


# --- resolution on manylinux aarch64 and the pins ---------------------------------------------------


def test_every_manylinux_tag_from_2_17_to_2_28_is_named():
    tags = resolution.platform_tags("aarch64")
    assert tags[0] == "manylinux_2_17_aarch64" and "manylinux_2_28_aarch64" in tags and tags[-1] == "manylinux2014_aarch64"
    assert len(tags) == 13
    command = resolution.resolve_command("aarch64", "3.12", Path("/repo"), Path("/w"), Path("/r.json"), Path("/t"))
    assert "--only-binary=:all:" in command and "--dry-run" in command
    assert command[command.index("--python-version") + 1] == "3.12"
    assert [command[i + 1] for i, argument in enumerate(command) if argument == "--platform"] == tags


def test_a_resolution_passes_with_its_package_count(tmp_path):
    report = tmp_path / "resolve-aarch64-cp311.json"
    report.write_text(json.dumps({"install": [{"metadata": {"name": "numpy"}}, {"metadata": {"name": "dlib-bin"}}]}))
    check, message = resolution.resolution_check("aarch64", "3.11", 0, report, tmp_path / "none.log")
    assert check == Check("resolve cp311 manylinux_2_28_aarch64", "PASS", "-", "2 packages, all wheels")
    assert message == "resolve cp311 aarch64: 2 packages, all from wheels"


def test_a_missing_wheel_fails_the_resolution_with_pips_error(tmp_path):
    log = tmp_path / "resolve-aarch64-cp313.log"
    error = (
        "ERROR: Could not find a version that satisfies the requirement dlib-bin>=19.24 (from edge-daemon) (from versions: none)"
    )
    log.write_text(f"Processing /repo\n{error}\nERROR: No matching distribution found for dlib-bin>=19.24\n")
    check, message = resolution.resolution_check("aarch64", "3.13", 1, tmp_path / "absent.json", log)
    assert check.result == "FAIL" and check.aarch64 == error[:120]
    assert message.startswith("resolve cp313 aarch64 FAILED: ERROR: Could not find") and str(log) in message


def test_a_resolution_without_a_readable_report_fails(tmp_path):
    report = tmp_path / "resolve-aarch64-cp312.json"
    report.write_text('{"install": ')
    check, _ = resolution.resolution_check("aarch64", "3.12", 0, report, tmp_path / "none.log")
    assert check.result == "FAIL" and "unreadable" in check.aarch64


def test_pins_are_the_installed_versions_of_what_the_install_wants(tmp_path):
    installed = [
        {"name": "opencv_python_headless", "version": "4.10.0.84"},
        {"name": "NumPy", "version": "2.1.3"},
        {"name": "pip", "version": "24.0"},
        {"name": "pytest", "version": "8.3.4"},
        {"name": "yuface", "version": "2023.5"},
    ]
    wanted = {"numpy", "opencv-python-headless", "pip", "yuface"}
    assert resolution.pins(installed, wanted) == ["numpy==2.1.3", "opencv-python-headless==4.10.0.84"]
    # without a resolution (EDGE_ARM64_RESOLVE=0): everything installed but the never-pinned
    assert resolution.pins(installed, None) == ["numpy==2.1.3", "opencv-python-headless==4.10.0.84", "pytest==8.3.4"]


def test_the_wanted_packages_come_from_the_report_or_none(tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"install": [{"metadata": {"name": "Face_Recognition.Models"}}]}))
    assert resolution.wanted_packages(report) == {"face-recognition-models"}
    assert resolution.wanted_packages(tmp_path / "absent.json") is None
    report.write_text(json.dumps({"install": [{"download_info": {}}]}))
    assert resolution.wanted_packages(report) is None


def test_the_face_recognition_models_wheel_is_built_from_the_installed_version():
    installed = [{"name": "face_recognition_models", "version": "0.3.0"}]
    assert resolution.face_recognition_models_requirement(installed) == "face-recognition-models==0.3.0"
    assert resolution.face_recognition_models_requirement([]) == "face-recognition-models>=0.3"


# --- the apt mirror for debootstrap -----------------------------------------------------------------

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
"""


def test_the_mirror_is_the_first_http_one_for_the_suite():
    assert deb822_mirror(DEB822, "bookworm") == "http://deb.debian.org/debian"
    assert deb822_mirror(DEB822, "bookworm-security") == "http://deb.debian.org/debian-security"
    assert deb822_mirror("URIs: file:/srv/mirror https://mirror.example/debian\nSuites: bookworm\n", "bookworm") == (
        "https://mirror.example/debian"
    )
    assert deb822_mirror(DEB822, "trixie") is None
    one_line = (
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
    )
    assert one_line_mirror(one_line, "bookworm") == "http://m.example/debian"
    assert one_line_mirror("deb cdrom:[Debian]/ bookworm main\n", "bookworm") is None


def test_deb822_sources_come_before_one_line_lists_and_the_default_after_both(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    assert apt_mirror("bookworm", tmp_path) == DEFAULT_MIRROR
    (tmp_path / "sources.list").write_text("deb http://one-line.example/debian bookworm main\n")
    assert apt_mirror("bookworm", tmp_path) == "http://one-line.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert apt_mirror("bookworm", tmp_path) == "http://deb.debian.org/debian"


# --- the steps both sides run ----------------------------------------------------------------------


def test_the_steps_prepare_the_models_from_another_box_only_when_given_one():
    host = dict(steps.plan("/venv/bin/edge-daemon", Path("/w/x86_64"), Path("/shared"), Path("/w/demo"), None))
    arm = dict(steps.plan("/opt/ed", Path("/w/aarch64"), Path("/shared"), Path("/w/demo"), Path("/w/host-models")))
    assert host["models_prepare"] == ["/venv/bin/edge-daemon", "models", "prepare"]
    assert arm["models_prepare"] == ["/opt/ed", "models", "prepare", "--from", "/w/host-models"]
    assert STEP_NAMES == [
        "models_prepare", "models_list", "gallery_build", "gallery_list",
        "recognize", "demo_gallery", "demo_mp4", "demo_lossless",
    ]  # fmt: skip
    assert arm["recognize"][-1] == "/shared/data/photos/group/two_people.jpg"
    assert arm["demo_lossless"] == ["/opt/ed", "run", "--config", "/w/aarch64/demo_lossless.toml"]


def test_the_demo_configuration_reads_every_frame_and_decides_on_frames_alone(tmp_path):
    out = tmp_path / 'with "quotes"'
    config = tomllib.loads(steps.demo_config(out, "demo_lossless", tmp_path / "demo" / "clip-ffv1.mkv"))
    assert config["cameras"] == [{"name": "demo", "url": str(tmp_path / "demo" / "clip-ffv1.mkv"), "realtime": False}]
    assert config["events"]["jsonl"] == str(out / "demo_lossless-events.jsonl")
    assert config["gallery"]["path"] == str(out / "demo-gallery")
    assert config["history"] == {"enabled": False}
    assert config["tracker"] == {"max_missed_s": 3600, "max_attempts": 1}
    assert config["detector"] == {"queue_max_age_s": 60}


def test_each_step_is_recorded_with_its_exit_status_as_a_shell_gives_it(tmp_path, monkeypatch):
    outcomes = iter([0, -9, OSError("No such file or directory: 'edge-daemon'")])

    def fake_run(command, stdout, stderr):
        outcome = next(outcomes)
        if isinstance(outcome, OSError):
            raise outcome
        stdout.write(b"done\n")
        return subprocess.CompletedProcess(command, outcome)

    monkeypatch.setattr(steps.subprocess, "run", fake_run)
    records = [steps.run_step(tmp_path, name, ["edge-daemon", name]) for name in ("models_list", "demo_mp4", "recognize")]
    assert [record["rc"] for record in records] == [0, 137, 127]
    assert [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()] == records
    assert (tmp_path / "models_list.out").read_text() == "done\n"
    assert "No such file" in (tmp_path / "recognize.err").read_text()


def frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as clip:
        return [frame.to_ndarray(format="bgr24") for frame in clip.decode(video=0)]


def test_the_lossless_copy_holds_the_frames_as_decoded_here(tmp_path):
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as target:
        stream = target.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for shade in (30, 120, 210):
            image = np.full((32, 32, 3), shade, np.uint8)
            image[8:24, 8:24] = (255 - shade, shade // 2, 90)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                target.mux(packet)
        for packet in stream.encode():
            target.mux(packet)
    lossless_copy(clip, tmp_path / "clip-ffv1.mkv")
    decoded, copied = frames(clip), frames(tmp_path / "clip-ffv1.mkv")
    assert len(copied) == len(decoded) == 3
    assert all(np.array_equal(a, b) for a, b in zip(decoded, copied))


# --- the comparison --------------------------------------------------------------------------------

FACES = [
    {"bbox": [120.0, 40.0, 60.0, 70.0], "score": 0.71, "identity": "biden"},
    {"bbox": [10.0, 30.0, 64.0, 72.0], "score": 0.66, "identity": "obama"},
]
EVENTS = [
    {"type": "recognized", "track_id": 1, "identity": "alice", "score": 0.8, "bbox": [1, 2, 30, 30], "ts": "a"},
    {"type": "unknown", "track_id": 2, "identity": None, "score": 0.2, "bbox": [50, 2, 30, 30], "ts": "b"},
    {"type": "ended", "track_id": 1, "identity": "alice", "score": 0.8, "bbox": [90, 2, 30, 30], "ts": "c"},
    {"type": "ended", "track_id": 2, "identity": None, "score": 0.2, "bbox": [99, 2, 30, 30], "ts": "d"},
]


def write_side(work: Path, side: str, faces=FACES, events=EVENTS, identities=("alice", "bob"), failed_step=None) -> Path:
    """One side's step results as steps.py leaves them."""
    out = work / side
    out.mkdir(parents=True)
    records = [{"step": name, "rc": 1 if name == failed_step else 0, "seconds": 1.5} for name in STEP_NAMES]
    (out / "steps.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    if failed_step:
        (out / f"{failed_step}.err").write_text("Traceback ...\nRuntimeError: no models\n")
    (out / "gallery_list.out").write_text(json.dumps({"version": "v1", "identities": {name: 3 for name in identities}}))
    answers = [{"image": "/shared/data/photos/group/obama_and_biden.jpg", "faces": faces}, {"image": "/s/empty.jpg", "faces": []}]
    (out / "recognize.out").write_text("".join(json.dumps(answer) + "\n" for answer in answers))
    for clip in ("demo_mp4", "demo_lossless"):
        (out / f"{clip}-events.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))
    return out


def results(work: Path) -> dict[str, Check]:
    found, _ = compare(work, TOLERANCE)
    return {check.name: check for check in found}


def failed(work: Path) -> list[str]:
    return [name for name, check in results(work).items() if check.result == "FAIL"]


def nudged(items: list[dict], score: float = 0.0, box: float = 0.0) -> list[dict]:
    return [{**item, "score": item["score"] + score, "bbox": [value + box for value in item["bbox"]]} for item in items]


def test_results_that_agree_within_tolerance_pass(tmp_path):
    write_side(tmp_path, "x86_64")
    write_side(tmp_path, "aarch64", faces=nudged(FACES, score=1.5e-3, box=0.5), events=nudged(EVENTS, score=-1e-3))
    found, details = compare(tmp_path, TOLERANCE)
    assert [check.result for check in found] == ["PASS"] * len(found)
    rows = {check.name: check for check in found}
    assert set(rows) >= {f"step {name}" for name in STEP_NAMES}
    assert rows["recognize obama_and_biden.jpg"].x86_64 == "2 faces: obama,biden"  # left to right
    assert rows["recognize: images answered"].aarch64 == "2 images"
    assert rows["demo clip, lossless copy: decisions"].x86_64 == "alice,unknown"
    assert rows["largest differences (photos, lossless clip)"].aarch64 == "score 1.50e-03, box 0.500 px over 6 faces and events"
    assert details["demo_x86_64"] == "1:recognized:alice; 1:ended; 2:unknown:-; 2:ended"
    assert details["worst_score"] == pytest.approx(1.5e-3)


def test_a_score_beyond_tolerance_fails_the_photo_and_the_largest_difference(tmp_path):
    write_side(tmp_path, "x86_64")
    write_side(tmp_path, "aarch64", faces=nudged(FACES, score=3e-3))
    assert failed(tmp_path) == ["recognize obama_and_biden.jpg", "largest differences (photos, lossless clip)"]
    assert "scores within 3.0e-03" in results(tmp_path)["recognize obama_and_biden.jpg"].aarch64


def test_a_box_beyond_tolerance_fails(tmp_path):
    write_side(tmp_path, "x86_64")
    write_side(tmp_path, "aarch64", events=nudged(EVENTS, box=1.5))
    assert failed(tmp_path) == ["demo clip, lossless copy: decisions", "largest differences (photos, lossless clip)"]


def test_the_original_clip_is_held_to_decisions_only_not_to_scores(tmp_path):
    write_side(tmp_path, "x86_64")
    aarch64 = write_side(tmp_path, "aarch64")
    (aarch64 / "demo_mp4-events.jsonl").write_text("".join(json.dumps(event) + "\n" for event in nudged(EVENTS, score=0.05)))
    assert failed(tmp_path) == []


def test_another_identity_fails_with_what_aarch64_decided(tmp_path):
    write_side(tmp_path, "x86_64")
    other = [{**event, "identity": "bob"} if event["track_id"] == 1 else event for event in EVENTS]
    write_side(tmp_path, "aarch64", faces=[{**FACES[0], "identity": None}, FACES[1]], events=other)
    rows = results(tmp_path)
    assert rows["recognize obama_and_biden.jpg"].aarch64.startswith("2 faces: obama,unknown")
    assert rows["demo clip.mp4: tracks and identities"].aarch64.startswith("1:recognized:bob; 1:ended; 2:unknown:-")
    assert rows["largest differences (photos, lossless clip)"].result == "PASS"


def test_other_gallery_identities_fail(tmp_path):
    write_side(tmp_path, "x86_64")
    write_side(tmp_path, "aarch64", identities=("alice",))
    assert results(tmp_path)["gallery identities (hamilton)"] == Check(
        "gallery identities (hamilton)", "FAIL", "2 identities", "['alice']"
    )


def test_a_failed_or_missing_step_fails_with_its_last_error_line(tmp_path):
    write_side(tmp_path, "x86_64")
    aarch64 = write_side(tmp_path, "aarch64", failed_step="models_prepare")
    records = (aarch64 / "steps.jsonl").read_text().splitlines()
    (aarch64 / "steps.jsonl").write_text("\n".join(records[:-1]) + "\n")  # demo_lossless never ran
    (aarch64 / "demo_lossless-events.jsonl").unlink()
    rows = results(tmp_path)
    assert rows["step models_prepare"].aarch64 == "rc=1 1.5s RuntimeError: no models"
    assert rows["step demo_lossless"].aarch64 == "rc=missing -s"
    assert rows["demo clip, lossless copy: decisions"].result == "FAIL"


def test_a_malformed_result_file_fails_its_check_with_the_reason(tmp_path):
    write_side(tmp_path, "x86_64")
    aarch64 = write_side(tmp_path, "aarch64")
    (aarch64 / "recognize.out").write_text('{"image": "/s/obama_and_biden.jpg", "faces": [\n')
    (aarch64 / "demo_mp4-events.jsonl").write_text('{"type": "recognized", "identity": "alice"}\n')  # no track_id
    rows = results(tmp_path)
    assert rows["recognize"].result == "FAIL"
    assert rows["recognize"].aarch64.startswith("malformed results (MalformedResult: aarch64/recognize.out line 1:")
    assert rows["demo clip.mp4: tracks and identities"].aarch64 == "malformed results (KeyError: 'track_id')"
    assert rows["largest differences (photos, lossless clip)"].aarch64.endswith("over 4 faces and events")  # no photos


def test_nothing_recorded_on_x86_64_fails(tmp_path):
    (tmp_path / "x86_64").mkdir()
    write_side(tmp_path, "aarch64")
    rows = results(tmp_path)
    assert rows["steps"].result == "FAIL"
    assert rows["gallery identities (hamilton)"].result == "FAIL"
    assert rows["recognize: images answered"].result == "FAIL"


def test_the_command_line_appends_the_comparison_and_the_summary_exits_with_the_verdict(tmp_path, capsys):
    write_side(tmp_path, "x86_64")
    write_side(tmp_path, "aarch64", faces=nudged(FACES, score=5e-3))
    checks_path = tmp_path / "checks.tsv"
    checks_path.write_text("arm64 rootfs\tPASS\t-\tcached (bookworm)\n")
    assert main(["compare", str(tmp_path), "--score-tol", "2e-3", "--box-tol", "1", "--checks", str(checks_path)]) == 0
    assert capsys.readouterr().out.strip() == "1:recognized:alice; 1:ended; 2:unknown:-; 2:ended"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rows"][0] == ["step models_prepare", "PASS", "rc=0 1.5s", "rc=0 1.5s"]
    assert main(["summary", str(checks_path), "--seconds", "300", "--work", str(tmp_path)]) == 1
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(f"test-arm64: FAIL: 2 of {len(summary['rows']) + 1} checks failed (300 s; details in {tmp_path})")
    )
