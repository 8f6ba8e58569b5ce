"""End-to-end: the app served as ``make app`` serves it (``aclecg app``) in a subprocess, every page opened in
headless Chromium via selenium.

Checks that no exception box (``stException``) or error alert (``stAlertContentError``) appears, and saves a
screenshot of each page to ``tests/_artifacts/``. Needs Debian's ``chromium`` and ``chromium-driver``
(``apt-get install -y chromium chromium-driver``); skipped with a reason when they are missing.
Run with ``pytest -m browser tests/test_browser.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from aclecg.app_pages import app_pages

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "_artifacts"
CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")
PAGES = ["", *(page.url_path for page in app_pages())]  # Home, then the pages registry's URL paths
# The demo project (tiny random checkpoint, one finished run, one finished sweep) makes every page draw its
# figures; see tests/test_app.py::make_demo_project.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _needs_chromium() -> None:
    if not CHROMIUM.exists() or not DRIVER.exists():
        pytest.skip(
            "headless Chromium is not installed (/usr/bin/chromium and /usr/bin/chromedriver); "
            "install with `apt-get install -y chromium chromium-driver`"
        )
    pytest.importorskip("selenium")


@contextlib.contextmanager
def _serve(project: Path) -> Iterator[str]:
    """The app on the demo project in ``project``, launched as ``make app`` launches it (``aclecg app``)."""
    port = _free_port()
    env = {
        **os.environ,
        "ACLECG_RUNS": str(project / "runs"),
        "ACLECG_CHECKPOINTS": str(project / "checkpoints"),
        "ACLECG_UMAP_CACHE": str(project / "umap"),
    }
    log_path = project / f"streamlit-{port}.log"
    log = open(log_path, "wb")
    streamlit_flags = ["--server.address", "127.0.0.1", "--server.headless", "true"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aclecg", "app", str(REPO / "app.py"), "--port", str(port), "--", *streamlit_flags]
        + ["--browser.gatherUsageStats", "false"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
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
            pytest.fail(f"the app did not start: {log_path.read_text()[-2000:]}")
        if proc.poll() is not None:
            pytest.fail(f"the app exited: {log_path.read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    _needs_chromium()
    from test_app import make_demo_project  # tests/ is on sys.path (rootdir conftest)

    tmp = Path(tempfile.mkdtemp(prefix="aclecg-browser-"))
    make_demo_project(tmp)
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[str]:
    with _serve(project) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # screenshots land here (CI keeps them)
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
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request, for the offline test
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
    browser.save_screenshot(str(ARTIFACTS / f"page_{page or 'home'}.png"))
    exceptions = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    errors = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
    assert not exceptions, [e.text for e in exceptions]
    assert not errors, [e.text for e in errors]
    assert browser.find_elements(By.CSS_SELECTOR, "h1"), "page has no title"


def test_first_deep_link_of_a_fresh_server_opens_the_page_without_a_notice(project, browser):
    """The very first request a new server gets is a page's own URL: that page opens, with no "Page not found"
    notice (Streamlit used to look the URL up among pages/' file names before app.py's st.navigation ran)."""
    from selenium.webdriver.common.by import By

    with _serve(project) as url:
        browser.get(f"{url}/augmentations")
        _wait_until_idle(browser)
        time.sleep(0.5)
        dialogs = [d.text for d in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDialog"]')]
        title = browser.find_element(By.CSS_SELECTOR, '[data-testid="stMain"] h1').text
    assert not [d for d in dialogs if "not found" in d.lower()], dialogs
    assert title.startswith("Augmentations"), title


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
    browser.save_screenshot(str(ARTIFACTS / "page_representations_umap_learn.png"))
    assert "Drawn with umap-learn" in _caption_text(browser)
    _choose_method(browser, "fast")
    time.sleep(1.0)
    _wait_until_idle(browser)
    assert "Drawn with fast" in _caption_text(browser)


_PLOTLY_TRACES = (
    "return Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => (el.data || []).map(t => t.name || ''));"
)
#: Crop-window boxes of each SVG picture the page shows (the Augmentations views, drawn on the server).
_CROP_BOXES = (
    "return Array.from(document.querySelectorAll('[data-testid=\"stMain\"] img'))"
    ".filter(i => i.src.startsWith('data:image/svg+xml;base64,'))"
    ".map(i => (atob(i.src.split(',')[1]).match(/data-name=\"crop window\"/g) || []).length);"
)

_PLOTLY_CROP_BOXES = (
    "return Array.from(document.querySelectorAll('.js-plotly-plot'))"
    ".map(el => ((el.layout || {}).shapes || []).filter(s => s.name === 'crop window').length);"
)


def _open(driver, url: str) -> None:
    driver.get(url)
    _wait_until_idle(driver)
    time.sleep(1.0)  # plotly draws after the script has finished


def _text_input(driver, label: str, timeout: float = 60.0):
    """The input of the text box whose label starts with ``label``, waiting until the page has drawn it."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stTextInput"]'):
            if e.text.startswith(label):
                return e.find_element(By.CSS_SELECTOR, "input")
        if time.monotonic() > deadline:
            raise AssertionError(f"no text input labelled {label!r} after {timeout:.0f} s")
        time.sleep(0.2)


