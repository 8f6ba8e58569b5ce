"""Benchmark: batched Physio-AUG vs a straightforward per-sample NumPy loop doing the same work.

Usage::

    .venv/bin/python benchmarks/bench_augment.py [--batch 256] [--repeats 10] [--threads 2 1]

For each torch thread count, times on the same batch, interleaved: the batched torch pipeline (crop, cycle mask
and shift rendered in one pass) and the per-sample NumPy loop; prints the speed-up (target: batched >= 20x faster
on CPU). Then, when ``aclecg.models`` is importable, the time of one pretraining step (forward + backward of two
views through ``ECGEncoder(ENCODER_PRESETS["small"])``) and the augmentation cost (two views) as a percentage of it
(target < 10 %).

The NumPy functions below (``ref_*``) are also the reference implementation that ``tests/test_augment.py`` checks the
batched code against, for fixed random parameters.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# ----------------------------------------------------------------------------------------------------------------
# per-sample NumPy reference (one record at a time: x (L, T), peaks a 1-D array of valid positions)
# ----------------------------------------------------------------------------------------------------------------


def ref_crop(x: np.ndarray, peaks: np.ndarray, start: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``[start, start + width)`` and resample to ``T`` with ``np.interp``; map the peaks (halves round up)."""
    n_leads, length = x.shape
    step = (width - 1) / (length - 1)
    pos = start + np.arange(length) * step
    grid = np.arange(length)
    y = np.stack([np.interp(pos, grid, x[lead]) for lead in range(n_leads)])
    kept = peaks[(peaks >= start) & (peaks <= start + width - 1)]
    mapped = np.clip(((kept - start) * 2 * (length - 1) + (width - 1)) // (2 * (width - 1)), 0, length - 1)
    return y, np.sort(mapped)


def ref_cycles(peaks: np.ndarray, length: int, window: str, pre: int, post: int) -> list[tuple[int, int, int]]:
    """Candidate cycles ``(index, start, end)`` of one record, in the definition of ``CardiacCycleMask``."""
    out = []
    if window == "rr":
        for k in range(len(peaks) - 1):
            out.append((k, int(peaks[k]), int(peaks[k + 1])))
        return out
    for k, r in enumerate(peaks):
        lo = r - pre if k == 0 else max(r - pre, peaks[k - 1] + 1)
        hi = min(r + post + 1, length)
        if k + 1 < len(peaks):
            hi = min(hi, peaks[k + 1])
        out.append((k, int(max(lo, 0)), int(hi)))
    return out


def ref_cycle_mask(
    x: np.ndarray,
    peaks: np.ndarray,
    count: int,
    keys: np.ndarray,
    fallback_u: float,
    lead_mask: np.ndarray,
    window: str = "rr",
    pre: int = 25,
    post: int = 45,
    fill: str = "zero",
    fallback_len: int = 80,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Mask ``count`` cycles (those with the smallest ``keys``) or one fallback span; return ``(y, spans)``."""
    length = x.shape[1]
    cycles = ref_cycles(peaks, length, window, pre, post)
    spans: list[tuple[int, int]] = []
    if cycles:
        ranked = sorted(cycles, key=lambda c: keys[c[0]])
        spans = [(s, e) for _, s, e in ranked[:count]]
    elif count > 0:
        span = min(fallback_len, length)
        start = min(int(np.floor(fallback_u * (length - span + 1))), length - span)
        spans = [(start, start + span)]
    y = x.copy()
    if fill == "zero":
        value = np.zeros((x.shape[0],), dtype=x.dtype)
    else:  # lower median, as torch.median
        value = np.sort(x, axis=1)[:, (length - 1) // 2]
    for s, e in spans:
        for lead in np.flatnonzero(lead_mask):
            y[lead, s:e] = value[lead]
    return y, sorted(spans)


def ref_shift(x: np.ndarray, peaks: np.ndarray, shift: int, mode: str = "circular") -> tuple[np.ndarray, np.ndarray]:
    """Delay by ``shift`` samples (negative = earlier)."""
    length = x.shape[1]
    if mode == "circular":
        return np.roll(x, shift, axis=1), np.sort((peaks + shift) % length)
    y = np.empty_like(x)
    for t in range(length):
        src = t - shift
        if 0 <= src < length:
            y[:, t] = x[:, src]
        else:
            y[:, t] = 0.0 if mode == "zero" else x[:, min(max(src, 0), length - 1)]
    moved = peaks + shift
    return y, moved[(moved >= 0) & (moved < length)]


def ref_median_rr(peaks: np.ndarray, default: float) -> float:
    if len(peaks) < 2:
        return default
    diffs = np.sort(np.diff(peaks))
    return float(diffs[(len(diffs) - 1) // 2])


def numpy_physio_loop(
    x: np.ndarray,
    rpeaks: np.ndarray,
    rng: np.random.Generator,
    fs: float = 100.0,
    scale: Sequence[float] = (0.5, 1.0),
    n_cycles: Sequence[int] = (1, 2),
) -> np.ndarray:
    """Physio-AUG (crop -> cycle mask -> circular shift by up to the median RR) one record at a time."""
    out = np.empty_like(x)
    length = x.shape[2]
    for b in range(x.shape[0]):
        peaks = rpeaks[b][rpeaks[b] >= 0]
        width = int(np.clip(np.round(rng.uniform(*scale) * length), 2, length))
        start = int(rng.integers(0, length - width + 1))
        y, peaks = ref_crop(x[b], peaks, start, width)
        count = int(rng.integers(n_cycles[0], n_cycles[1] + 1))
        keys = rng.random(max(len(peaks) - 1, 0))
        y, _ = ref_cycle_mask(
            y, peaks, count, keys, rng.random(), np.ones(x.shape[1], bool), fallback_len=int(round(0.8 * fs))
        )
        limit = int(min(ref_median_rr(peaks, fs), length - 1))
        y, _ = ref_shift(y, peaks, int(rng.integers(-limit, limit + 1)))
        out[b] = y
    return out


# ----------------------------------------------------------------------------------------------------------------
# benchmark
# ----------------------------------------------------------------------------------------------------------------


def _timeit(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.min(times))  # the minimum is the least disturbed by other processes on a shared machine


def _load_batch(batch: int, seed: int) -> tuple[Any, Any, float, str]:
    """Signals and R-peaks from the bundled prepared data when available, else a synthetic 60-100 bpm rhythm."""
    import torch

    from aclecg.augment import make_synthetic_batch

    try:
        from aclecg.data import BUNDLED_DIR, PreparedDataset

        ds = PreparedDataset(BUNDLED_DIR)
        idx = np.arange(batch) % len(ds)
        x = torch.from_numpy(np.asarray(ds.signals[idx], dtype=np.float32))
        rp = torch.from_numpy(ds.rpeaks_padded(idx, max_peaks=32)).long()
        if x.shape[1:] == (12, 1000):
            return x, rp, float(ds.fs), f"bundled prepared data ({len(ds)} records, tiled)"
    except Exception:
        pass
    x, rp = make_synthetic_batch(
        batch, 12, 1000, fs=100.0, bpm=(60.0, 100.0), generator=torch.Generator().manual_seed(seed)
    )
    return x, rp, 100.0, "synthetic rhythm, 60-100 bpm at 100 Hz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10, help="interleaved rounds (default 10)")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[os.cpu_count() or 1, 1],
        help="torch.set_num_threads values to time, first one also for the step (default: CPUs, 1)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-step", action="store_true", help="skip timing the pretraining step")
    args = parser.parse_args(argv)

    import torch

    from aclecg.augment import build_augmentation

    x, rp, fs, source = _load_batch(args.batch, args.seed)
    print(f"batch {tuple(x.shape)} from {source}; torch {torch.__version__}; {os.cpu_count()} CPUs")
    aug = build_augmentation("physio", fs=fs)
    gen = torch.Generator().manual_seed(args.seed)
    x_np, rp_np = x.numpy(), rp.numpy()
    rng = np.random.default_rng(args.seed)

    t_aug = {}
    for threads in dict.fromkeys(args.threads):
        torch.set_num_threads(threads)
        # interleave the two so that load from other processes hits both alike; keep each one's minimum
        t_batched, t_numpy = float("inf"), float("inf")
        with torch.no_grad():
            for _ in range(args.repeats):
                t_batched = min(t_batched, _timeit(lambda: aug(x, rp, generator=gen), 3))
                t_numpy = min(t_numpy, _timeit(lambda: numpy_physio_loop(x_np, rp_np, rng, fs=fs), 1))
        t_aug[threads] = t_batched
        print(
            f"[torch threads={threads}, load average {os.getloadavg()[0]:.1f}] NumPy per-sample loop "
            f"{t_numpy * 1e3:.2f} ms / batch; Physio-AUG batched {t_batched * 1e3:.2f} ms / batch: speed-up "
            f"{t_numpy / t_batched:.1f}x (target >= 20x)"
        )
    torch.set_num_threads(args.threads[0])
    t_torch = t_aug[args.threads[0]]

    # where the time goes: a plain copy of the batch (memory-bandwidth floor for writing the output) and deriving
    # the parameters without rendering
    from aclecg.augment import sanitize_rpeaks

    def plan_only() -> None:
        peaks = sanitize_rpeaks(rp, x)
        for i, part in enumerate(aug.steps):
            need = any(later.reads_rpeaks for later in aug.steps[i + 1 :])
            peaks = part.prepare(x, peaks, gen, detail=False, need_peaks=need)[2]

    t_copy = min(_timeit(lambda: x.clone(), 3) for _ in range(args.repeats))
    t_plan = min(_timeit(plan_only, 3) for _ in range(args.repeats))
    print(
        f"[torch threads={args.threads[0]}] for scale: copying the batch {t_copy * 1e3:.2f} ms; deriving "
        f"Physio-AUG's parameters with torch ops (no rendering) {t_plan * 1e3:.2f} ms"
    )

    if args.no_step:
        return 0
    try:
        from aclecg.models import ENCODER_PRESETS, ECGEncoder
    except ImportError as exc:
        print(f"pretraining step: skipped (aclecg.models not importable: {exc})")
        return 0
    encoder = ECGEncoder(ENCODER_PRESETS["small"])
    optim = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    v1, v2 = aug(x, rp, generator=gen), aug(x, rp, generator=gen)

    def train_step() -> None:
        optim.zero_grad(set_to_none=True)
        e1, e2 = encoder(v1).embedding, encoder(v2).embedding
        loss = 2 - 2 * torch.nn.functional.cosine_similarity(e1, e2, dim=-1).mean()
        loss.backward()
        optim.step()

    t_step = _timeit(train_step, 2)
    print(f"pretraining step (2 views, small encoder, fwd+bwd+Adam): {t_step * 1e3:8.1f} ms")
    print(
        f"augmentation of 2 views ({args.threads[0]} threads) = {100 * 2 * t_torch / t_step:.2f} % of a step "
        f"(target < 10 %); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
