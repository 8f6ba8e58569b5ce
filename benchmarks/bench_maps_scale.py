"""Benchmark: how the fast 2-D map and ``neighbours --evaluate`` grow with the number of records.

For each size (default 1,000, 5,000 and 21,837 records, PTB-XL's full size) a fresh subprocess runs one task and
reports its wall time, CPU time and peak memory (the rise of ``ru_maxrss`` over the process's level after its
imports and inputs, so the interpreter, torch and the inputs themselves are not counted). The table ends with the
growth exponent between consecutive sizes, ``log(t2 / t1) / log(n2 / n1)`` (1 = linear, 2 = quadratic).

Tasks
* ``map``: :func:`aclecg.analysis.embed2d.fit_map` with the default configuration (exact neighbours up to
  ``EXACT_KNN_MAX`` points, approximate above), its trustworthiness at k = 10 and, for approximate maps, the
  recall of the exact neighbours; with ``--compare-exact`` the same map with exact neighbours is computed after the
  measurement, so the approximation's cost in quality (trustworthiness) and its gain in time sit side by side.
* ``neighbours``: :func:`aclecg.analysis.neighbours_eval.evaluate_retrieval` as ``neighbours --evaluate`` runs it: one
  embedding source plus the raw-signal baseline and the chance row, k = 1, 5, 10, on a dataset with the prepared
  layout (signals memory-mapped from a ``.npy`` of shape (n, 12, 1000), PTB-XL's 80/10/10 split, 5 classes).

Data are synthetic (speed and memory only, never reported as results): a 64-d Gaussian mixture of 16 components,
each spread over its own random 8-d subspace, and random signals. The inputs are written to a temporary folder by
the parent process before each child starts, so generating them does not count.

Run the full sizes on an idle machine (21,837 records need about 1.2 GB of disk for the signals and a few GB of
memory); on a shared machine check only that it works::

    .venv/bin/python benchmarks/bench_maps_scale.py                          # 1k, 5k, 21.8k; both tasks
    .venv/bin/python benchmarks/bench_maps_scale.py --sizes 1000 5000        # quick check
    .venv/bin/python benchmarks/bench_maps_scale.py --tasks map --compare-exact
    .venv/bin/python benchmarks/bench_maps_scale.py --tasks map --compare-exact --exact-max 2000 --sizes 1000 5000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_SIZES = (1000, 5000, 21837)
N_CLASSES = 5


def mixture(n: int, dim: int = 64, components: int = 16, rank: int = 8, seed: int = 0) -> np.ndarray:
    """A Gaussian mixture: ``components`` clusters, each spread over its own random ``rank``-d subspace."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(components, dim))
    bases = rng.normal(size=(components, rank, dim)) / math.sqrt(rank)
    which = rng.integers(0, components, n)
    latent = rng.normal(size=(n, rank))
    x = centres[which] + np.einsum("nr,nrd->nd", latent, bases[which]) + 0.1 * rng.normal(size=(n, dim))
    return x.astype(np.float32)


def write_inputs(folder: Path, n: int, dim: int, task: str) -> None:
    """The child's inputs: embeddings, and for ``neighbours`` memory-mapped signals and a record table."""
    np.save(folder / "emb.npy", mixture(n, dim))
    if task != "neighbours":
        return
    rng = np.random.default_rng(1)
    signals = np.lib.format.open_memmap(folder / "signals.npy", mode="w+", dtype=np.float32, shape=(n, 12, 1000))
    for start in range(0, n, 1024):
        stop = min(n, start + 1024)
        signals[start:stop] = rng.standard_normal((stop - start, 12, 1000), dtype=np.float32)
    signals.flush()
    del signals
    split = rng.choice(["train", "val", "test"], size=n, p=[0.8, 0.1, 0.1])
    labels = (rng.random((n, N_CLASSES)) < 0.25).astype(np.float32)
    labels[np.arange(n), rng.integers(0, N_CLASSES, n)] = 1.0  # every record has a label
    np.save(folder / "split.npy", split.astype("U5"))
    np.save(folder / "labels.npy", labels)