def _rerun_settled(driver, timeout: float = 150.0) -> None:
    time.sleep(1.0)  # the widget's rerun has to start before "idle" means anything
    _wait_until_idle(driver, timeout)
    time.sleep(1.0)


def test_pretraining_page_names_the_run_and_plots_its_loss_terms(server, browser):
    """The selector shows the finished demo run; the chart draws the method's loss terms and nothing else."""
    from selenium.webdriver.common.by import By

    from aclecg.methods import loss_terms

    _open(browser, f"{server}/pretraining")
    selector = next(
        e for e in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stSelectbox"]') if e.text.startswith("run")
    )
    shown = selector.find_element(By.CSS_SELECTOR, "input").get_attribute("value")
    assert shown == "acl-demo · finished · acl_ecg"
    metrics = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')
    assert any("state" in m.text and "finished" in m.text for m in metrics)
    traces = browser.execute_script(_PLOTLY_TRACES)
    assert traces and set(traces[0]) == set(loss_terms("acl_ecg")) | {"lr", "samples/s"}


def _slider(driver, label: str):
    from selenium.webdriver.common.by import By

    for box in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSlider"]'):
        if box.text.splitlines() and box.text.splitlines()[0].strip() == label:
            return box.find_element(By.CSS_SELECTOR, 'input[type="range"]')  # visually hidden (react-aria)
    raise AssertionError(f"no slider {label!r}")


