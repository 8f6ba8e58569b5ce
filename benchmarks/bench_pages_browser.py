"""Benchmark: page render and interaction times in a real browser (headless Chromium) against the served app.

Serves the project as ``make app`` does (``aclecg app``: shipped checkpoints and the bundled data; run ``make app``'s
cache targets first so the 2-D maps and the default probe exist), opens every page twice in a fresh headless
Chromium (the first visit after the server started, then a second visit) and times a few interactions:

* Explorer: "next ▶" (the next record on the paper grid) and "Explain by region" (occlusion attribution);
* Augmentations: "new sample" (a new draw of every view);
* Representations: switching the map method to umap-learn and back to fast (issue 16's switch).

A time runs from the action to the moment the app's script state is ``notRunning`` again and stays so for 0.3 s,
polled every 20 ms, so each figure includes the front end receiving and laying out the page (plotly drawing
afterwards is not included). Targets (issue 13): first full render < 2 s, interactions < 1 s.

Needs Debian's ``chromium`` and ``chromium-driver`` and selenium (the ``dev`` extra).

Usage::

    .venv/bin/python benchmarks/bench_pages_browser.py
    .venv/bin/python benchmarks/bench_pages_browser.py --repeat 3
    .venv/bin/python benchmarks/bench_pages_browser.py --fresh-browser   # issue 31: each page as a new browser's first
    .venv/bin/python benchmarks/bench_pages_browser.py --fresh-browser --pages representations --rounds 3
    .venv/bin/python benchmarks/bench_pages_browser.py --floor           # a bare page, + a plotly or a Vega-Lite chart

Every run prints the 1/5/15-minute load averages before and after and calls the run ``idle`` or ``UNDER LOAD``
(1-minute load under half the cores or not): issue 31 asks for the figure on an idle machine and under load.
"""

from __future__ import annotations

import argparse
import os
import time

from _browser import headless_chromium, running_app  # benchmarks/ is on sys.path when a script here runs

from aclecg.app_pages import app_pages

PAGES = ["", *(page.url_path for page in app_pages())]  # Home, then the pages registry's URL paths
FIRST_RENDER_TARGET_S, INTERACTION_TARGET_S = 2.0, 1.0


#: Installed before an action: remembers whether the script state turned "running" at any moment, so a rerun that
#: starts and finishes between two polls still counts as seen.
WATCH_RUNNING = (
    "window.__sawRunning = false;"
    "const app = document.querySelector('[data-testid=\"stApp\"]');"
    "if (window.__runWatch) window.__runWatch.disconnect();"
    "window.__runWatch = new MutationObserver(() => {"
    "  if (app.getAttribute('data-test-script-state') === 'running') window.__sawRunning = true; });"
    "window.__runWatch.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});"
)


def _state(driver) -> str | None:
    return driver.execute_script(
        "const a = document.querySelector('[data-testid=\"stApp\"]');"
        "return a ? a.getAttribute('data-test-script-state') : null;"
    )


def _settle(driver, start: float, timeout: float = 240.0, seen_running: bool = False, page_load: bool = False) -> float:
    """Seconds from ``start`` until the script is idle for 0.3 s.

    After a click the script must have been seen running first (by a poll, or by the observer ``WATCH_RUNNING``
    installs). After a page load a fast script may have finished
    before the first poll, so there the page's title (``h1``) being drawn with the script idle counts instead.
    """
    calm_since = None
    while time.perf_counter() - start < timeout:
        state = _state(driver)
        now = time.perf_counter()
        if state == "running":
            seen_running, calm_since = True, None
        elif not seen_running and not page_load and driver.execute_script("return window.__sawRunning === true;"):
            seen_running = True
        elif state == "notRunning" and (seen_running or (page_load and _has_title(driver))):
            calm_since = calm_since or now
            if now - calm_since >= 0.3:
                return calm_since - start
        time.sleep(0.02)
    raise TimeoutError(f"the page was still running after {timeout} s")


def _has_title(driver) -> bool:
    return bool(driver.execute_script("return document.querySelector('[data-testid=\"stMain\"] h1') !== null;"))


def _click(driver, text: str) -> float:
    from selenium.webdriver.common.by import By

    button = next(b for b in driver.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == text)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    driver.execute_script(WATCH_RUNNING)
    start = time.perf_counter()
    driver.execute_script("arguments[0].click();", button)
    return _settle(driver, start)


def _choose_radio(driver, label: str) -> float:
    from selenium.webdriver.common.by import By

    labels = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stRadio"] label')
    option = next(e for e in labels if e.text.strip() == label)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", option)
    driver.execute_script(WATCH_RUNNING)
    start = time.perf_counter()
    driver.execute_script("arguments[0].click();", option)
    return _settle(driver, start)


