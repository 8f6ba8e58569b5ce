"""Losses stay in float32 under autocast: bf16 inputs under CPU bf16 autocast give the float32 result.

Tolerance: the loss of bf16 inputs computed under autocast must equal the float32 loss of the *same* (bf16-rounded)
inputs to rtol 1e-5 / atol 1e-6, i.e. the only rounding left is that of the inputs themselves. Without the float32
guard, Barlow Twins' on-diagonal term near convergence is off by several times and NT-Xent at tau = 0.1 by ~10 %.
"""

from __future__ import annotations

import pytest
import torch

from aclecg.methods import create_method, list_methods
from aclecg.methods.losses import (
    acl_ecg_loss,
    barlow_twins_loss,
    barlow_twins_terms,
    byol_loss,
    dla_loss,
    dlc_loss,
    dlc_terms,
    lcd_loss,
    lcd_terms,
    lead_aligned_instance_loss,
    lead_assignment_loss,
    moco_queue_loss,
    moco_v3_loss,
    nt_xent,
    region_nt_xent,
    simsiam_loss,
    vicreg_loss,
    vicreg_terms,
)

RTOL, ATOL = 1e-5, 1e-6


def _pair(*shape: int, noise: float = 0.05, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two bf16 tensors close to each other (as two views of a well-trained encoder are)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(*shape, generator=gen)
    b = a + noise * torch.randn(*shape, generator=gen)
    return a.bfloat16(), b.bfloat16()


def _leads(b: int = 8, n_leads: int = 12) -> torch.Tensor:
    return (
        torch.arange(n_leads) + torch.randint(1, n_leads, (b, n_leads), generator=torch.Generator().manual_seed(1))
    ) % n_leads


def _with_terms(fn):
    """``fn(..., return_terms=True)`` as a flat tuple ``(loss, *terms)`` (what tests/test_gpu.py also compares)."""

    def flat(*args, **kwargs):
        loss, terms = fn(*args, return_terms=True, **kwargs)
        return (loss, *terms.values())

    return flat


CASES = {
    "nt_xent": lambda: (nt_xent, _pair(64, 32), {"temperature": 0.1}),
    "barlow_twins_terms": lambda: (barlow_twins_terms, _pair(256, 64, noise=0.01), {}),
    "vicreg_terms": lambda: (vicreg_terms, _pair(256, 64), {}),
    "moco_queue_loss": lambda: (
        moco_queue_loss,
        (*_pair(32, 16), torch.randn(128, 16).bfloat16()),
        {"temperature": 0.2},
    ),
    "moco_v3_loss": lambda: (moco_v3_loss, _pair(32, 16), {"temperature": 0.2}),
    "byol_loss": lambda: (byol_loss, _pair(32, 16), {}),
    "simsiam_loss": lambda: (simsiam_loss, (*_pair(32, 16), *_pair(32, 16, seed=2)), {}),
    "lead_assignment_loss": lambda: (lead_assignment_loss, _pair(8, 12, 16), {"temperature": 0.1}),
    "lead_aligned_instance_loss": lambda: (lead_aligned_instance_loss, _pair(8, 12, 16), {"temperature": 0.1}),
    "dlc_terms": lambda: (dlc_terms, _pair(8, 12, 16), {"temperature": 0.1}),
    "region_nt_xent": lambda: (region_nt_xent, _pair(16, 4, 16), {"temperature": 0.1}),
    "lcd_terms": lambda: (lcd_terms, (*_pair(8, 12, 16), *_pair(8, 12, 16, seed=3), _leads(), _leads()), {}),
    # the full losses the methods call, with their terms
    "barlow_twins_loss": lambda: (_with_terms(barlow_twins_loss), _pair(256, 64, noise=0.01), {}),
    "vicreg_loss": lambda: (_with_terms(vicreg_loss), _pair(256, 64), {}),
    "dlc_loss": lambda: (_with_terms(dlc_loss), _pair(8, 12, 16), {"temperature": 0.1}),
    "dla_loss": lambda: (_with_terms(dla_loss), _pair(8, 12, 16), {"temperature": 0.1}),
    "acl_ecg_loss": lambda: (
        _with_terms(acl_ecg_loss),
        (*_pair(16, 4, 16), *_pair(16, 32, seed=4)),
        {"temperature": 0.1},
    ),
    "lcd_loss": lambda: (
        _with_terms(lcd_loss),
        (*_pair(8, 12, 16), *_pair(8, 12, 16, seed=3), _leads(), _leads(), *_pair(8, 192, seed=5)),
        {},
    ),
}


def _flat(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, tuple) else [out]


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_under_bf16_autocast_equals_float32(name):
    fn, args, kwargs = CASES[name]()
    reference = _flat(fn(*[a.float() if a.is_floating_point() else a for a in args], **kwargs))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = _flat(fn(*args, **kwargs))
    for ref, got in zip(reference, low, strict=True):
        assert got.dtype == torch.float32, f"{name} returned {got.dtype}"
        torch.testing.assert_close(got, ref, rtol=RTOL, atol=ATOL, msg=lambda m: f"{name}: {m}")


def test_bf16_loss_gradient_reaches_bf16_inputs():
    z1, z2 = (t.clone().requires_grad_(True) for t in _pair(16, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nt_xent(z1, z2, 0.1)
    loss.backward()
    assert z1.grad is not None and z1.grad.dtype == torch.bfloat16 and torch.isfinite(z1.grad.float()).all()


TINY = {"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8}


@pytest.mark.parametrize("method", [m.name for m in list_methods()])
def test_every_method_returns_float32_loss_terms_under_bf16_autocast(method):
    torch.manual_seed(0)
    model = create_method(method, TINY)
    x1, x2 = torch.randn(8, 12, 200), torch.randn(8, 12, 200)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = model(x1, x2)
    for key, value in terms.items():
        if torch.is_tensor(value) and value.dim() == 0:
            assert value.dtype == torch.float32, f"{method}: term {key} is {value.dtype}"


@pytest.mark.parametrize("method", [m.name for m in list_methods()])
def test_whole_step_under_cpu_bf16_agrees_with_float32(method):
    """``--amp bf16`` on CPU: the loss of the default encoder + heads agrees with float32 to rtol 2e-2 / atol 5e-3.

    (The encoder's activations carry bf16's ~3 significant digits; the loss itself is computed in float32.)
    """
    import copy

    torch.manual_seed(0)
    model = create_method(method, "small")
    twin = copy.deepcopy(model)  # MoCo's queue changes in a training forward: each precision gets its own copy
    x1, x2 = torch.randn(8, 12, 1000), torch.randn(8, 12, 1000)
    with torch.no_grad():
        fp32 = model(x1, x2)["loss"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = twin(x1, x2)["loss"]
    torch.testing.assert_close(bf16, fp32, rtol=2e-2, atol=5e-3)
