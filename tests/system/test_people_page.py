"""The people page against a running daemon (in this process, a file camera looping the part of the
Hamilton clip where Lin-Manuel Miranda walks through): in a real headless Chromium, add him from
three photos and see the daemon name him within 5 s, rename him, remove him; and, by plain HTTP,
every kind of bad input refused with its reason and the gallery left as it was; and, on a box
sharing its gallery over MQTT, each change reaching another box."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import cv2
import pytest
from urllib3 import encode_multipart_formdata

from edge_daemon.config import Settings
from edge_daemon.recognition.gallery import Gallery
from tests.support.gallery_sync import PREFIX, start_sync
from tests.support.paths import HAMILTON, HAMILTON_CLIP, need
from tests.support.waiting import free_port, wait_until
from tests.system.test_review_page import browser

pytestmark = pytest.mark.slow
TOKEN = "people-token-for-the-test-0123456789"
COOKIE = f"edge_review={TOKEN}"
# Frames of the clip where he is the only face in view (about 4 s at 30 fps), two of them as photos,
# and one of the cast on stage (several faces: refused).
WALK_FRAMES = range(90, 211)
PHOTO_FRAMES = (120, 180)
CAST_FRAME = 230
MAX_UPLOAD_MB = 2
DECISIONS = {"recognized", "unknown", "updated"}


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """The walk as a clip of its own, three photos of him (his gallery photo and two stills) and a
    still of the whole cast."""
    clip = need(HAMILTON_CLIP)
    folder = tmp_path_factory.mktemp("footage")
    capture, frames = cv2.VideoCapture(str(clip)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(folder / "walk.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (width, height))
    for index in WALK_FRAMES:
        writer.write(frames[index])
    writer.release()
    photos = [need(HAMILTON / "gallery" / "lin_manuel_miranda" / "lin-manuel-miranda.png")]
    for index in PHOTO_FRAMES:
        photos.append(folder / f"still-{index}.jpg")
        cv2.imwrite(str(photos[-1]), frames[index])
    cv2.imwrite(str(folder / "cast.jpg"), frames[CAST_FRAME])
    return folder / "walk.mp4", photos, folder / "cast.jpg"


@pytest.fixture(scope="module")
def served(tmp_path_factory, footage, default_embedder):
    """A running daemon with the review pages, an empty gallery and its events in a JSON-lines file."""
    from edge_daemon.service.runner import DaemonRunner

    folder = tmp_path_factory.mktemp("people")
    (folder / "token").write_text(TOKEN)
    Gallery.for_embedder(default_embedder).save(folder / "gallery")
    port = free_port()
    runner = DaemonRunner(Settings(
        cameras=[{"name": "stage", "url": str(footage[0]), "loop": True}],
        gallery={"path": str(folder / "gallery")},
        history={"path": str(folder / "history")},
        review={"enabled": True, "token_file": str(folder / "token"), "max_upload_mb": MAX_UPLOAD_MB},
        service={"metrics_port": port},
        events={"jsonl": str(folder / "events.jsonl")},
    ))
    runner.start()
    try:
        yield runner, f"http://127.0.0.1:{port}", folder
    finally:
        runner.request_stop()
        runner.shutdown()


def decisions(folder: Path) -> list[dict]:
    path = folder / "events.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [event for event in map(json.loads, lines) if event["type"] in DECISIONS]


def made_with(folder: Path, version: str) -> list[dict]:
    """The decisions the daemon made with this gallery version."""
    return [event for event in decisions(folder) if event["gallery_version"] == version]


def screenshot_dir(tmp_path: Path) -> Path:
    chosen = os.environ.get("EDGE_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path


def test_a_person_added_in_the_browser_is_recognised_renamed_and_removed(served, footage, tmp_path):
    from selenium.webdriver.common.by import By

    runner, base, folder = served
    gallery_dir = folder / "gallery"
    assert wait_until(lambda: decisions(folder), 60), "the camera made no decision"
    assert all(event["identity"] is None for event in decisions(folder))  # nobody is enrolled yet

    driver = browser(tmp_path / "profile")
    try:
        driver.set_window_size(1000, 1100)
        driver.get(f"{base}/review?token={TOKEN}")
        driver.get(f"{base}/review/people")
        assert "0 people enrolled" in driver.page_source
        add = driver.find_element(By.CSS_SELECTOR, "form[action='/review/people/add']")
        assert add.get_attribute("enctype") == "multipart/form-data"
        add.find_element(By.NAME, "name").send_keys("Lin-Manuel")
        add.find_element(By.NAME, "photos").send_keys("\n".join(str(photo) for photo in [*footage[1], footage[2]]))
        clicked = time.monotonic()
        add.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert wait_until(lambda: "3 of 4 photos added to Lin-Manuel" in driver.page_source, 30), driver.page_source[:3000]
        added_at = time.monotonic()
        assert len(re.findall(r"quality \d\.\d\d", driver.page_source)) == 3
        assert re.search(r"cast.jpg</td><td></td><td>refused: \d+ faces found, expected one", driver.page_source)
        images = driver.find_elements(By.CSS_SELECTOR, "table img")
        assert len(images) == 3 and all(driver.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
        driver.save_screenshot(str(screenshot_dir(tmp_path) / "review-people-added.png"))

        added = Gallery.load(gallery_dir)
        assert added.identities() == {"Lin-Manuel": 3}
        assert runner.daemon.matcher.gallery.version == added.version  # taken at once, no restart
        assert wait_until(lambda: any(e["identity"] == "Lin-Manuel" for e in made_with(folder, added.version)), 5), (
            made_with(folder, added.version))
        print(f"named {time.monotonic() - added_at:.1f} s after the gallery changed, "
              f"{time.monotonic() - clicked:.1f} s after the click")

        driver.get(f"{base}/review/people")
        person = driver.find_element(By.CSS_SELECTOR, "section[aria-label='Lin-Manuel']")
        assert "3 photos" in person.text and "last seen" in person.text and "by stage, score" in person.text
        photos = person.find_elements(By.CSS_SELECTOR, ".faces img")
        assert [img.get_attribute("alt") for img in photos] == [f"photo {n} of Lin-Manuel" for n in (1, 2, 3)]
        driver.save_screenshot(str(screenshot_dir(tmp_path) / "review-people.png"))

        rename = person.find_element(By.CSS_SELECTOR, "form[action='/review/people/rename']")
        rename.find_element(By.NAME, "name").send_keys("Lin-Manuel Miranda")
        rename.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert wait_until(lambda: "Done: the person was renamed" in driver.page_source, 10)
        renamed = Gallery.load(gallery_dir)
        assert renamed.identities() == {"Lin-Manuel Miranda": 3}
        assert wait_until(lambda: made_with(folder, renamed.version), 10)
        assert made_with(folder, renamed.version)[0]["identity"] == "Lin-Manuel Miranda", made_with(folder, renamed.version)

        person = driver.find_element(By.CSS_SELECTOR, "section[aria-label='Lin-Manuel Miranda']")
        person.find_element(By.CSS_SELECTOR, "form[action='/review/people/remove-photo'] button").click()
        assert wait_until(lambda: "Done: the photo was removed" in driver.page_source, 10)
        assert Gallery.load(gallery_dir).identities() == {"Lin-Manuel Miranda": 2}

        person = driver.find_element(By.CSS_SELECTOR, "section[aria-label='Lin-Manuel Miranda']")
        remove = person.find_element(By.CSS_SELECTOR, "form[action='/review/people/remove']")
        remove.find_element(By.NAME, "confirm").click()
        remove.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert wait_until(lambda: "Done: the person was removed" in driver.page_source, 10)
        removed = Gallery.load(gallery_dir)
        assert removed.identities() == {} and sorted((gallery_dir / "faces").iterdir()) == []
        assert wait_until(lambda: made_with(folder, removed.version), 10)
        first = made_with(folder, removed.version)[0]
        assert first["identity"] is None and first["verdict"] in ("unknown", "uncertain"), first
    finally:
        driver.quit()


# --- bad input -------------------------------------------------------------------------------


def request(url: str, body: bytes | None = None, content_type: str | None = None, cookie: str | None = COOKIE):
    """(status, body text) of a GET, or a POST of ``body``."""
    headers = {"Cookie": cookie} if cookie else {}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def csrf_of(base: str) -> str:
    status, text = request(f"{base}/review/people")
    assert status == 200, text
    return re.search(r"name='csrf' value='([0-9a-f]+)'", text).group(1)


def upload(base: str, fields: dict, photos: list[tuple[str, bytes]], cookie: str | None = COOKIE):
    body, content_type = encode_multipart_formdata(
        [*fields.items(), *(("photos", (name, data, "application/octet-stream")) for name, data in photos)]
    )
    return request(f"{base}/review/people/add", body, content_type, cookie)


def decompression_bomb(side: int = 20_000) -> bytes:
    """A real PNG of ``side``×``side`` black pixels: a few hundred KB that decode to hundreds of MB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, row = zlib.compressobj(9), bytes(side + 1)  # filter byte 0 and a grey row
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def gallery_state(directory: Path) -> tuple[str, dict[str, str]]:
    """The gallery's version and the hash of every file in its directory."""
    files = {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
             for path in sorted(directory.rglob("*")) if path.is_file()}
    return Gallery.load(directory).version, files


