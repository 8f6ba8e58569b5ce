"""Benchmark: region attribution of one record (:func:`aclecg.analysis.attribution_eval.explain`) on the bundled
PTB-XL data.

Loads the shipped ACL-ECG encoder, takes its cached linear probe (fitted once, timed separately as the one-off
cost a first click pays) and times ``--records`` single-record attributions: 1 original + 4 regions + 12 leads =
17 windows through the encoder. Prints the probe's first-fit and cached-load times and the median seconds per
record, for each fill. The issue's target: < 1 s per record on 2 cores.

Usage::

    .venv/bin/python benchmarks/bench_attribution.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attribution.py --records 20
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "acl_ecg" / "encoder.pt"


def main() -> None:
    from aclecg import evaluation
    from aclecg.analysis.attribution_eval import cached_probe, explain
    from aclecg.data import ensure_bundled

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    args = parser.parse_args()
    ds = evaluation.open_dataset(ensure_bundled(["ptbxl"], progress=False)["ptbxl"])
    source = evaluation.load_source(args.checkpoint)
    print(f"{args.checkpoint.parent.name} on {len(ds)} PTB-XL records; torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        probe = cached_probe(source, ds, cache_dir=cache)  # embeddings of every record + the probe's L2 grid
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        cached_probe(source, ds, cache_dir=cache)
        again = time.perf_counter() - t0
    print(f"probe: first fit (with the dataset's embeddings) {first:.2f} s, cached load {again * 1e3:.1f} ms")
    rows = np.random.default_rng(0).choice(len(ds), size=args.records, replace=False)
    explain(source, probe, ds.signals[rows[:1]], ds.leads, ds.fs)  # warm-up
    for fill in ("zero", "median"):
        times = []
        for r in rows:
            t0 = time.perf_counter()
            explain(source, probe, ds.signals[int(r) : int(r) + 1], ds.leads, ds.fs, fill=fill)
            times.append(time.perf_counter() - t0)
        print(
            f"attribution, {fill} fill: median {np.median(times) * 1e3:.1f} ms per record "
            f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f}) over {len(times)} records"
        )


if __name__ == "__main__":
    main()