class _Dataset:
    """What :func:`evaluate_retrieval` reads from a prepared dataset: signals, a split column, labels."""

    def __init__(self, folder: Path):
        import pandas as pd

        self.signals = np.load(folder / "signals.npy", mmap_mode="r")
        self.records = pd.DataFrame({"split": np.load(folder / "split.npy")})
        self._y = np.load(folder / "labels.npy")

    def labels(self, label_set: str, protocol: str = "multilabel"):
        keep = np.flatnonzero(self._y.sum(1) >= 1)
        return keep, self._y[keep], [f"c{i}" for i in range(N_CLASSES)]


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def child(task: str, folder: Path, compare_exact: bool, exact_max: int | None) -> dict:
    """Run one task on the inputs in ``folder``; returns the measurements."""
    import torch  # noqa: F401  (imported before the baseline, as in the app and the CLI)

    from aclecg.analysis import embed2d, neighbours_eval

    if exact_max is not None:
        embed2d.EXACT_KNN_MAX = exact_max

    emb = np.load(folder / "emb.npy")
    out: dict = {"n": int(emb.shape[0])}
    if task == "map":
        base = _maxrss_mb()
        wall, cpu = time.perf_counter(), time.process_time()
        fitted = embed2d.fit_map(emb, embed2d.UMAPConfig(seed=0))
        out.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu, peak_mb=_maxrss_mb() - base)
        out.update(trust=fitted.trustworthiness, knn=fitted.knn, recall=fitted.knn_recall)
        if compare_exact and fitted.knn != "exact":
            wall = time.perf_counter()
            exact = embed2d.fit_map(emb, embed2d.UMAPConfig(seed=0), knn="exact")
            out.update(exact_wall=time.perf_counter() - wall, exact_trust=exact.trustworthiness)
        return out
    data = _Dataset(folder)
    neighbours_eval._embeddings = lambda source, dataset, cache_dir: emb  # the "checkpoint" gives these
    base = _maxrss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    table = neighbours_eval.evaluate_retrieval(
        [("synthetic", object()), (neighbours_eval.RAW_SIGNAL, None)], data, label_set="toy", k=(1, 5, 10)
    )
    out.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu, peak_mb=_maxrss_mb() - base)
    out["precision@5"] = float(table[(table["name"] == "synthetic") & (table["k"] == 5)]["precision"].iloc[0])
    return out


def _exponent(rows: list[dict], key: str, i: int) -> str:
    a, b = rows[i - 1], rows[i]
    if a[key] <= 0 or b[key] <= 0:
        return "-"
    return f"{math.log(b[key] / a[key]) / math.log(b['n'] / a['n']):.2f}"


def report(task: str, rows: list[dict]) -> None:
    print(f"\n{task}")
    head = f"{'n':>7} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'exp wall':>8} {'exp cpu':>8} {'exp mem':>8}  notes"
    print(head)
    for i, r in enumerate(rows):
        exps = [_exponent(rows, key, i) if i else "" for key in ("wall", "cpu", "peak_mb")]
        if task == "map":
            notes = f"{r['knn']} kNN, trustworthiness {r['trust']:.4f}"
            if r.get("recall") is not None:
                notes += f", neighbour recall {r['recall']:.3f}"
            if "exact_trust" in r:
                notes += f"; exact kNN: {r['exact_wall']:.2f} s wall, trustworthiness {r['exact_trust']:.4f}"
        else:
            notes = f"precision@5 {r['precision@5']:.3f}"
        print(
            f"{r['n']:>7} {r['wall']:>8.2f} {r['cpu']:>8.2f} {r['peak_mb']:>8.1f} "
            f"{exps[0]:>8} {exps[1]:>8} {exps[2]:>8}  {notes}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--tasks", nargs="+", choices=("map", "neighbours"), default=["map", "neighbours"])
    parser.add_argument("--dim", type=int, default=64, help="embedding width (default 64)")
    parser.add_argument("--compare-exact", action="store_true", help="also fit approximate-kNN maps exactly")
    parser.add_argument(
        "--exact-max", type=int, default=None, help="map sizes above this use approximate kNN (default: the library's)"
    )
    parser.add_argument("--child", choices=("map", "neighbours"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.compare_exact, args.exact_max)))
        return 0
    load = os.getloadavg()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f}, "
        f"python {platform.python_version()}; synthetic {args.dim}-d data (speed and memory only)"
    )
    for task in args.tasks:
        rows = []
        for n in sorted(args.sizes):
            with tempfile.TemporaryDirectory(prefix="aclecg-bench-maps-") as tmp:
                write_inputs(Path(tmp), n, args.dim, task)
                cmd = [sys.executable, __file__, "--child", task, "--folder", tmp]
                cmd += ["--compare-exact"] if args.compare_exact else []
                cmd += ["--exact-max", str(args.exact_max)] if args.exact_max is not None else []
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        report(task, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