def test_bad_input_is_refused_with_a_reason_and_changes_nothing(served, footage):
    runner, base, folder = served
    photo = footage[1][0].read_bytes()
    csrf = csrf_of(base)
    status, text = upload(base, {"csrf": csrf, "name": "Lin"}, [("lin.png", photo)])
    assert status == 200 and "1 of 1 photos added to Lin" in text, text  # someone to rename
    before = gallery_state(folder / "gallery")

    def post(path: str, fields: dict, cookie: str | None = COOKIE):
        return request(f"{base}{path}", "&".join(f"{k}={urllib.parse.quote(v)}" for k, v in fields.items()).encode(),
                       "application/x-www-form-urlencoded", cookie)

    bad = {
        "upload over the limit": (
            upload(base, {"csrf": csrf, "name": "Big"}, [("big.jpg", os.urandom((MAX_UPLOAD_MB << 20) + 1))]),
            413, f"over the limit of {MAX_UPLOAD_MB} MiB"),
        "decompression bomb": (
            upload(base, {"csrf": csrf, "name": "Bomb"}, [("bomb.png", decompression_bomb())]),
            400, "decompression bomb"),
        "not an image": (
            upload(base, {"csrf": csrf, "name": "Text"}, [("notes.jpg", b"these are not the pixels you want\n" * 50)]),
            400, "not a JPEG, PNG, WebP or BMP image"),
        "a name that is a path": (upload(base, {"csrf": csrf, "name": "../x"}, [("lin.png", photo)]), 400, "path separator"),
        "a name that is markup": (upload(base, {"csrf": csrf, "name": "<script>"}, [("lin.png", photo)]), 400, "markup"),
        "a rename to a path": (post("/review/people/rename", {"csrf": csrf, "person": "Lin", "name": "../x"}), 400,
                               "path separator"),
        "a forged form": (upload(base, {"csrf": "0" * 64, "name": "Forged"}, [("lin.png", photo)]), 403, "CSRF token"),
        "a form without its CSRF token": (post("/review/people/remove", {"person": "Lin", "confirm": "yes"}), 403,
                                          "CSRF token"),
        "an upload without the token": (upload(base, {"csrf": csrf, "name": "Anon"}, [("lin.png", photo)], cookie=None),
                                        401, "review token is needed"),
        "a removal without the token": (post("/review/people/remove", {"csrf": csrf, "person": "Lin", "confirm": "yes"},
                                             cookie=None), 401, "review token is needed"),
        "a face file by path": (request(f"{base}/review/people/face/0?face=../gallery.json"), 404, "not found"),
    }
    for what, ((status, text), expected_status, reason) in bad.items():
        assert status == expected_status and reason in text, (what, status, text[:2000])
        assert gallery_state(folder / "gallery") == before, what
    assert Gallery.load(folder / "gallery").identities() == {"Lin": 1}


