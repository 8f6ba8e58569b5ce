"""End-to-end: ``streamlit run app.py`` in a subprocess, every page opened in headless Chromium via selenium.

Checks that no exception box (``stException``) or error alert (``stAlertContentError``) appears, and saves a
screenshot of each page to ``tests/_artifacts/``. Needs Debian's ``chromium`` and ``chromium-driver``
(``apt-get install -y chromium chromium-driver``); skipped with a reason when they are missing.
Run with ``pytest -m browser tests/test_browser.py``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "_artifacts"
CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")
PAGES = ["", "explorer", "augmentations", "regions", "pretraining", "representations", "sweeps"]
# The demo project (tiny random checkpoint, one finished run, one finished sweep) makes every page draw its
# figures; see tests/test_app.py::make_demo_project.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not CHROMIUM.exists() or not DRIVER.exists():
        pytest.skip(
            "headless Chromium is not installed (/usr/bin/chromium and /usr/bin/chromedriver); "
            "install with `apt-get install -y chromium chromium-driver`"
        )
    pytest.importorskip("selenium")
    from test_app import make_demo_project  # tests/ is on sys.path (rootdir conftest)

    tmp = Path(tempfile.mkdtemp(prefix="aclecg-browser-"))
    make_demo_project(tmp)
    port = _free_port()
    env = {
        **os.environ,
        "ACLECG_RUNS": str(tmp / "runs"),
        "ACLECG_CHECKPOINTS": str(tmp / "checkpoints"),
        "ACLECG_UMAP_CACHE": str(tmp / "umap"),
    }
    log = open(tmp / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(REPO / "app.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail(f"streamlit did not start: {(tmp / 'streamlit.log').read_text()[-2000:]}")
    if proc.poll() is not None:
        pytest.fail(f"streamlit exited: {(tmp / 'streamlit.log').read_text()[-2000:]}")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="aclecg-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1500,1800",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait_until_idle(driver, timeout: float = 150.0) -> None:
    """Wait until the script has run to the end (stApp's data-test-script-state is notRunning, twice)."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    calm = 0
    while time.time() < deadline:
        apps = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stApp"]')
        state = apps[0].get_attribute("data-test-script-state") if apps else None
        calm = calm + 1 if state == "notRunning" else 0
        if calm >= 3:
            return
        time.sleep(0.5)
    raise AssertionError(f"page still running after {timeout} s")


@pytest.mark.parametrize("page", PAGES)
def test_page_opens_without_error(server, browser, page):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/{page}")
    _wait_until_idle(browser)
    time.sleep(1.0)  # let plotly draw before the screenshot
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"page_{page or 'home'}.png"))
    exceptions = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    errors = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
    assert not exceptions, [e.text for e in exceptions]
    assert not errors, [e.text for e in errors]
    assert browser.find_elements(By.CSS_SELECTOR, "h1"), "page has no title"


def _caption_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stCaptionContainer"]'))


def _choose_method(driver, method: str) -> None:
    from selenium.webdriver.common.by import By

    for label in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stRadio"] label'):
        if label.text.strip() == method:
            label.click()
            return
    raise AssertionError(f"no radio option {method!r}")


def test_representations_switches_map_method(server, browser):
    """Both methods draw and name themselves with their trustworthiness (the first umap-learn map compiles)."""
    browser.get(f"{server}/representations")
    _wait_until_idle(browser)
    assert "Drawn with fast" in _caption_text(browser) and "trustworthiness at k = 10: 0." in _caption_text(browser)
    _choose_method(browser, "umap-learn")
    time.sleep(1.0)
    _wait_until_idle(browser, timeout=240)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "page_representations_umap_learn.png"))
    assert "Drawn with umap-learn" in _caption_text(browser)
    _choose_method(browser, "fast")
    time.sleep(1.0)
    _wait_until_idle(browser)
    assert "Drawn with fast" in _caption_text(browser)
