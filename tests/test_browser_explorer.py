"""The Explorer's viewer tools in headless Chromium, driven as a user drives them: calipers set by two real mouse
clicks on the paper chart, the gain chosen in its selectbox, the PDF downloaded, and "next" after an upload.

Reuses tests/test_browser.py's Chromium fixture and app launcher on an empty project (no runs or checkpoints:
these tools need none). Run with ``pytest -m browser tests/test_browser_explorer.py``.
"""

from __future__ import annotations

import html
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_browser import ARTIFACTS, _needs_chromium, _serve, _wait_until_idle
from test_browser import browser as browser

pytestmark = pytest.mark.browser

#: Pixel position (viewport) of sample ``i`` of the main chart's rhythm strip, and the strip's times.
_RHYTHM_POINT = """
const el = document.querySelectorAll('.js-plotly-plot')[0];
const fl = el._fullLayout, xa = fl.xaxis, ya = fl.yaxis;
const strip = el._fullData.filter(t => t.name === 'II' && t.mode === 'lines')
    .sort((a, b) => b.x.length - a.x.length)[0];
const i = Math.round(arguments[0] * strip.x.length);
const r = el.getBoundingClientRect();
return {x: r.left + xa._offset + xa.l2p(strip.x[i]), y: r.top + ya._offset + ya.l2p(strip.y[i]),
        t: strip.customdata[i][0], n: strip.x.length,
        cx: r.left + r.width / 2, cy: r.top + r.height / 2};
"""
_MAIN_LAYOUT = """
const el = document.querySelectorAll('.js-plotly-plot')[0];
if (!el || !el.layout) return null;  // between a rerun's removal of the chart and its new draw
return {title: ((el.layout.title || {}).text) || '', meta: el.layout.meta || {},
        labels: (el.layout.annotations || []).filter(a => a.name === 'calibration label').map(a => a.text),
        shown: Array.from(el.querySelectorAll('.annotation-text')).map(a => a.textContent),
        calipers: (el.layout.shapes || []).filter(s => s.name === 'caliper').length};
"""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    _needs_chromium()
    folder = Path(tempfile.mkdtemp(prefix="aclecg-browser-explorer-"))
    try:
        with _serve(folder) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _settle(driver, pause: float = 1.0) -> None:
    time.sleep(pause)  # a rerun has to start before "idle" means anything
    _wait_until_idle(driver, timeout=60)
    time.sleep(0.8)  # plotly draws after the script has finished


def _open_explorer(driver, url: str, calipers: bool = True) -> None:
    """Open the Explorer; with ``calipers`` turn on "calipers and zoom" (a real click) and wait for the chart."""
    driver.get(f"{url}/explorer")
    _wait_until_idle(driver, timeout=60)
    if not calipers:
        _print_svg(driver)
        return
    if not driver.execute_script("return document.querySelectorAll('.js-plotly-plot').length"):
        _click_toggle(driver, "calipers and zoom")
    deadline = time.time() + 30
    while not driver.execute_script("return document.querySelectorAll('.js-plotly-plot').length") > 0:
        assert time.time() < deadline, "the Explorer drew no chart"
        time.sleep(0.3)
    time.sleep(0.8)