def _visit(driver, url: str) -> float:
    start = time.perf_counter()
    driver.get(url)
    return _settle(driver, start, page_load=True)


#: Installed in every new document before its scripts run (``Page.addScriptToEvaluateOnNewDocument``): on every DOM
#: change it checks two states and stamps, in ``performance.now()`` milliseconds, when each last became true
#: (``null`` while false): ``__idleAt``, the script idle with the page's title drawn; ``__drawnAt``, besides that no
#: element of the main area still a placeholder (Streamlit draws a skeleton while an element's code loads: a
#: chart's, a widget's), every plotly chart's SVG drawn and every image loaded. Stamped in the page, so the
#: figure does not depend on how often the benchmark polls (polling a busy page delays what it measures).
OBSERVER = """
(() => {
  window.__idleAt = null; window.__drawnAt = null;
  const check = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    const m = document.querySelector('[data-testid="stMain"]');
    const idle = !!(app && m && app.getAttribute('data-test-script-state') === 'notRunning' && m.querySelector('h1'));
    const drawn = idle && !m.querySelector('[data-testid="stSkeleton"]')
      && Array.from(m.querySelectorAll('[data-testid="stPlotlyChart"]')).every(c => c.querySelector('svg.main-svg'))
      && Array.from(m.querySelectorAll('[data-testid="stVegaLiteChart"]'))
        .every(c => c.querySelector('canvas, svg.marks'))
      && Array.from(m.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0);
    const now = performance.now();
    window.__idleAt = idle ? (window.__idleAt ?? now) : null;
    window.__drawnAt = drawn ? (window.__drawnAt ?? now) : null;
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true});
  document.addEventListener('load', check, true);  // an image finishing its load changes no DOM node
})();
"""


def _open_drawn(driver, url: str, timeout: float = 60.0) -> tuple[float, float]:
    """Open ``url`` in ``driver``: (seconds until the script is idle with the title drawn, seconds until besides
    every element, chart and image is drawn), from the request, as :data:`OBSERVER` stamps them in the page. Each
    state must hold for 0.3 s of the benchmark's clock (a rerun resets it)."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVER})
    start = time.time()
    driver.get(url)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        origin, idle, drawn = driver.execute_script(
            "return [performance.timeOrigin, window.__idleAt, window.__drawnAt];"
        )
        if idle is not None and drawn is not None and time.time() * 1000 - (origin + drawn) >= 300:
            return (origin + idle) / 1000 - start, (origin + drawn) / 1000 - start
        time.sleep(0.1)
    raise TimeoutError(f"{url} was not drawn after {timeout} s")


def load_line(when: str) -> str:
    """The 1/5/15-minute load averages and the cores: a figure is an idle one only when the load is well under the
    cores (the docs say which figures were measured idle and which under load)."""
    one, five, fifteen = os.getloadavg()
    cores = len(os.sched_getaffinity(0))
    verdict = "idle" if one < 0.5 * cores else "UNDER LOAD"
    return f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {cores} cores: {verdict}"


def _first_open(url: str):
    """``url`` as the first page of a new headless Chromium: (the browser, seconds until the script is idle, seconds
    until every chart and image is drawn)."""
    driver = headless_chromium()
    time.sleep(2.0)  # let the new browser's own start-up finish before timing
    first, drawn = _open_drawn(driver, url)
    return driver, first, drawn


def fresh_browser(pages: list[str] | None = None, rounds: int = 1) -> int:
    """Each page (``pages``, default all) as the first page of a new headless Chromium (a throw-away profile:
    nothing cached), ``rounds`` times, after the server's own first visit to Home: the time until the script is
    idle with the page's title drawn, then until every chart is drawn, and the same page again in that browser."""
    with running_app() as url:
        print(load_line("before") + f"; server on {url}")
        warm = headless_chromium()
        _visit(warm, f"{url}/")  # the server's first session, as in main()
        warm.quit()
        print(f"{'open in a new browser':<40} {'script idle':>12} {'drawn':>8} {'again':>8}  target")
        slowest = 0.0
        for page in [p for _ in range(rounds) for p in (pages or PAGES)]:
            driver, first, drawn = _first_open(f"{url}/{page}")
            again = _visit(driver, f"{url}/{page}")
            driver.quit()
            slowest = max(slowest, drawn)
            ok = "ok" if drawn < FIRST_RENDER_TARGET_S else f"over {FIRST_RENDER_TARGET_S:g} s"
            print(f"{page or 'home':<40} {first:12.2f} {drawn:8.2f} {again:8.2f}  {ok}")
        print(f"slowest first open (drawn): {slowest:.2f} s (target < {FIRST_RENDER_TARGET_S:g} s)")
    print(load_line("after"))
    return 0


