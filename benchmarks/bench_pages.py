"""Benchmark: first-render time of every app page on the bundled data, through streamlit's AppTest.

For each page a fresh ``AppTest`` renders Home and then switches to the page; the time of that page's first
run is reported (Streamlit caches start cold in this process, so the first page also pays for opening the
prepared datasets), then a second run of the same page (warm caches). Target: first render < 3 s per page.

By default the project's own runs/ and checkpoints/ are used. ``--demo`` instead points the app at a
temporary demo project (a tiny random checkpoint, a finished run and a finished sweep) so that the
Representations, Lead regions and Sweeps pages draw their figures; the Representations page then also
pays, once, for embedding the dataset and computing its 2-D map (both cached on disk afterwards).

Usage::

    .venv/bin/python benchmarks/bench_pages.py            # the project as it is
    .venv/bin/python benchmarks/bench_pages.py --demo     # with the demo checkpoint/run/sweep
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from aclecg.app_pages import app_pages

REPO = Path(__file__).resolve().parents[1]

PAGES = [page.file for page in app_pages()]  # the pages registry, in the sidebar's order
TARGET_S = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", action="store_true", help="use a temporary demo checkpoint, run and sweep")
    args = parser.parse_args()
    if args.demo:
        import importlib.util

        spec = importlib.util.spec_from_file_location("test_app", REPO / "tests" / "test_app.py")
        test_app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(test_app)
        make_demo_project = test_app.make_demo_project

        tmp = Path(tempfile.mkdtemp(prefix="aclecg-bench-pages-"))
        make_demo_project(tmp)
        os.environ.update(
            ACLECG_RUNS=str(tmp / "runs"),
            ACLECG_CHECKPOINTS=str(tmp / "checkpoints"),
            ACLECG_UMAP_CACHE=str(tmp / "cache" / "umap"),
        )
    from streamlit.testing.v1 import AppTest

    from aclecg.data import ensure_bundled

    ensure_bundled()  # preparing the bundled data is a one-off setup step, not a page render
    print(f"{'page':36s} {'first (s)':>10s} {'again (s)':>10s}  errors")
    worst = 0.0
    t0 = time.perf_counter()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    at.run()
    home = time.perf_counter() - t0
    t0 = time.perf_counter()
    at.run()
    print(f"{'Home (app.py)':36s} {home:10.2f} {time.perf_counter() - t0:10.2f}  {len(at.exception) + len(at.error)}")
    worst = max(worst, home)
    for page in PAGES:
        t0 = time.perf_counter()
        at.switch_page(page).run()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        at.run()
        again = time.perf_counter() - t0
        worst = max(worst, first)
        print(f"{page:36s} {first:10.2f} {again:10.2f}  {len(at.exception) + len(at.error)}")
    print(f"slowest first render {worst:.2f} s (target < {TARGET_S:.0f} s): {'OK' if worst < TARGET_S else 'SLOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