def _click_toggle(driver, text: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    label = next(
        e
        for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stCheckbox"] label')
        if e.text.strip().startswith(text)
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", label)
    ActionChains(driver).click(label).perform()
    _settle(driver)


#: The print view's SVG, as the browser received it (the image's data URI), and the image's drawn size.
_PRINT_SVG = """
const img = Array.from(document.querySelectorAll('[data-testid="stMain"] img'))
  .find(i => i.src.startsWith('data:image/svg+xml;base64,'));
if (!img || !img.complete) return null;
const r = img.getBoundingClientRect();
const bytes = Uint8Array.from(atob(img.src.split(',')[1]), c => c.charCodeAt(0));
return {svg: new TextDecoder().decode(bytes), width: r.width, height: r.height, right: r.right,
        column: img.closest('[data-testid="stColumn"]').getBoundingClientRect().width};
"""


def _drawn(driver, script: str, what: str, timeout: float = 30.0) -> dict:
    """What ``script`` returns once it returns something (under load a rerun may still be drawing)."""
    deadline = time.time() + timeout
    while (found := driver.execute_script(script)) is None:
        assert time.time() < deadline, f"the Explorer drew no {what}"
        time.sleep(0.2)
    return found


def _print_svg(driver) -> dict:
    return _drawn(driver, _PRINT_SVG, "print")


def _print_title(driver) -> str:
    found = re.search(r'aria-label="([^"]*)"', _print_svg(driver)["svg"])
    return html.unescape(found.group(1)) if found else ""


def _markdown(driver) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMarkdownContainer"]'))


def _click_rhythm(driver, fraction: float) -> dict:
    """Move the real mouse onto the rhythm strip's trace at ``fraction`` of the record and click."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    chart = driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", chart)
    time.sleep(0.5)
    p = driver.execute_script(_RHYTHM_POINT, fraction)
    layer = chart.find_element(By.CSS_SELECTOR, ".nsewdrag")  # plotly's event layer over the plot area
    actions = ActionChains(driver)
    actions.move_to_element_with_offset(chart, round(p["x"] - p["cx"]), round(p["y"] - p["cy"])).pause(0.4)
    actions.click().perform()
    assert layer is not None
    return p


def test_the_page_opens_on_a_print_drawn_by_the_server_and_calipers_draw_the_chart(server, browser):
    """No chart library on the first paint: the ECG is one SVG image that fits its column with square mm cells;
    turning on "calipers and zoom" (a real click) replaces it with the interactive chart, and off brings it back."""
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/explorer")
    _wait_until_idle(browser, timeout=60)
    drawn = _print_svg(browser)
    assert browser.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]') == []
    assert re.search(r'aria-label="ptbxl · record \w+"', drawn["svg"]), drawn["svg"][:300]
    assert drawn["svg"].count("<title>") >= 13  # 12 lead panels and the rhythm strip, at least
    _, _, w, h = (float(v) for v in re.search(r'viewBox="([^"]+)"', drawn["svg"]).group(1).split())
    assert abs(drawn["height"] / drawn["width"] - h / w) < 0.01  # drawn at its own aspect: square mm cells
    assert drawn["width"] >= 0.95 * drawn["column"]  # fills the column, no blank band beside it
    _click_toggle(browser, "calipers and zoom")
    assert browser.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]')
    assert browser.execute_script(_PRINT_SVG) is None
    _click_toggle(browser, "calipers and zoom")
    assert "aria-label" in _print_svg(browser)["svg"]


def test_two_mouse_clicks_set_the_calipers_and_show_the_interval(server, browser):
    _open_explorer(browser, server)
    a = _click_rhythm(browser, 0.20)
    _settle(browser)
    first = re.search(r"first end on II at ([\d.]+) s", _markdown(browser))
    assert first, _markdown(browser)[-600:]
    assert abs(float(first.group(1)) - a["t"]) <= 0.04  # the sample under the mouse, give or take a pixel
    b = _click_rhythm(browser, 0.28)
    _settle(browser)
    browser.save_screenshot(str(ARTIFACTS / "page_explorer_calipers.png"))
    text = _markdown(browser)
    found = re.search(r"Calipers: Δt (\d+) ms · (\d+) bpm · Δ(mV|z) ([+-][\d.]+)", text)
    assert found, text[:800]
    shown_ms = int(found.group(1))
    assert abs(shown_ms - abs(b["t"] - a["t"]) * 1000) <= 60  # each end within a pixel or two of the mouse
    assert int(found.group(2)) == round(60000 / shown_ms)
    assert _main_layout(browser)["calipers"] == 2  # both ends drawn on the trace


def _choose(driver, label: str, option: str) -> None:
    from selenium.webdriver.common.by import By

    box = next(
        e for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSelectbox"]') if e.text.startswith(label)
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
    box.find_element(By.CSS_SELECTOR, "input").click()
    time.sleep(0.5)
    item = next(o for o in driver.find_elements(By.CSS_SELECTOR, '[role="option"]') if o.text.strip() == option)
    item.click()


def test_gain_selectbox_relabels_the_calibration_pulse(server, browser):
    _open_explorer(browser, server)
    before = _main_layout(browser)
    assert before["meta"]["mm_per_unit"] in (10, 2.5) and len(before["labels"]) == 1
    _choose(browser, "gain", "20 mm/mV")
    _settle(browser)
    after = _main_layout(browser)
    browser.save_screenshot(str(ARTIFACTS / "page_explorer_gain20.png"))
    want = "20 mm/mV" if after["meta"]["units"] == "mV" else "5 mm/SD"
    assert after["labels"] == [want] and want in after["shown"]  # in the layout and drawn in the SVG
    assert after["meta"]["mm_per_unit"] == 2 * before["meta"]["mm_per_unit"]


def test_pdf_download_is_a_true_scale_page_with_the_header(server, browser):
    from selenium.webdriver.common.by import By

    from aclecg.viz.printout import NOT_FOR_DIAGNOSIS
    from tests.helpers.pdftext import page_sizes_pt, shown_text

    folder = Path(tempfile.mkdtemp(prefix="aclecg-downloads-"))
    try:
        browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})
        _open_explorer(browser, server, calipers=False)
        button = next(b for b in browser.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "Download PDF")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", button)
        deadline = time.time() + 40
        while not (done := [p for p in folder.glob("*.pdf")]) or list(folder.glob("*.crdownload")):
            assert time.time() < deadline, f"no PDF downloaded: {list(folder.iterdir())}"
            time.sleep(0.5)
        pdf = done[0].read_bytes()
        assert pdf.startswith(b"%PDF") and done[0].name.endswith("_A4.pdf")
        assert page_sizes_pt(pdf) == [pytest.approx((841.89, 595.28), abs=0.01)]
        text = " | ".join(shown_text(pdf))
        assert "Record ptbxl " in text and NOT_FOR_DIAGNOSIS in text and "HR " in text and "10 mm/mV" in text
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _main_layout(driver) -> dict:
    """The Explorer's paper chart's layout facts, once a chart is drawn."""
    return _drawn(driver, _MAIN_LAYOUT, "chart")


def test_next_after_an_upload_shows_the_next_record(server, browser):
    from selenium.webdriver.common.by import By

    from aclecg.data import BUNDLED_RAW_DIR

    hea = next((BUNDLED_RAW_DIR / "challenge-2021").rglob("JS00001.hea"))
    _open_explorer(browser, server, calipers=False)  # the print view, as the page opens
    browser.find_element(By.XPATH, "//summary[contains(., 'Upload your own ECG')]").click()
    time.sleep(0.5)
    field = browser.find_element(By.CSS_SELECTOR, '[data-testid="stFileUploader"] input[type="file"]')
    field.send_keys(f"{hea}\n{hea.with_suffix('.mat')}")
    deadline = time.time() + 45
    while "uploaded JS00001" not in _print_title(browser):
        assert time.time() < deadline, f"the upload was not drawn: {_print_title(browser)!r}"
        time.sleep(0.5)
    _wait_until_idle(browser, timeout=60)
    button = next(b for b in browser.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "next ▶")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", button)
    _settle(browser)
    record = (
        next(
            e
            for e in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stSelectbox"]')
            if e.text.startswith("record")
        )
        .find_element(By.CSS_SELECTOR, "input")
        .get_attribute("value")
    )
    browser.save_screenshot(str(ARTIFACTS / "page_explorer_upload_next.png"))
    title = _print_title(browser)
    assert "uploaded" not in title and f"record {record.split(' ')[0]}" in title, (title, record)