#: The floor under every page: a bare Streamlit script, with one three-point plotly chart, without (``?chart=0``), or
#: with a 1,000-point Vega-Lite map that a click selects from (``?chart=vega``, the Representations page's map).
FLOOR_SCRIPT = """import streamlit as st

st.title("floor")
chart = st.query_params.get("chart", "1")
if chart == "1":
    import plotly.graph_objects as go

    st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2])), key="c")
elif chart == "vega":
    import altair as alt
    import numpy as np
    import pandas as pd

    xy = np.random.default_rng(0).normal(size=(1000, 2))
    points = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "record": range(1000)})
    pick = alt.selection_point(name="pick", fields=["record"], on="click")
    st.altair_chart(alt.Chart(points).mark_circle().encode(x="x", y="y").add_params(pick), on_select="rerun", key="v")
"""


FLOOR_PAGES = (("0", "title only"), ("1", "title + one plotly chart"), ("vega", "title + 1,000-point Vega-Lite map"))


def floor(repeat: int) -> int:
    """What any page costs a new browser before the app adds anything: a bare Streamlit script (a title) and the
    same with one tiny plotly chart or a 1,000-point Vega-Lite map, each the first page of a new headless Chromium,
    ``repeat`` times."""
    import tempfile
    from pathlib import Path

    script = Path(tempfile.mkdtemp(prefix="aclecg-floor-")) / "floor.py"
    script.write_text(FLOOR_SCRIPT)
    with running_app(bare_script=script) as url:
        print(load_line("before") + f"; server on {url}")
        warm = headless_chromium()
        _visit(warm, f"{url}/?chart=0")
        warm.quit()
        print(f"{'bare Streamlit page, new browser':<40} {'script idle':>12} {'drawn':>8}")
        for _ in range(repeat):
            for chart, what in FLOOR_PAGES:
                driver, first, drawn = _first_open(f"{url}/?chart={chart}")
                driver.quit()
                print(f"{what:<40} {first:12.2f} {drawn:8.2f}")
    print(load_line("after"))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="times each interaction is repeated (default 2)")
    parser.add_argument(
        "--fresh-browser",
        action="store_true",
        help="instead: open each page as the first page of a new browser (a deep link with nothing cached)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="instead: the floor, a bare Streamlit page with and without one tiny plotly chart in a new browser",
    )
    parser.add_argument("--pages", help="--fresh-browser: only these pages (URL paths, comma-separated; home is '')")
    parser.add_argument("--rounds", type=int, default=1, help="--fresh-browser: times each page is opened (1)")
    args = parser.parse_args()
    if args.floor:
        return floor(max(args.repeat, 1) + 1)
    if args.fresh_browser:
        pages = [p.strip() for p in args.pages.split(",")] if args.pages is not None else None
        return fresh_browser(pages, max(args.rounds, 1))
    with running_app() as url:
        driver = headless_chromium()
        rows: list[tuple[str, float, float]] = []
        print(load_line("before") + f"; server on {url}")
        for page in PAGES:
            first = _visit(driver, f"{url}/{page}")
            second = _visit(driver, f"{url}/{page}")
            rows.append((f"open {page or 'home'} (1st visit / 2nd visit)", first, second))
        _visit(driver, f"{url}/explorer")
        for _ in range(args.repeat):
            rows.append(("explorer: next record", _click(driver, "next ▶"), 0.0))
        explain = [_click(driver, "Explain by region") for _ in range(args.repeat)]
        rows.append(("explorer: explain by region (1st / again)", explain[0], explain[-1]))
        _visit(driver, f"{url}/augmentations")
        for _ in range(args.repeat):
            rows.append(("augmentations: new sample", _click(driver, "new sample"), 0.0))
        _visit(driver, f"{url}/representations")
        for _ in range(args.repeat):
            rows.append(("representations: method -> umap-learn", _choose_radio(driver, "umap-learn"), 0.0))
            rows.append(("representations: method -> fast", _choose_radio(driver, "fast"), 0.0))
        driver.quit()
    print(f"{'what':<58} {'seconds':>8} {'again':>8}")
    for what, a, b in rows:
        print(f"{what:<58} {a:8.2f} {b:8.2f}" if b else f"{what:<58} {a:8.2f}")
    print(load_line("after"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
