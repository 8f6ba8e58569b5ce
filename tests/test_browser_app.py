"""Browser tests of issue 31's defects, driven by real user actions in headless Chromium (clicks, selectbox
choices): never by writing session state. Reuses the app and browser fixtures of ``tests/test_browser.py``.
Run with ``pytest -m browser tests/test_browser_app.py``.
"""

from __future__ import annotations

import re
import time

import pytest
from test_browser import ARTIFACTS, _open, _rerun_settled, browser, project, server

pytestmark = pytest.mark.browser
__all__ = ["browser", "project", "server"]  # the fixtures, shared with test_browser.py


def _widget(driver, testid: str, label: str, timeout: float = 15.0):
    """The widget ``testid`` labelled ``label``, waiting up to ``timeout`` s for it (under load a page's lower
    widgets are drawn a moment after its script went idle)."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    while True:
        for box in driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'):
            if box.text.splitlines() and box.text.splitlines()[0].strip() == label:
                return box
        if time.time() > deadline:
            raise AssertionError(f"no {testid} {label!r}")
        time.sleep(0.2)


def _choose(driver, label: str, option: str) -> None:
    """Open the selectbox ``label`` with a mouse click and click ``option`` in its list, as a user does."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    box = _widget(driver, "stSelectbox", label)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
    ActionChains(driver).click(box.find_element(By.CSS_SELECTOR, "input")).perform()
    deadline = time.time() + 10
    while time.time() < deadline:
        items = driver.find_elements(By.CSS_SELECTOR, '[role="option"]')
        hit = [i for i in items if i.text.strip() == option]
        if hit:
            ActionChains(driver).click(hit[0]).perform()
            _rerun_settled(driver)
            return
        time.sleep(0.2)
    import re

    src = driver.page_source
    spots = [src[max(m.start() - 300, 0) : m.start() + 100] for m in re.finditer(option, src)]
    raise AssertionError(f"no option {option!r} in {label!r}: {[i.text for i in items]} {spots}")


def _value(driver, testid: str, label: str) -> str:
    from selenium.webdriver.common.by import By

    return _widget(driver, testid, label).find_element(By.CSS_SELECTOR, "input").get_attribute("value")


def _epochs_batch(driver) -> tuple[str, str]:
    return _value(driver, "stNumberInput", "epochs"), _value(driver, "stNumberInput", "batch size")


