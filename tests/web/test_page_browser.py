"""The preview page in Debian's headless Chromium (selenium) on a real run of
``single_face.mp4`` through the CLI: the video shows a face box, the timeline gains points,
and a burst mark appears (the clip has a smile burst around frames 16–71; it is looped).

The screenshot is saved in the test's tmp dir; with ``AFFECTSTREAM_PREVIEW_SCREENSHOT=PATH``
it is also copied there (docs/preview.png was made so).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from cli_helpers import cli_env
from web_helpers import free_port, wait_for

pytestmark = pytest.mark.e2e

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _require_chromium() -> None:
    """Skip with the packages to install; in CI (``CI`` set) fail, so nothing hides a gap."""
    missing = [p for p in (CHROMIUM, DRIVER) if not os.access(p, os.X_OK)]
    if not missing:
        return
    line = f"{', '.join(missing)} not found; apt-get install -y chromium chromium-driver"
    if os.environ.get("CI"):
        pytest.fail(line, pytrace=False)
    pytest.skip(line)


@pytest.fixture
def served(media_dir: Path, model_paths: dict[str, Path], tmp_path: Path) -> Iterator[str]:
    """``affectstream run --preview`` on the looped clip, in real time, until the test ends."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "affectstream", "run", "--source",
         str(media_dir / "single_face.mp4"), "--loop", "--max-seconds", "300",
         "--sink", f"jsonl:{tmp_path / 'run.jsonl'}", "--preview", f"127.0.0.1:{port}"],
        env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is None and httpx.get(f"{url}/healthz", timeout=5)
                 .json()["cameras"]["cam0"]["state"] == "running", 120,
                 "the run's preview to report a running camera")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert f"preview on {url}/" in err


@pytest.fixture
def browser() -> Iterator[Any]:
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1100", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _attr(driver: Any, css: str, name: str) -> str:
    return str(driver.find_element("css selector", css).get_attribute(name) or "")


def test_page_shows_face_box_timeline_and_burst(served: str, browser: Any,
                                                tmp_path: Path) -> None:
    browser.get(f"{served}/")
    assert browser.title == "affectstream — cam0"
    # (a) the annotated video has a face: the page mirrors the drawn boxes in the DOM
    wait_for(lambda: int(_attr(browser, "#video", "data-face-count") or 0) >= 1, 60,
             "#video[data-face-count] ≥ 1 (a face box in the annotated video)")
    # (b) the timeline gains points over a few seconds
    start = wait_for(lambda: int(_attr(browser, "#timeline", "data-points-total")), 60,
                     "the first emotion point on the timeline")
    wait_for(lambda: int(_attr(browser, "#timeline", "data-points-total")) > start, 60,
             f"the timeline to gain points beyond {start}")
    assert browser.find_elements("css selector", "#timeline svg polyline")
    # (c) a burst mark, with the burst's text on hover (an SVG <title>)
    wait_for(lambda: browser.find_elements("css selector", "#timeline .burst-mark"), 60,
             "a burst mark on the timeline")
    title = browser.execute_script(
        "return document.querySelector('#timeline .burst-mark title').textContent")
    assert "burst:" in title and len(title) > 15
    # the rest of the page is alive too
    assert browser.find_elements("css selector", "#emotions .emotion .bar")
    assert browser.find_elements("css selector", "#log li")
    assert _attr(browser, "#state", "data-state") == "running"
    assert "EU" in browser.find_element("css selector", "footer").text
    _check_screenshot(browser, tmp_path / "preview.png")


def _check_screenshot(browser: Any, path: Path) -> None:
    """The video area of a real screenshot has the face box's colour (retried: while a burst
    flashes, the box is amber instead)."""
    wait_for(lambda: _attr(browser, '[data-stat="fps"]', "textContent") != "–", 30,
             "the first stats message on the page")
    copy = os.environ.get("AFFECTSTREAM_PREVIEW_SCREENSHOT")
    if copy:  # a fuller timeline for the docs
        time.sleep(40)
    wait_for(lambda: _box_pixels(browser, path) > 200, 30,
             f"a screenshot ({path}) with the face box's colour in the video area")
    if copy:
        shutil.copyfile(path, copy)


def _box_pixels(browser: Any, path: Path) -> int:
    assert browser.save_screenshot(str(path))
    shot = np.asarray(cv2.imread(str(path)))
    rect = browser.execute_script(
        "const r = document.getElementById('video').getBoundingClientRect();"
        "return [r.left, r.top, r.width, r.height, window.devicePixelRatio];")
    left, top, width, height, ratio = (float(v) for v in rect)
    assert width > 300 and height > 150, f"the video is not shown ({width}×{height})"
    x0, y0 = int(left * ratio), int(top * ratio)
    area = shot[y0:y0 + int(height * ratio), x0:x0 + int(width * ratio)].astype(int)
    b, g, r = area[..., 0], area[..., 1], area[..., 2]
    return int(((g > 170) & (r < 90) & (b < 90)).sum())  # annotate.BOX after JPEG
