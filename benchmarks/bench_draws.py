"""Benchmark: the counter-based per-sample draws of pretraining (``SampleDraws``) against a ``torch.Generator``.

Usage::

    .venv/bin/python benchmarks/bench_draws.py [--batch 64] [--repeats 20] [--threads 1]

Times, interleaved on the same batch: raw uniform and normal draws of ``(B, 12, 1000)``, and the ``physio`` and
``standard`` augmentation pipelines (the baselines' ``standard`` has no Gaussian noise step; ``--noise`` adds one,
the largest draw any pipeline makes) with each random source, then the per-step cost of two views as a share of one
pretraining step of the small encoder. Per-sample draws let each torchrun process augment only its own rows
(docs/training.md); this says what they cost on one process. Minimum of ``--repeats`` (least disturbed by load);
the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import torch

from aclecg.augment import build_augmentation, make_synthetic_batch
from aclecg.augment.draws import SampleDraws, sample_keys


def _best(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _step_seconds(batch: int, repeats: int) -> float:
    """One forward + backward of two views through the small encoder (the denominator of the share)."""
    from aclecg.models import ENCODER_PRESETS, ECGEncoder

    enc = ECGEncoder(ENCODER_PRESETS["small"])
    x = torch.randn(2 * batch, 12, 1000)

    def step() -> None:
        enc.zero_grad(set_to_none=True)
        enc(x).embedding.sum().backward()

    return _best(step, max(3, repeats // 4))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--noise", action="store_true", help="add a gaussian_noise step to both pipelines")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()}; torch threads {args.threads}; batch {args.batch}")
    x, peaks = make_synthetic_batch(args.batch, fs=100, generator=torch.Generator().manual_seed(0))
    rows = torch.arange(args.batch)
    cpu = torch.device("cpu")

    def keyed() -> SampleDraws:
        return SampleDraws(sample_keys(0, 1, 1, rows))

    gen = torch.Generator().manual_seed(1)
    shape = (args.batch, 12, 1000)
    pairs = {
        "uniform (B, 12, 1000)": (lambda: torch.rand(shape, generator=gen), lambda: keyed().uniform(shape, cpu)),
        "normal (B, 12, 1000)": (lambda: torch.randn(shape, generator=gen), lambda: keyed().normal(shape, cpu)),
    }
    noise = [{"name": "gaussian_noise"}] if args.noise else []
    for preset in ("physio", "standard"):
        spec = [*build_augmentation(preset, fs=100).config(), *noise]
        aug = build_augmentation(spec, fs=100)
        pairs[f"{preset}{' + noise' if noise else ''} pipeline"] = (
            lambda aug=aug: aug(x, peaks, generator=gen),
            lambda aug=aug: aug(x, peaks, generator=keyed()),
        )
    step = _step_seconds(args.batch, args.repeats)
    print(f"{'':28} {'torch.Generator':>16} {'SampleDraws':>12} {'ratio':>6} {'extra, % of a step (2 views)':>30}")
    for name, (plain, counter) in pairs.items():
        a, b = _best(plain, args.repeats), _best(counter, args.repeats)
        extra = 100 * 2 * (b - a) / step
        print(f"{name:28} {a * 1e3:13.2f} ms {b * 1e3:9.2f} ms {b / a:6.2f} {extra:29.1f} %")
    print(f"one pretraining step of the small encoder on 2 x {args.batch} views: {step * 1e3:.0f} ms")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
