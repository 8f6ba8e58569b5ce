"""Benchmark: the cost of one full garbage collection in the app's server process, stage by stage.

Streamlit calls ``gc.collect(2)`` after every script run (``runner.postScriptGC``, on by default), i.e. after each
page open and each click, while the finished page waits to reach the browser. This script builds the heap the
server has, as ``aclecg app`` builds it, and times a full collection at each stage, side by side in one process:

1. after importing the pages' libraries (``aclecg.commands.app.warm_up``);
2. after compiling umap-learn's numba kernels (what the Representations page's warm-up thread does);
3. after ``gc.freeze()`` (``aclecg.commands.app.freeze_heap``, what ``aclecg app`` does before serving).

Usage::

    .venv/bin/python benchmarks/bench_gc.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time


def _collect_seconds(repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        gc.collect(2)
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="collections timed at each stage (default 5)")
    args = parser.parse_args()
    from aclecg.analysis import umap_learn
    from aclecg.commands import app

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'stage':<46} {'objects':>9} {'median s':>9} {'max s':>7}")

    def row(stage: str) -> None:
        median, worst = _collect_seconds(args.repeat)
        print(f"{stage:<46} {len(gc.get_objects()):>9} {median:9.3f} {worst:7.3f}")

    app.warm_up()
    row("pages' libraries imported")
    umap_learn.warm_up(background=False)
    row("+ umap-learn's kernels compiled")
    frozen = app.freeze_heap()
    row(f"+ gc.freeze() ({frozen} objects frozen)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
