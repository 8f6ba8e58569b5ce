"""Benchmark: aclecg.analysis.embed2d.fast_umap against umap-learn's defaults, for 1k and 10k points.

Prints, per size: umap-learn default wall time (numba compile paid once, in a warm-up fit before timing) and
trustworthiness, the same for fast_umap, and the speed ratio. Trustworthiness is
``sklearn.manifold.trustworthiness(x, y, n_neighbors=5)`` on (a random subset of at most ``--tw-points``
points of) the input, the same subset for both methods.

Data: embeddings of a real checkpoint when ``--checkpoint`` and a prepared dataset are given and hold enough
records; otherwise a synthetic clustered 768-d set with clear structure (10 clusters on a curved 10-d latent
manifold, random linear lift to 768-d, isotropic noise). The output says which was used. A last case runs both
methods of
``aclecg.analysis.embed2d`` (``fast`` and ``umap-learn``, same parameters) on the real embeddings the app maps by
default: the 987 bundled PTB-XL records through the shipped ACL-ECG checkpoint.

Usage::

    .venv/bin/python benchmarks/bench_umap.py                 # 1k and 10k synthetic points, then the real case
    .venv/bin/python benchmarks/bench_umap.py --sizes 1000    # quick run
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from aclecg.analysis.embed2d import fast_umap


def clustered_embeddings(n: int, d: int = 768, n_clusters: int = 10, seed: int = 0) -> np.ndarray:
    """Synthetic embeddings with cluster and within-cluster (ring) structure, lifted to ``d`` dimensions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(n_clusters, 8))
    labels = rng.integers(0, n_clusters, n)
    angle = rng.uniform(0, 3 * np.pi, n)
    latent = np.concatenate(
        [centres[labels] + rng.normal(size=(n, 8)), 3.0 * np.stack([np.cos(angle), np.sin(angle)], 1)], axis=1
    )
    lift = rng.normal(size=(latent.shape[1], d)) / np.sqrt(latent.shape[1])
    return (latent @ lift + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def real_embeddings(checkpoint: Path, data: Path, n: int) -> np.ndarray | None:
    """Embeddings of up to ``n`` records of a prepared dataset (tiled with jitter if fewer); None if unavailable."""
    try:
        import torch

        from aclecg.checkpoint import load_encoder
        from aclecg.data import PreparedDataset
    except ImportError:
        return None
    encoder, _ = load_encoder(checkpoint)
    ds = PreparedDataset(data)
    take = min(len(ds), n)
    out = []
    with torch.inference_mode():
        for start in range(0, take, 256):
            x = torch.from_numpy(np.asarray(ds.signals[start : min(start + 256, take)], dtype=np.float32))
            out.append(encoder(x).embedding.numpy())
    emb = np.concatenate(out)
    if emb.shape[0] < n:
        return None
    return emb[:n]


def trust(x: np.ndarray, y: np.ndarray, subset: np.ndarray) -> float:
    from sklearn.manifold import trustworthiness

    return float(trustworthiness(x[subset], y[subset], n_neighbors=5))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument(
        "--tw-points",
        type=int,
        default=10000,
        help="trustworthiness on at most this many points (sklearn is O(n^2) in memory)",
    )
    parser.add_argument(
        "--real-checkpoint",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "checkpoints" / "acl_ecg" / "encoder.pt",
        help="checkpoint of the real-embeddings case (default: the shipped ACL-ECG encoder)",
    )
    parser.add_argument("--no-real", action="store_true", help="skip the real-embeddings case")
    args = parser.parse_args()

    import umap  # imported here so that fast_umap's timing never includes umap-learn's import

    print(f"cpus available: {len(os.sched_getaffinity(0))}, torch threads: {__import__('torch').get_num_threads()}")
    t = time.perf_counter()
    umap.UMAP().fit_transform(clustered_embeddings(300, seed=1))
    print(f"umap-learn warm-up (numba compile, not counted): {time.perf_counter() - t:.1f} s")
    fast_umap(clustered_embeddings(300, seed=1), n_epochs=5)
    for n in args.sizes:
        x = None
        source = "synthetic clustered 768-d"
        if args.checkpoint is not None and args.data is not None:
            x = real_embeddings(args.checkpoint, args.data, n)
            if x is not None:
                source = f"real embeddings of {args.checkpoint}"
        if x is None:
            x = clustered_embeddings(n)
        rng = np.random.default_rng(0)
        subset = np.sort(rng.choice(n, size=min(n, args.tw_points), replace=False))
        t = time.perf_counter()
        y_ref = umap.UMAP().fit_transform(x)
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        y_fast = fast_umap(x)
        t_fast = time.perf_counter() - t
        tw_ref, tw_fast = trust(x, y_ref, subset), trust(x, y_fast, subset)
        print(f"n={n} d={x.shape[1]} data={source}")
        print(f"  umap-learn defaults: {t_ref:7.2f} s  trustworthiness {tw_ref:.4f}")
        print(f"  aclecg fast_umap   : {t_fast:7.2f} s  trustworthiness {tw_fast:.4f}")
        print(f"  speed-up {t_ref / t_fast:5.1f}x   trustworthiness difference {tw_fast - tw_ref:+.4f}")
    if not args.no_real:
        real_case(args.real_checkpoint)
    return 0


def real_case(checkpoint: Path) -> None:
    """The app's own case: every bundled PTB-XL record (987) embedded by a shipped checkpoint, both methods of
    aclecg.analysis.embed2d with the page's parameters (umap-learn's compile already paid by the warm-up above)."""
    from aclecg.analysis.embed2d import TRUST_K, UMAPConfig, fit_map
    from aclecg.data import PreparedDataset, ensure_bundled
    from aclecg.evaluation import cached_embeddings, load_source

    ds = PreparedDataset(ensure_bundled(["ptbxl"])["ptbxl"])
    x, _ = cached_embeddings(load_source(checkpoint), ds)
    print(
        f"n={len(x)} d={x.shape[1]} data=real embeddings of {checkpoint} on the bundled PTB-XL records "
        f"(the Representations page's default map; trustworthiness at k = {TRUST_K}, as the page shows)"
    )
    for method in ("umap-learn", "fast"):
        t = time.perf_counter()
        fitted = fit_map(x, UMAPConfig(method=method))
        print(
            f"  aclecg.analysis.embed2d method={method:10s}: {time.perf_counter() - t:7.2f} s  "
            f"trustworthiness {fitted.trustworthiness:.4f}"
        )


if __name__ == "__main__":
    sys.exit(main())