# --- the fleet ---------------------------------------------------------------------------------


def test_changes_on_a_box_sharing_its_gallery_reach_the_other_boxes(broker, footage, tmp_path, default_embedder):
    """A box with gallery.sync = "mqtt": what the page changes is published, another box adopts each
    revision, and the box itself keeps its newer gallery rather than adopting its own revisions back."""
    from edge_daemon.service.runner import DaemonRunner

    (tmp_path / "token").write_text(TOKEN)
    Gallery.for_embedder(default_embedder).save(tmp_path / "north")
    port = free_port()
    runner = DaemonRunner(Settings(
        cameras=[{"name": "stage", "url": str(footage[0]), "loop": True}],
        gallery={"path": str(tmp_path / "north"), "sync": "mqtt"},
        mqtt={"url": broker.url, "prefix": PREFIX, "homeassistant": False},
        spool={"path": str(tmp_path / "spool.db")},
        history={"path": str(tmp_path / "history")},
        review={"enabled": True, "token_file": str(tmp_path / "token")},
        service={"metrics_port": port, "box": "north"},
        events={"jsonl": ""},
    ))
    south, adopted = start_sync(broker, tmp_path / "south", (default_embedder.name, default_embedder.version))
    runner.start()
    base = f"http://127.0.0.1:{port}"
    try:
        csrf = csrf_of(base)
        status, text = upload(base, {"csrf": csrf, "name": "Lin"}, [("lin.png", footage[1][0].read_bytes())])
        assert status == 200 and "1 of 1 photos added" in text, text
        added = Gallery.load(tmp_path / "north").version
        assert wait_until(lambda: south.current_version == added, 20)
        status, _ = request(f"{base}/review/people/rename", f"csrf={csrf}&person=Lin&name=Lin-Manuel".encode(),
                            "application/x-www-form-urlencoded")
        assert status == 200  # the redirect to the list, followed
        renamed = Gallery.load(tmp_path / "north")
        assert renamed.identities() == {"Lin-Manuel": 1}
        assert wait_until(lambda: south.current_version == renamed.version, 20)
        assert Gallery.load(tmp_path / "south").identities() == {"Lin-Manuel": 1}
        time.sleep(1.0)  # its own revisions came back from the broker meanwhile
        assert Gallery.load(tmp_path / "north").version == renamed.version == runner.daemon.matcher.gallery.version
        assert runner.daemon.gallery_sync.counters.get("adopted") == 0
        assert [item for item in runner.daemon.gallery_sync.counters.values if item.startswith("refused")] == []
    finally:
        south.close()
        runner.request_stop()
        runner.shutdown()
