"""The app at three screen sizes (issue 31's responsive layout) and the Augmentations page's teaching mode, in
headless Chromium with real clicks. Reuses the app and browser fixtures of ``tests/test_browser.py``; screenshots go
to ``tests/_artifacts/layout_<page>_<width>x<height>.png``. Run with ``pytest -m browser tests/test_browser_layout.py``.

What is asserted, from the laid-out page (not just the absence of an error box): no button's label is cut
(``scrollWidth <= clientWidth`` for the button and every element in it), every plotly figure and image fits the
viewport, the page has no horizontal scrollbar, the ECG paper's rows fill its figure (no blank band above or below),
the control columns stack on a narrow screen and the sweep charts go one per row there.
"""

from __future__ import annotations

import re
import time

import pytest
from test_browser import ARTIFACTS, _open, _rerun_settled, browser, project, server

pytestmark = pytest.mark.browser
__all__ = ["browser", "project", "server"]  # the fixtures, shared with test_browser.py

SIZES = [(1600, 1000), (1280, 720), (800, 1000)]
LAYOUT_PAGES = ["", "explorer", "augmentations", "regions", "pretraining", "representations", "sweeps"]

#: Buttons whose label (or an element in it) is wider than the button shows: cut with an ellipsis.
_CUT_BUTTONS = """
const cut = [];
for (const b of document.querySelectorAll('[data-testid="stMain"] button, [data-testid="stSidebar"] button')) {
  const r = b.getBoundingClientRect();
  if (r.width === 0 || !b.innerText.trim()) continue;
  for (const el of [b, ...b.querySelectorAll('*')]) {
    if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) { cut.push(b.innerText.trim()); break; }
  }
}
return cut;
"""
_WIDE_FIGURES = """
return Array.from(document.querySelectorAll('.js-plotly-plot, [data-testid="stMain"] img, .vega-embed'))
  .map(el => el.getBoundingClientRect())
  .filter(r => r.width > 0 && (r.right > window.innerWidth + 1 || r.left < -1)).map(r => [r.left, r.right]);
"""
_PAGE_WIDTH = """
const main = document.querySelector('[data-testid="stMain"]');
return [document.documentElement.scrollWidth, window.innerWidth, main.scrollWidth, main.clientWidth];
"""
#: Height of the plot area against the height the paper needs at its width (square mm cells): the blank band.
_PAPER_FIT = """
return Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter(el => el.layout && el.layout.meta && el.layout.meta.mm_per_s)
  .map(el => {
    const s = el._fullLayout._size, x = el.layout.xaxis.range, y = el.layout.yaxis.range;
    return [s.h, s.w * Math.abs(y[1] - y[0]) / Math.abs(x[1] - x[0])];
  });
"""

#: The Explorer's print (an SVG image drawn on the server): its drawn height against the height its view box needs
#: at its drawn width, and whether it stays inside the viewport.
_PRINT_FIT = """
return Array.from(document.querySelectorAll('[data-testid="stMain"] img'))
  .filter(img => img.src.startsWith('data:image/svg+xml;base64,') && atob(img.src.split(',')[1]).includes('mm5'))
  .map(img => {
    const r = img.getBoundingClientRect(), v = atob(img.src.split(',')[1]).match(/viewBox="([^"]+)"/)[1].split(' ');
    return [r.height, r.width * Number(v[3]) / Number(v[2]), r.left >= -1 && r.right <= window.innerWidth + 1];
  });
"""


