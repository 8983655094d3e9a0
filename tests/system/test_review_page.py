"""The review page in a real headless browser (Debian's Chromium and its driver): refused without
the token, the unknown groups of a real run shown with their crops, a group enrolled by a form."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request

import pytest

from edge_daemon.config import Settings
from edge_daemon.recognition.gallery import Gallery
from tests.support.paths import HAMILTON_CLIP, need
from tests.support.waiting import free_port, wait_until

pytestmark = pytest.mark.slow
TOKEN = "review-token-for-the-test-0123456789"


def browser(profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("Chromium is not installed: apt-get install chromium chromium-driver (scripts/test.sh does)")
    options = Options()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def status_of(url: str, data: bytes | None = None, cookie: str | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_review_page_enrols_a_group_of_unknown_faces(tmp_path, default_embedder):
    from selenium.webdriver.common.by import By

    from edge_daemon.service.runner import DaemonRunner

    (tmp_path / "token").write_text(TOKEN)
    Gallery.for_embedder(default_embedder).save(tmp_path / "gallery")
    port = free_port()
    runner = DaemonRunner(Settings(
        cameras=[{"name": "stage", "url": str(need(HAMILTON_CLIP)), "realtime": False}],
        gallery={"path": str(tmp_path / "gallery")},
        history={"path": str(tmp_path / "history")},
        review={"enabled": True, "token_file": str(tmp_path / "token")},
        service={"metrics_port": port},
        events={"jsonl": ""},
    ))
    daemon = runner.daemon
    runner.start()
    base = f"http://127.0.0.1:{port}"
    driver = None
    try:
        assert wait_until(lambda: not daemon.cameras[0].is_alive(), 180)
        assert wait_until(lambda: len(daemon.history.faces()) >= 3 and daemon.embed_worker._faces.empty(), 60)
        assert status_of(f"{base}/review") == 401
        assert status_of(f"{base}/review?token=wrong") == 401
        assert status_of(f"{base}/review/crop/1") == 401

        driver = browser(tmp_path / "profile")
        driver.get(f"{base}/review?token={TOKEN}")
        groups = driver.find_elements(By.CSS_SELECTOR, "section.cluster")
        assert groups, driver.page_source[:2000]
        images = driver.find_elements(By.CSS_SELECTOR, "section.cluster img")
        assert images and all(driver.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
        driver.save_screenshot(str(tmp_path / "review.png"))
        face_ids = groups[0].find_element(By.NAME, "faces").get_attribute("value").split(",")
        groups[0].find_element(By.NAME, "name").send_keys("performer")
        groups[0].find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert wait_until(lambda: "Done: enrolled" in driver.page_source, 10)

        gallery = Gallery.load(tmp_path / "gallery")
        assert gallery.identities() == {"performer": len(face_ids)}
        assert daemon.matcher.gallery.version == gallery.version  # the running daemon uses it
        cookie = f"edge_review={TOKEN}"
        assert status_of(f"{base}/review/enrol", f"name=x&faces={face_ids[0]}".encode(), cookie) == 403  # no CSRF token
    finally:
        if driver is not None:
            driver.quit()
        runner.request_stop()
        runner.shutdown()