def _open_launch_form(driver) -> None:
    from selenium.webdriver.common.by import By

    summary = driver.find_element(By.XPATH, "//summary[contains(., 'Launch a run')]")
    if not any(e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stNumberInput"]')):
        summary.click()
        time.sleep(0.5)


def test_pretraining_preset_and_method_fill_the_form(server, browser):
    """Choosing gpu-base sets 100 epochs, batch 256 and a gpu-base name; simclr renames the run."""
    _open(browser, f"{server}/pretraining")
    _open_launch_form(browser)
    assert _value(browser, "stNumberInput", "epochs") == "2"
    assert _value(browser, "stTextInput", "run name").startswith("acl_ecg-cpu-quick-")
    _choose(browser, "preset", "gpu-base")
    assert (_value(browser, "stNumberInput", "epochs"), _value(browser, "stNumberInput", "batch size")) == (
        "100",
        "256",
    )
    assert _value(browser, "stTextInput", "run name").startswith("acl_ecg-gpu-base-")
    _choose(browser, "preset", "cpu-small")
    assert _epochs_batch(browser) == ("20", "64")
    _choose(browser, "method", "simclr")
    browser.save_screenshot(str(ARTIFACTS / "page_pretraining_preset.png"))
    assert _value(browser, "stTextInput", "run name").startswith("simclr-cpu-small-")
    assert _value(browser, "stNumberInput", "epochs") == "20"


def _click_at(driver, x: float, y: float) -> None:
    """A real mouse click at viewport pixel (x, y): pointer moves there, presses and releases."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(round(x)), int(round(y))).pause(0.3).click()
    actions.perform()
    ActionChains(driver).reset_actions()


_POINT_CENTRES = (
    "return Array.from(document.querySelectorAll('.js-plotly-plot .scatterlayer path.point')).map(p => {"
    "const r = p.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2, r.width]; });"
)


#: Every point of the Vega-Lite map (its SVG renderer: one path per point): centre, width and its description.
_VEGA_POINTS = (
    "return Array.from(document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] g.mark-symbol path'))"
    ".map(p => { const r = p.getBoundingClientRect();"
    " return [r.left + r.width / 2, r.top + r.height / 2, r.width, p.getAttribute('aria-label') || '']; });"
)


def _ecg_titles(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => "
        "(((el.layout || {}).title || {}).text) || '');"
    )


def test_representations_single_click_on_a_point_shows_its_record(server, browser):
    """One real mouse click on a point of the map (Vega-Lite, the page's first view) picks that record: its ECG and
    labels appear under the map, and the record is the one the point describes."""
    from selenium.webdriver.common.by import By

    _open(browser, f"{server}/representations")
    chart = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", chart)
    time.sleep(1.0)
    assert "Click a point on the map" in browser.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]').text
    assert not browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")  # the page opened without plotly
    points = [p for p in browser.execute_script(_VEGA_POINTS) if p[2] > 0]
    assert points, "the map drew no points"
    x, y, _, described = points[len(points) // 2]
    record = re.search(r"record id: ([^;]+)", described)
    assert record, described
    _click_at(browser, x, y)
    _rerun_settled(browser)
    browser.save_screenshot(str(ARTIFACTS / "page_representations_click.png"))
    main = browser.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]').text
    assert "Click a point on the map" not in main
    assert any("(prepared, z-scored)" in t and record.group(1).strip() in t for t in _ecg_titles(browser))


def test_representations_zoom_and_lasso_map_takes_a_click_too(server, browser):
    """With "zoom and lasso" (the plotly map), one real mouse click on a plotted point picks that record."""
    from selenium.webdriver.common.by import By

    _open(browser, f"{server}/representations")
    _click_label(browser, '[data-testid="stCheckbox"] label', "zoom and lasso")
    chart = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]')[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", chart)
    time.sleep(1.0)
    points = [p for p in browser.execute_script(_POINT_CENTRES) if p[2] > 0]
    assert points, "the map drew no points"
    x, y, _ = points[len(points) // 2]
    _click_at(browser, x, y)
    _rerun_settled(browser)
    main = browser.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]').text
    assert "Click a point on the map" not in main
    assert any("(prepared, z-scored)" in t for t in _ecg_titles(browser))


def _click_label(driver, css: str, text: str) -> None:
    """A real mouse click on the first ``css`` element whose text starts with ``text``, then the rerun."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    target = next(e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.text.strip().startswith(text))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", target)
    ActionChains(driver).click(target).perform()
    _rerun_settled(driver)


_PICKER_AND_METRIC = (
    "const box = Array.from(document.querySelectorAll('[data-testid=\"stSelectbox\"]'))"
    ".find(e => e.innerText.split('\\n')[0].trim() === 'run');"
    "const metric = Array.from(document.querySelectorAll('[data-testid=\"stMetric\"]'))"
    ".find(e => e.innerText.startsWith('state'));"
    "return [box ? box.querySelector('input').value : null,"
    "metric ? metric.querySelector('[data-testid=\"stMetricValue\"]').innerText.trim() : null];"
)


def _picker_and_metric(driver) -> tuple[str, str]:
    """The run picker's shown label and the state metric's value, read at one instant (one script)."""
    label, state = driver.execute_script(_PICKER_AND_METRIC)
    assert label is not None and state is not None, (label, state)
    return label, state


def _button(driver, text: str):
    """The button showing ``text`` (looked up again while the fragment redraws it)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(20):
        try:
            return next(b for b in driver.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == text)
        except (StaleElementReferenceException, StopIteration):
            time.sleep(0.25)
    raise AssertionError(f"no button {text!r}")


def _enabled(driver, text: str) -> bool:
    return bool(
        driver.execute_script(
            "const b = Array.from(document.querySelectorAll('button')).find(b => b.innerText.trim() === arguments[0]);"
            "return b ? !b.disabled : null;",
            text,
        )
    )


def test_pretraining_new_run_is_picked_and_cancel_agrees_in_picker_and_state(server, browser, project):
    """Start a cpu-quick run on the bundled data with the form, then Cancel it: the new run is the picked one, and
    picker label and state metric say the same ("cancelling…", then "cancelled") without a reload."""
    from selenium.webdriver.common.by import By

    from aclecg import jobs

    _open(browser, f"{server}/pretraining")
    _open_launch_form(browser)
    name = _value(browser, "stTextInput", "run name")
    run_dir = project / "runs" / name
    try:
        _mouse_click(browser, _button(browser, "Start run"))
        _rerun_settled(browser)
        label, state = _picker_and_metric(browser)
        assert label.startswith(f"{name} · "), label  # the new run, not the demo run
        assert label.split(" · ")[1] == state
        deadline = time.time() + 60
        while not _enabled(browser, "Cancel"):  # the job's process has started
            assert time.time() < deadline, "the run never became cancellable"
            time.sleep(0.5)
        _mouse_click(browser, _button(browser, "Cancel"))
        seen = []
        deadline = time.time() + 60
        while time.time() < deadline:
            time.sleep(0.5)
            if browser.find_elements(By.CSS_SELECTOR, '[data-testid="stApp"][data-test-script-state="running"]'):
                continue
            label, state = _picker_and_metric(browser)
            assert label.split(" · ")[1] == state, (label, state)
            seen.append(state)
            if state == "cancelled":
                break
        browser.save_screenshot(str(ARTIFACTS / "page_pretraining_cancelled.png"))
        assert seen and seen[-1] == "cancelled", seen
        assert "running" not in seen, seen  # from the click on, never "running" again
        assert _enabled(browser, "Resume") and not _enabled(browser, "Cancel")
    finally:
        if run_dir.exists():
            jobs.cancel(run_dir, wait=30)


def _mouse_click(driver, element) -> None:
    """Scroll ``element`` into view and click it with the mouse."""
    from selenium.webdriver.common.action_chains import ActionChains

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    ActionChains(driver).move_to_element(element).pause(0.2).click().perform()
