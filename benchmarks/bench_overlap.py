"""Benchmark: ``aclecg overlap`` (:func:`aclecg.overlap.find_overlap`) on two synthetic prepared datasets.

Writes two prepared-dataset folders of ``--rows`` synthetic 12-lead ECG-like rows each (100 Hz, 10 s; a random
beat shape per record and lead, a random heart rate with beat-to-beat jitter, noise and baseline wander), where B
holds ``--dupes`` copies of A's rows shifted by up to 0.4 s, rescaled and with added noise. Times the search
(fingerprints, candidates, confirmation) with ``--workers`` threads and checks that every planted copy is found at
its lag and nothing else is reported. Each dataset takes rows x 48 kB on disk (20k rows: 0.96 GB each) in
``--dir`` (default a temporary folder, removed afterwards).

Usage::

    .venv/bin/python benchmarks/bench_overlap.py                      # 20k x 20k, 2 threads (~2 GB in /tmp)
    .venv/bin/python benchmarks/bench_overlap.py --rows 4000 --workers 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from aclecg.data.cache import PreparedDataset
from aclecg.leads import LEADS
from aclecg.overlap import OverlapConfig, find_overlap

FS, T = 100.0, 1000


def synthetic_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 12, T)`` float32 ECG-like rows, z-scored per lead."""
    t = np.arange(64) / FS - 0.32
    # beat shape per record and lead: P, QRS and T waves of random amplitude, width and timing
    waves = [(-0.18, 0.025, 0.15), (0.0, 0.012, 1.0), (0.25, 0.05, 0.3)]
    shape = np.zeros((n, 12, t.size), np.float32)
    for centre, width, amp in waves:
        c = centre + rng.normal(0, 0.01, (n, 12, 1))
        w = width * rng.uniform(0.7, 1.4, (n, 12, 1))
        a = amp * rng.normal(1, 0.6, (n, 12, 1))
        shape += (a * np.exp(-((t - c) ** 2) / (2 * w**2))).astype(np.float32)
    rr = rng.uniform(0.5, 1.2, n)
    train = np.zeros((n, T), np.float32)
    for i in range(n):
        beats = np.cumsum(rr[i] * rng.normal(1, 0.04, 30)) - rng.uniform(0, rr[i])
        idx = np.floor(beats[(beats >= 0) & (beats < T / FS)] * FS).astype(int)
        train[i, idx] = 1.0
    size = T + t.size
    x = np.fft.irfft(np.fft.rfft(train, size)[:, None, :] * np.fft.rfft(shape, size), size)[..., 32 : 32 + T]
    wander = 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3, (n, 12, 1)) * np.arange(T) / FS)
    x = x + wander + rng.normal(0, 0.02, x.shape)
    x = (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)
    return x.astype(np.float32)


def write_dataset(folder: Path, name: str, signals: np.memmap | np.ndarray, seed: int) -> None:
    """A minimal prepared-dataset folder around ``signals`` (already written to ``folder / 'signals.npy'``)."""
    n = len(signals)
    rng = np.random.default_rng(seed)
    pd.DataFrame(
        {
            "record_id": [f"{name}{i:06d}" for i in range(n)],
            "patient_id": [f"{name}{i:06d}" for i in range(n)],
            "fold": rng.integers(1, 11, n),
            "split": "train",
            "source": "synthetic",
            "window": 0,
        }
    ).to_csv(folder / "records.csv", index=False)
    np.save(folder / "rpeaks.npy", np.zeros(0, np.int32))
    np.save(folder / "rpeak_offsets.npy", np.zeros(n + 1, np.int64))
    manifest = {
        "format_version": 1,
        "dataset": name,
        "format": "synthetic",
        "fs": FS,
        "seconds": T / FS,
        "n_samples": T,
        "leads": list(LEADS),
        "label_sets": {},
        "preprocessing": {},
        "counts": {"rows": n},
        "skipped": [],
        "fingerprint": "synthetic",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def build(root: Path, rows: int, dupes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write datasets ``A`` and ``B`` under ``root``; return the planted (A row, B row, shift in samples)."""
    rng = np.random.default_rng(seed)
    files = {}
    for name in ("A", "B"):
        (root / name).mkdir(parents=True, exist_ok=True)
        files[name] = np.lib.format.open_memmap(root / name / "signals.npy", "w+", np.float32, (rows, 12, T))
        for start in range(0, rows, 2000):
            files[name][start : start + 2000] = synthetic_rows(rng, min(2000, rows - start))
    a_rows = np.sort(rng.choice(rows, dupes, replace=False))
    b_rows = rng.choice(rows, dupes, replace=False)
    shifts = rng.integers(-40, 41, dupes)
    for i, j, s in zip(a_rows, b_rows, shifts):
        copy = np.roll(np.asarray(files["A"][i]), s, axis=-1) * rng.uniform(0.8, 1.2)
        files["B"][j] = copy + rng.normal(0, 0.1, copy.shape).astype(np.float32)
    for name, seed_ in (("A", 1), ("B", 2)):
        files[name].flush()
        write_dataset(root / name, name, files[name], seed_)
    return a_rows, b_rows, shifts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows of each dataset (default 20000)")
    parser.add_argument("--dupes", type=int, default=50, help="copies of A's rows planted in B (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="BLAS / FFT threads (default 2)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the datasets (kept if given)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench_overlap_"))
    try:
        t0 = time.perf_counter()
        planted = build(root, args.rows, args.dupes)
        print(f"wrote 2 x {args.rows} synthetic rows in {time.perf_counter() - t0:.1f} s ({root})")
        a, b = PreparedDataset(root / "A"), PreparedDataset(root / "B")
        result = find_overlap(a, b, OverlapConfig(workers=args.workers))
        print(result.summary())
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.extra["seconds"].items())
        print(f"{args.rows} x {args.rows} rows, {args.workers} thread(s): {result.seconds:.1f} s ({stages})")
        found = {(int(i), int(j)): lag for i, j, lag in result.pairs[["a_row", "b_row", "lag_s"]].values}
        expected = {(int(i), int(j)): s / FS for i, j, s in zip(*planted)}
        hits = [k for k in expected if k in found and abs(found[k] - expected[k]) < 0.015]
        extra = [k for k in found if k not in expected]
        print(f"planted copies found at their lag: {len(hits)}/{len(expected)}; other pairs reported: {len(extra)}")
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