def test_augmentations_outline_one_crop_window_per_view(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    _open(browser, f"{server}/augmentations")
    from selenium.webdriver.common.by import By

    views = int(_slider(browser, "Physio-AUG views").get_attribute("value"))
    baseline = next(
        e.find_element(By.CSS_SELECTOR, "input").is_selected()
        for e in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stCheckbox"]')
        if e.text.startswith("baseline view")
    )
    views += int(baseline)  # the baseline pipeline's random resized crop is a view with a crop window too
    assert browser.execute_script(_CROP_BOXES)[0] == views
    slider = _slider(browser, "Physio-AUG views")
    deadline = time.time() + 20
    while int(slider.get_attribute("value")) < int(slider.get_attribute("max")):
        assert time.time() < deadline, "the views slider did not move"
        thumb = slider.find_element(By.XPATH, "../..")  # the visible handle around the hidden input
        ActionChains(browser).click(thumb).send_keys(Keys.END).perform()  # the most views the page offers
        time.sleep(0.5)
    _rerun_settled(browser)
    more = int(_slider(browser, "Physio-AUG views").get_attribute("value")) + int(baseline)
    assert more > views
    assert browser.execute_script(_CROP_BOXES)[0] == more
    browser.save_screenshot(str(ARTIFACTS / "page_augmentations_most_views.png"))
    # a real click on "interactive chart": the plotly chart replaces the picture, with the same crop windows
    label = next(
        e
        for e in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stCheckbox"] label')
        if e.text.strip().startswith("interactive chart")
    )
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", label)
    ActionChains(browser).click(label).perform()
    _rerun_settled(browser)
    deadline = time.time() + 30
    while not (plotted := browser.execute_script(_PLOTLY_CROP_BOXES)):
        assert time.time() < deadline, "no interactive chart after the switch"
        time.sleep(0.3)
    assert plotted == [more] and browser.execute_script(_CROP_BOXES) == []


def test_sweep_form_says_what_is_wrong_before_launching(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open(browser, f"{server}/sweeps")
    browser.find_element(By.XPATH, "//summary[contains(., 'Launch a sweep')]").click()
    box = _text_input(browser, "label fractions")  # drawn once the expander opens: under load, seconds later
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("abc, 2", Keys.ENTER)
    _rerun_settled(browser)
    button = next(b for b in browser.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "Start sweep")
    button.click()
    _rerun_settled(browser)
    errors = [e.text for e in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')]
    browser.save_screenshot(str(ARTIFACTS / "page_sweeps_bad_form.png"))
    assert any("Could not start the sweep" in e and "fractions must be" in e for e in errors), errors


_ATTRIBUTION = (
    "return Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({"
    "cls: ((el.layout || {}).meta || {}).class || null,"
    "x: (el.data && el.data[0] && el.data[0].x) ? Array.from(el.data[0].x) : [],"
    "shaded: ((el.layout || {}).shapes || []).filter(s => s.name === 'highlighted lead').length,"
    "title: ((((el.layout || {}).title || {}).text) || '').replace(/<[^>]+>/g, '')}));"
)


def test_explorer_explains_a_record_by_region(server, browser):
    """The button draws one bar per region and the grid with the strongest region's leads shaded."""
    from selenium.webdriver.common.by import By

    _open(browser, f"{server}/explorer")
    button = next(b for b in browser.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "Explain by region")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", button)
    _rerun_settled(browser)
    deadline = time.time() + 30
    while True:  # plotly draws charts below the fold as they scroll in
        browser.execute_script(
            "const c = document.querySelectorAll('[data-testid=\"stPlotlyChart\"]');"
            "if (c.length) c[c.length - 1].scrollIntoView({block: 'end'});"
        )
        time.sleep(0.5)
        charts = browser.execute_script(_ATTRIBUTION)
        if any(c["title"].startswith(("shaded", "no region")) for c in charts) or time.time() > deadline:
            break
    browser.save_screenshot(str(ARTIFACTS / "page_explorer_attribution.png"))
    bars = [c for c in charts if c["cls"]]
    assert len(bars) == 1 and bars[0]["x"] == ["septal", "anterior", "lateral", "inferior"]
    grid = next((c for c in charts if c["title"].startswith(("shaded", "no region"))), None)
    assert grid is not None, [c["title"] for c in charts]
    assert (grid["shaded"] > 0) == grid["title"].startswith("shaded")
    assert any("score drop by region" in c["title"] for c in charts)


def _requested_hosts(driver) -> set[str]:
    """Hosts of every request the browser sent since the last call (Chromium's performance log)."""
    import json
    from urllib.parse import urlparse

    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = urlparse(message["params"]["request"]["url"])
            if url.scheme in ("http", "https", "ws", "wss"):  # not data:, blob: or the browser's own chrome://
                hosts.add(url.hostname or url.netloc)
    return hosts


def test_no_page_requests_anything_off_the_machine(server, browser):
    """Offline and hospital networks: every page, with everything it loads (favicon included), stays local."""
    browser.get_log("performance")  # drop what earlier tests caused
    for url_path in PAGES:
        browser.get(f"{server}/{url_path}")
        _wait_until_idle(browser)
        time.sleep(1.0)  # the favicon and lazily loaded chunks come after the script settles
        hosts = _requested_hosts(browser)
        assert hosts <= {"localhost", "127.0.0.1"}, f"/{url_path} requested {sorted(hosts)}"
