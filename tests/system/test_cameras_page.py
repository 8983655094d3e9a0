"""The cameras view in a real headless browser: a running file camera's latest frame loads, and its
faces are listed with their widths and verdicts, a face under ``min_face_px`` with the gate that
refused it; a name that is no camera's is not found, and nothing is shown without the token."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from edge_daemon.config import Settings
from tests.support.paths import HAMILTON_CLIP, need
from tests.support.waiting import free_port, wait_until
from tests.system.test_review_page import TOKEN, browser, status_of

pytestmark = pytest.mark.slow
MIN_FACE_PX = 60  # between the clip's small faces (about 40-58 px) and its large ones (about 75-90 px)

# The faces table of every camera section, and whether each frame picture has loaded, read at once
# (the page refreshes itself).
READ_PAGE = """
return {
  faces: [...document.querySelectorAll('tr.face')].map(row => ({
    width: row.querySelector('.width').textContent,
    gate: row.querySelector('.gate').textContent,
    verdict: row.querySelector('.verdict').textContent,
  })),
  images: [...document.querySelectorAll('section.camera img')].map(img => ({
    loaded: img.complete && img.naturalWidth > 0, alt: img.alt,
  })),
};
"""


def test_the_cameras_view_shows_a_running_camera_s_faces_with_widths_gates_and_verdicts(tmp_path, hamilton_gallery):
    from edge_daemon.service.runner import DaemonRunner

    (tmp_path / "token").write_text(TOKEN)
    port = free_port()
    runner = DaemonRunner(Settings(
        cameras=[{"name": "stage", "url": str(need(HAMILTON_CLIP)), "realtime": True, "loop": True}],
        detector={"min_face_px": MIN_FACE_PX},
        gallery={"path": str(hamilton_gallery)},
        history={"path": str(tmp_path / "history")},
        review={"enabled": True, "token_file": str(tmp_path / "token")},
        service={"metrics_port": port},
        events={"jsonl": ""},
    ))
    runner.start()
    base = f"http://127.0.0.1:{port}"
    cookie = f"edge_review={TOKEN}"
    driver = None
    try:
        assert status_of(f"{base}/review/cameras") == 401
        assert status_of(f"{base}/review/cameras/stage.jpg") == 401
        assert status_of(f"{base}/review/cameras/nowhere.jpg", cookie=cookie) == 404
        assert status_of(f"{base}/review/cameras/..%2F..%2Fetc%2Fpasswd.jpg", cookie=cookie) == 404
        assert status_of(f"{base}/review/cameras/stage.png", cookie=cookie) == 404

        driver = browser(tmp_path / "profile")
        driver.set_window_size(1100, 1450)
        driver.get(f"{base}/review?token={TOKEN}")
        seen: dict[str, list[dict]] = {"recognized": [], "refused": []}

        def a_page_shows_both() -> bool:
            """Load the page; True when it lists a recognised face and one refused for its size."""
            driver.get(f"{base}/review/cameras")
            wait_until(lambda: all(image["loaded"] for image in driver.execute_script(READ_PAGE)["images"]), 5)
            page = driver.execute_script(READ_PAGE)
            recognized = [face for face in page["faces"] if face["verdict"].startswith("recognized")]
            refused = [face for face in page["faces"] if face["gate"] == "smaller than min_face_px"]
            seen["recognized"] += recognized
            seen["refused"] += refused
            return bool(recognized and refused)

        wait_until(a_page_shows_both, 120, interval_s=1.0)  # the screenshot below shows both where a page did
        assert seen["recognized"] and seen["refused"], driver.page_source[:3000]
        assert all(re.fullmatch(r"\d+", face["width"]) for face in seen["recognized"] + seen["refused"])
        assert all(int(face["width"]) >= MIN_FACE_PX for face in seen["recognized"])
        assert all(int(face["width"]) < MIN_FACE_PX * 1.25 for face in seen["refused"])  # its height may be the side under
        page = driver.execute_script(READ_PAGE)
        assert page["images"] and all(image["loaded"] and "stage" in image["alt"] for image in page["images"])
        assert f"It is {MIN_FACE_PX} px on this box" in driver.find_element("tag name", "body").text  # min_face_px explained
        screenshots = Path(os.environ.get("EDGE_SCREENSHOTS") or tmp_path)
        screenshots.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshots / "review-cameras.png"))
    finally:
        if driver is not None:
            driver.quit()
        runner.request_stop()
        runner.shutdown()
