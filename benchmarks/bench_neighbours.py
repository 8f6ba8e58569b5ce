"""Benchmark: exact cosine search of :class:`aclecg.analysis.neighbours.NeighbourIndex` on synthetic embeddings.

For each index size (default 10k and 100k rows) of the shipped encoder's embedding dimension (read from
``checkpoints/acl_ecg/encoder.pt``), builds the index once and times 20 single-record queries (k = 5),
printing the build time and the median milliseconds per query. Runs in a few seconds.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_neighbours.py
    .venv/bin/python benchmarks/bench_neighbours.py --sizes 10000 --queries 50
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from aclecg.analysis.neighbours import NeighbourIndex

CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "acl_ecg" / "encoder.pt"


def embedding_dim(checkpoint: Path) -> int:
    """The embedding size of the checkpoint's encoder."""
    from aclecg.evaluation import load_source

    return int(load_source(checkpoint).encoder.embedding_dim)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    args = parser.parse_args()
    dim = embedding_dim(args.checkpoint)
    print(f"embedding dim {dim} (from {args.checkpoint.name}), k = {args.k}, torch threads {torch.get_num_threads()}")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        emb = rng.normal(size=(n, dim)).astype(np.float32)
        t0 = time.perf_counter()
        index = NeighbourIndex(emb)
        build_ms = (time.perf_counter() - t0) * 1e3
        queries = rng.normal(size=(args.queries, dim)).astype(np.float32)
        index.query(queries[:1], k=args.k)  # warm-up
        times = []
        for i in range(args.queries):
            t0 = time.perf_counter()
            index.query(queries[i : i + 1], k=args.k, exclude=[i])
            times.append((time.perf_counter() - t0) * 1e3)
        print(
            f"N = {n:>7}: build {build_ms:8.1f} ms, query median {np.median(times):7.2f} ms "
            f"(min {min(times):.2f}, max {max(times):.2f}) over {args.queries} queries"
        )


if __name__ == "__main__":
    main()
