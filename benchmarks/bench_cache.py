"""Per-epoch time: reading every PTB-XL record with wfdb (+ the same preprocessing) vs the memmapped cache.

    .venv/bin/python benchmarks/bench_cache.py [--batch-size 256] [--repeats 3]

Arm A ("raw"): for each of the bundled 987 PTB-XL records, ``wfdb.rdrecord`` then the preprocessing that
``prepare`` applies (canonical lead order, band-pass, z-score; R-peaks as well), i.e. what a data loader
without a cache does every epoch. Arm B ("cache"): one shuffled pass over the prepared dataset in batches of
``--batch-size`` with ``PreparedDataset.batch`` (signals + padded R-peaks). Prints both and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from aclecg.data import BUNDLED_RAW_DIR, PrepareConfig, PreparedDataset, prepare_dataset
from aclecg.data.prepare import make_reader, process_record


def raw_epoch(src: Path) -> float:
    reader = make_reader("ptbxl", src)
    items, _ = reader.locate()
    cfg = PrepareConfig()
    start = time.perf_counter()
    for i, item in enumerate(items):
        process_record(reader, item, i, cfg)
    return time.perf_counter() - start


def cache_epoch(ds: PreparedDataset, batch_size: int, seed: int) -> float:
    order = np.random.default_rng(seed).permutation(len(ds))
    start = time.perf_counter()
    for k in range(0, len(order), batch_size):
        x, r = ds.batch(order[k : k + batch_size])
        x.sum()  # touch the data
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    src = BUNDLED_RAW_DIR / "ptb-xl"
    with tempfile.TemporaryDirectory() as tmp:
        prepare_dataset(src, Path(tmp) / "ptbxl", "ptbxl", progress=False)
        ds = PreparedDataset(Path(tmp) / "ptbxl")
        raw = min(raw_epoch(src) for _ in range(args.repeats))
        cache_epoch(ds, args.batch_size, 1000)  # warm the page cache, as every epoch after the first
        cached = min(cache_epoch(ds, args.batch_size, s) for s in range(args.repeats))
        print(f"records: {len(ds)} (PTB-XL, 100 Hz, 10 s); best of {args.repeats}")
        print(f"raw wfdb + preprocessing : {raw:8.3f} s/epoch")
        print(f"memmapped cache (B={args.batch_size}) : {cached:8.4f} s/epoch")
        print(f"ratio                    : {raw / cached:8.1f}x")


if __name__ == "__main__":
    main()
