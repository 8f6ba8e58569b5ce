"""render_warp against the definition in the Warp docstring (random warps of every kind, odd lengths, CPU blocks,
gradients), exact identities and zeros, and Physio-AUG's fast call against its planned path for many variants."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from aclecg import augment as A


def _random_warp(x: torch.Tensor, gen: torch.Generator, mode: str, n_spans: int, regions: bool) -> A.Warp:
    """A crop, ``n_spans`` spans (some unused, some past the end) and a shift, which may exceed +-T."""
    batch, n_leads, length = x.shape
    u = torch.rand(batch, 4, generator=gen, dtype=torch.float64)
    width = torch.clamp(torch.round((0.05 + 0.95 * u[:, 0]) * length), 2, length)
    width[0] = length  # sample 0: no crop
    start = torch.floor(u[:, 1] * (length - width + 1))
    step = (width - 1) / max(length - 1, 1)
    shift = torch.floor((2 * u[:, 2] - 1) * 1.5 * length).long()
    shift[1 % batch] = 0
    lo = torch.randint(-length // 4, length, (batch, n_spans), generator=gen)
    hi = lo + torch.randint(0, length // 2 + 1, (batch, n_spans), generator=gen)
    spans = torch.stack([lo, hi], dim=-1)  # lo < 0 marks an unused span
    if regions:
        leads = torch.rand(batch, n_spans, n_leads, generator=gen) < 0.5
    else:
        leads = torch.ones(batch, n_spans, n_leads, dtype=torch.bool)
    return dataclasses.replace(
        A.Warp.identity(x),
        start=start,
        step=step,
        shift=shift,
        mode=mode,
        spans=spans,
        span_leads=leads,
        has_crop=True,
        has_shift=True,
    )


def _by_definition(x: torch.Tensor, warp: A.Warp) -> np.ndarray:
    """The Warp docstring in float64 NumPy, one sample at a time."""
    signal = x.detach().double().numpy()
    batch, n_leads, length = signal.shape
    out = np.empty_like(signal)
    t = np.arange(length)
    for b in range(batch):
        src = t - int(warp.shift[b])
        outside = np.zeros(length, bool)
        if warp.mode == "circular":
            src = src % length
        else:
            if warp.mode == "zero":
                outside = (src < 0) | (src >= length)
            src = np.clip(src, 0, length - 1)
        pos = np.clip(float(warp.start[b]) + src * float(warp.step[b]), 0, length - 1)
        left = np.minimum(np.floor(pos), length - 2).astype(int)
        w = pos - left
        values = signal[b][:, left] * (1 - w) + signal[b][:, left + 1] * w
        masked = np.broadcast_to(outside, (n_leads, length)).copy()
        for (a, e), leads in zip(warp.spans[b].tolist(), warp.span_leads[b].numpy()):
            if a >= 0:
                masked[leads] |= (src >= a) & (src < e)
        out[b] = np.where(masked, 0.0, values)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", ["circular", "zero", "edge"])
@pytest.mark.parametrize("length", [2, 3, 17, 100, 1001])
def test_render_warp_follows_the_warp_definition(length, mode, dtype):
    gen = torch.Generator().manual_seed(length)
    x = torch.randn(7, 5, length, generator=gen, dtype=dtype)
    for n_spans, regions in ((0, False), (3, False), (5, True)):
        warp = _random_warp(x, gen, mode, n_spans, regions)
        y = A.render_warp(x, warp)
        assert y.shape == x.shape and y.dtype == dtype
        np.testing.assert_allclose(y.numpy(), _by_definition(x, warp), rtol=1e-6, atol=1e-6)


def test_cpu_blocks_and_the_gradient_path_equal_one_sample_at_a_time():
    """A 12 MB batch is rendered in blocks of about 2 MB on the CPU; a batch with gradients in one go. Both must
    give exactly what rendering each sample alone gives, and gradients must reach the input."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 12, 1000, generator=gen)
    warp = _random_warp(x, gen, "circular", 2, True)
    y = A.render_warp(x, warp)
    for b in (0, 1, 42, 43, 200, 255):  # either side of a block boundary
        assert torch.equal(y[b : b + 1], A.render_warp(x[b : b + 1], warp.rows(slice(b, b + 1))))
    x_grad = x[:64].clone().requires_grad_()
    y_grad = A.render_warp(x_grad, warp.rows(slice(0, 64)))
    assert torch.equal(y_grad.detach(), y[:64])
    y_grad.sum().backward()
    assert x_grad.grad is not None and torch.isfinite(x_grad.grad).all() and x_grad.grad.abs().sum() > 0


def test_identity_warp_copies_exactly_and_masks_give_exact_zeros():
    x = torch.randn(3, 12, 250)
    y = A.render_warp(x, A.Warp.identity(x))
    assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()
    x[0, 0, 10] = float("nan")
    warp = A.Warp.identity(x).with_spans(torch.tensor([[[5, 20]]] * 3), torch.ones(3, 1, 12, dtype=torch.bool))
    y = A.render_warp(x, warp)
    assert (y[:, :, 5:20] == 0).all()  # zero even where the input was NaN
    assert torch.equal(y[:, :, 20:], x[:, :, 20:])


PHYSIO_VARIANTS = [
    {},
    {"window": "pqrst", "n_cycles": [0, 3]},
    {"scope": "random_region", "n_cycles": [2, 2]},
    {"scope": "inferior", "max_shift": 0.37, "mode": "zero"},
    {"scope": "lateral", "window": "pqrst", "mode": "edge", "scale": [0.05, 0.3]},
    {"n_cycles": [0, 0], "scale": [1.0, 1.0]},
    {"n_cycles": [5, 16], "fallback_s": 0.0},
]


def _physio(variant: dict) -> A.Compose:
    crop = {"name": "random_scale_crop", **{k: v for k, v in variant.items() if k == "scale"}}
    mask = {
        "name": "cardiac_cycle_mask",
        **{k: v for k, v in variant.items() if k in ("window", "n_cycles", "scope", "fallback_s")},
    }
    shift = {"name": "temporal_shift", **{k: v for k, v in variant.items() if k in ("max_shift", "mode")}}
    return A.build_augmentation([crop, mask, shift])


@pytest.mark.parametrize("variant", PHYSIO_VARIANTS, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v) or "default")
def test_physio_fast_call_equals_forward_with_info(variant):
    """``aug(x)`` (training's path, no info) gives the views of ``forward_with_info`` and leaves the generator in
    the same state, for regular, irregular, short and peak-less records."""
    aug = _physio(variant)
    cases = [
        A.make_synthetic_batch(24, 12, 1000, irregular=0.3, generator=torch.Generator().manual_seed(1)),
        A.make_synthetic_batch(9, 12, 250, bpm=(40, 180), generator=torch.Generator().manual_seed(2)),
    ]
    x, rp = cases[0]
    cases += [(x, None), (x, rp[:, :1]), (x, torch.full((24, 3), -1))]
    for x, rp in cases:
        for seed in range(2):
            fast_gen, planned_gen = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
            fast = aug(x, rp, fast_gen)
            planned, _ = aug.forward_with_info(x, rp, planned_gen)
            assert torch.equal(fast, planned)
            assert torch.equal(fast_gen.get_state(), planned_gen.get_state())
