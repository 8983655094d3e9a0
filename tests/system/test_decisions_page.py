"""The recent decisions page and reprocessing in a real headless browser (Debian's Chromium and its
driver), on a real run of the Hamilton clip with an empty gallery: Lin-Manuel Miranda added
afterwards from his gallery photos on the people page, his earlier tracks named in the history (at
once, and nothing more to change when Reprocess is pressed) and listed; the filters; "this is …" adding a face to the gallery; bad filters and forms refused
with the gallery unchanged; no event sent again."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from pathlib import Path

import pytest

from edge_daemon.config import Settings
from edge_daemon.recognition.enrolment import identity_from_folder
from edge_daemon.recognition.gallery import Gallery
from tests.support.paths import HAMILTON, HAMILTON_CLIP, need
from tests.support.waiting import free_port, wait_until
from tests.system.test_review_page import browser, status_of

pytestmark = pytest.mark.slow
TOKEN = "decisions-token-for-the-test-0123456789"
LIN = HAMILTON / "gallery" / "lin_manuel_miranda"


def gallery_files(path: Path) -> dict[str, str]:
    """Every file of the gallery directory and its hash: a change to any shows."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("EDGE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_reprocessing_names_the_earlier_tracks_of_a_person_enrolled_later(tmp_path, default_embedder):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from edge_daemon.service.runner import DaemonRunner

    (tmp_path / "token").write_text(TOKEN)
    gallery_path = tmp_path / "gallery"
    Gallery.for_embedder(default_embedder).save(gallery_path)
    events_file = tmp_path / "events.jsonl"
    port = free_port()
    runner = DaemonRunner(Settings(
        cameras=[{"name": "stage", "url": str(need(HAMILTON_CLIP)), "realtime": False}],
        gallery={"path": str(gallery_path)},
        history={"path": str(tmp_path / "history")},
        review={"enabled": True, "token_file": str(tmp_path / "token")},
        service={"metrics_port": port},
        events={"jsonl": str(events_file)},
    ))
    daemon, history = runner.daemon, runner.daemon.history
    runner.start()
    base = f"http://127.0.0.1:{port}"
    cookie = f"edge_review={TOKEN}"
    shots = screenshots(tmp_path)
    driver = None
    try:
        assert wait_until(lambda: not daemon.cameras[0].is_alive(), 180)

        def every_track_ended() -> bool:  # the history is written before the events, so all are in it then
            events = [json.loads(line) for line in events_file.read_text().splitlines()] if events_file.exists() else []
            seen = {(event["camera"], event["track_id"]) for event in events}
            return bool(seen) and seen == {(event["camera"], event["track_id"]) for event in events if event["type"] == "ended"}

        assert wait_until(every_track_ended, 60), events_file.read_text()[-2000:]
        tracks = history.tracks(daemon.embedder.version)
        assert tracks and all(track.identity is None for track in tracks)  # nobody was enrolled
        assert status_of(f"{base}/review/decisions") == 401

        driver = browser(tmp_path / "profile")
        driver.set_window_size(1280, 960)
        driver.get(f"{base}/review?token={TOKEN}")
        driver.get(f"{base}/review/decisions")
        rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert rows, driver.page_source[:2000]
        images = driver.find_elements(By.CSS_SELECTOR, "tbody img")
        assert images and all(driver.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
        assert all(img.get_attribute("alt") for img in images)
        driver.save_screenshot(str(shots / "review-decisions.png"))

        # Lin-Manuel Miranda added from his gallery photos on the people page: the gallery change
        # reprocesses the history at once. Reprocess pressed on the decisions page then finds
        # nothing more to change, and the page lists what was revised.
        name = identity_from_folder(LIN.name)
        events_before = events_file.read_bytes()
        driver.get(f"{base}/review/people")
        add = driver.find_element(By.CSS_SELECTOR, "form[action='/review/people/add']")
        add.find_element(By.NAME, "name").send_keys(name)
        add.find_element(By.NAME, "photos").send_keys("\n".join(str(p) for p in sorted(need(LIN).iterdir())))
        add.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        def named_now():
            return [t for t in history.tracks(daemon.embedder.version) if t.revision and t.revision.identity == name]

        assert wait_until(named_now, 60), [(t.track_ref, t.revision) for t in history.tracks(daemon.embedder.version)]
        assert wait_until(lambda: "/review/people" in driver.current_url and name in driver.page_source, 10)
        named = named_now()

        driver.get(f"{base}/review/decisions")
        driver.find_element(By.XPATH, "//button[text()='Reprocess']").click()
        assert wait_until(lambda: "Reprocessed the" in driver.page_source, 10), driver.page_source[:2000]
        assert "0 changed" in driver.find_element(By.CSS_SELECTOR, ".notice").text
        for track in named:  # named now, beside what was decided then
            assert track.identity is None and track.verdict in ("unknown", "uncertain")
            assert track.revision.verdict == "recognized" and track.revision.gallery_version == daemon.matcher.gallery.version
            listed = driver.find_element(By.ID, f"track-{track.track_ref}")
            assert name in listed.text and track.verdict in listed.text
        listed_images = driver.find_elements(By.CSS_SELECTOR, "tbody img")
        assert listed_images and all(driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in listed_images)
        driver.save_screenshot(str(shots / "review-reprocess.png"))
        assert events_file.read_bytes() == events_before  # no event sent again

        # The filters, from the page's own form.
        driver.get(f"{base}/review/decisions")
        Select(driver.find_element(By.NAME, "camera")).select_by_value("stage")
        Select(driver.find_element(By.NAME, "person")).select_by_value(name)
        driver.find_element(By.XPATH, "//button[text()='Show']").click()
        assert wait_until(lambda: "person=" in driver.current_url, 10)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(driver.current_url).query)
        assert query == {"camera": ["stage"], "person": [name]}  # the verdict left at "any verdict"
        rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert rows and all(f"now: {name}" in row.text for row in rows)
        assert len(rows) == min(100, sum(1 for row in history.decisions(person=name, limit=1000)))
        driver.get(f"{base}/review/decisions?verdict=recognized")
        assert "No decisions match." in driver.page_source  # the gallery was empty while the clip ran
        driver.get(f"{base}/review/decisions?camera=stage&verdict=unknown")
        rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert rows and all(row.find_elements(By.TAG_NAME, "td")[1].text.startswith("unknown") for row in rows)

        # "This is …" on an unknown face: it joins the person in the gallery, the filters are kept.
        rows_before = len(Gallery.load(gallery_path).labels)
        form = driver.find_element(By.CSS_SELECTOR, "form[action='/review/decisions/name']")
        face_id = int(form.find_element(By.NAME, "face").get_attribute("value"))
        form.find_element(By.NAME, "name").send_keys(name)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert wait_until(lambda: "Done: the face was added" in driver.page_source, 10), driver.page_source[:2000]
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(driver.current_url).query) == {
            "camera": ["stage"], "verdict": ["unknown"], "done": ["named"]
        }
        gallery = Gallery.load(gallery_path)
        assert len(gallery.labels) == rows_before + 1 and gallery.sources[-1] == f"history:{face_id}"
        assert daemon.matcher.gallery.version == gallery.version  # the running daemon uses it
        assert history.face(face_id).enrolled_as == name

        # Bad filters and forms: refused with the reason, the gallery untouched.
        before = gallery_files(gallery_path)
        for bad, reason in (("camera=nowhere", "there is no camera"), ("verdict=maybe", "the verdict must be one of"),
                            ("person=a%2Fb", "path separator"), ("done=%3Cscript%3E", "unknown outcome")):
            driver.get(f"{base}/review/decisions?{bad}")
            assert wait_until(lambda: reason in driver.page_source and "Not done" in driver.title, 10), bad
            assert status_of(f"{base}/review/decisions?{bad}", cookie=cookie) == 400

        driver.get(f"{base}/review/decisions?verdict=unknown")
        form = driver.find_element(By.CSS_SELECTOR, "form[action='/review/decisions/name']")
        form.find_element(By.NAME, "name").send_keys("../../etc")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert wait_until(lambda: "path separator" in driver.page_source, 10), driver.page_source[:2000]
        back = driver.find_element(By.LINK_TEXT, "Back").get_attribute("href")
        assert back.endswith("/review/decisions?verdict=unknown")

        driver.get(f"{base}/review/decisions")
        csrf = driver.find_element(By.NAME, "csrf").get_attribute("value")
        forms = {
            f"csrf={csrf}&face=abc&name=x": 400,
            f"csrf={csrf}&face=999999&name=x": 400,
            f"csrf={csrf}&face={face_id}&name=x": 400,  # already enrolled
            f"csrf={csrf}&face={face_id}": 400,  # no name
            f"csrf={csrf}&face=1&name=x&camera=nowhere": 400,
            f"csrf={csrf}&face=1&name=%3Cb%3E%00": 400,
            f"face=1&name=x": 403,  # no CSRF token
        }
        for body, expected in forms.items():
            assert status_of(f"{base}/review/decisions/name", body.encode(), cookie) == expected, body
        assert status_of(f"{base}/review/decisions/reprocess", b"", cookie) == 403
        assert status_of(f"{base}/review/decisions/name", f"csrf={csrf}&face=1&name=x".encode()) == 401  # no token
        assert gallery_files(gallery_path) == before
        assert events_file.read_bytes() == events_before
    finally:
        if driver is not None:
            driver.quit()
        runner.request_stop()
        runner.shutdown()