def _at_size(driver, width: int, height: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def _rect(driver, testid: str, text: str) -> dict:
    """The box of the first ``testid`` element whose text starts with ``text``."""
    from selenium.webdriver.common.by import By

    for el in driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'):
        if el.text.strip().startswith(text):
            return el.rect
    raise AssertionError(f"no {testid} {text!r}")


@pytest.fixture(scope="module")
def sized(browser):
    yield browser
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("page", LAYOUT_PAGES)
def test_nothing_is_cut_and_figures_fit_at_every_size(server, sized, page, size):
    _at_size(sized, *size)
    _open(sized, f"{server}/{page}")
    time.sleep(1.0)  # plotly lays out after the script
    sized.save_screenshot(str(ARTIFACTS / f"layout_{page or 'home'}_{size[0]}x{size[1]}.png"))
    assert sized.execute_script(_CUT_BUTTONS) == []
    assert sized.execute_script(_WIDE_FIGURES) == []
    doc, inner, main_scroll, main_client = sized.execute_script(_PAGE_WIDTH)
    assert doc <= inner and main_scroll <= main_client + 1, (doc, inner, main_scroll, main_client)
    for plot_h, paper_h in sized.execute_script(_PAPER_FIT):
        assert abs(plot_h - paper_h) < 12, f"the ECG's rows leave {plot_h - paper_h:.0f} px blank"
    for drawn_h, needed_h, inside in sized.execute_script(_PRINT_FIT):
        assert abs(drawn_h - needed_h) < 2 and inside, (drawn_h, needed_h, inside)
    if page == "explorer":  # the page opens on the print drawn by the server (the chart comes with calipers)
        assert sized.execute_script(_PRINT_FIT), "no ECG print drawn"


@pytest.mark.parametrize("size", [(1280, 720), (800, 1000)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_interactive_paper_chart_fits_its_rows(server, sized, size):
    """With "calipers and zoom" on, the Explorer's plotly paper chart: its rows fill it (no blank band)."""
    _at_size(sized, *size)
    _open(sized, f"{server}/explorer")
    _click_text(sized, '[data-testid="stCheckbox"] label', "calipers and zoom")
    time.sleep(1.0)
    fits = sized.execute_script(_PAPER_FIT)
    assert fits, "no interactive paper chart drawn"
    for plot_h, paper_h in fits:
        assert abs(plot_h - paper_h) < 12, f"the ECG's rows leave {plot_h - paper_h:.0f} px blank"
    assert sized.execute_script(_WIDE_FIGURES) == []


@pytest.mark.parametrize("size", [(1600, 1000), (800, 1000)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_controls_stack_and_sweep_charts_go_one_per_row_on_a_narrow_screen(server, sized, size):
    narrow = size[0] < 1000
    _at_size(sized, *size)
    _open(sized, f"{server}/augmentations")
    controls, chart = _rect(sized, "stSelectbox", "dataset"), _rect(sized, "stImage", "")  # the views, an SVG
    stacked = chart["x"] < controls["x"] + controls["width"]  # the figure below the controls, not beside them
    assert stacked == narrow, (controls, chart)
    _open(sized, f"{server}/sweeps")
    time.sleep(1.0)
    boxes = [
        r
        for r in sized.execute_script(
            "return Array.from(document.querySelectorAll("
            '\'[data-testid="stPlotlyChart"], [data-testid="stMain"] img[src^="data:image/svg"]\'))'
            ".map(e => e.getBoundingClientRect()).filter(r => r.width > 0).map(r => [r.left, r.top]);"
        )
    ]
    assert len(boxes) >= 2, boxes
    same_row = len({round(top) for _, top in boxes}) < len(boxes)
    assert same_row != narrow, boxes  # side by side when wide, one per row when narrow


def _click_text(driver, css: str, text: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    target = next(e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.text.strip().startswith(text))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", target)
    ActionChains(driver).click(target).perform()
    _rerun_settled(driver)


#: The subplot titles of the Augmentations views as the browser received them (the SVG image's data URI).
_VIEW_TITLES = """
const img = Array.from(document.querySelectorAll('[data-testid="stMain"] img'))
  .find(i => i.src.startsWith('data:image/svg+xml;base64,'));
const bytes = Uint8Array.from(atob(img.src.split(',')[1]), c => c.charCodeAt(0));
const svg = new DOMParser().parseFromString(new TextDecoder().decode(bytes), 'image/svg+xml');
return Array.from(svg.querySelectorAll('text.title')).map(t => t.textContent).filter(t => t.startsWith('step'));
"""


def test_teaching_mode_steps_through_crop_mask_and_shift(server, sized):
    from selenium.webdriver.common.by import By

    _at_size(sized, 1600, 1000)
    _open(sized, f"{server}/augmentations")
    _click_text(sized, '[data-testid="stCheckbox"] label, [data-testid="stToggle"] label', "teaching mode")
    seen = []
    for k, step in enumerate(["step 1: crop", "step 2: mask", "step 3: shift"], start=1):
        _click_text(sized, '[data-testid="stRadio"] label', step)
        time.sleep(0.5)
        full = sized.execute_script(_VIEW_TITLES)
        titles = [t.split(" — ")[0] for t in full]
        assert titles == ["step 1: crop", "step 2: crop + mask", "step 3: crop + mask + shift"][:k], titles
        why = [e.text for e in sized.find_elements(By.CSS_SELECTOR, '[data-testid="stMarkdown"]') if "Step " in e.text]
        assert any(e.startswith(f"Step {k} · {step.split(': ')[1]}.") for e in why), why
        crops = [(re.search(r"crop [0-9.]+–[0-9.]+ s", t) or [""])[0] for t in full]
        seen.append(crops)
        sized.save_screenshot(str(ARTIFACTS / f"augmentations_teaching_step{k}.png"))
    assert len({c for crops in seen for c in crops}) == 1, seen  # one seed: the same crop window in every step
