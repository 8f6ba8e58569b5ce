"""Barlow Twins: redundancy reduction through the cross-correlation matrix of the two views' projections.

Zbontar, Jing, Misra, LeCun, Deny. "Barlow Twins: Self-Supervised Learning via Redundancy Reduction".
ICML 2021 (arXiv:2103.03230).

With projections standardised over the batch (the published affine-free BatchNorm, biased variance),
``C_ij = sum_b z1n_bi z2n_bj / N``:

    L = sum_i (1 - C_ii)^2 + lambda * sum_i sum_{j != i} C_ij^2,      lambda = 0.0051 (published code)

The standardisation and ``C`` use the *global* batch: the projections are gathered with
:func:`~aclecg.methods.distributed.gather_with_grad` and every rank computes the full loss (no BN statistics,
hence no SyncBatchNorm needed for the loss). Used by Barlow Twins and by LCD's decorrelation term.

Example:
    >>> import torch
    >>> z = torch.randn(32, 8)
    >>> float(barlow_twins_loss(z, z, 0.0051)) < float(barlow_twins_loss(z, torch.randn(32, 8), 0.0051))
    True
    >>> loss, terms = barlow_twins_loss(z, z, return_terms=True)
    >>> sorted(terms)
    ['off_diagonal', 'on_diagonal']
"""

from __future__ import annotations

from typing import Literal, overload

import torch
from torch import Tensor

from aclecg.methods.distributed import gather_with_grad
from aclecg.methods.precision import float32_loss

__all__ = ["barlow_twins_loss", "barlow_twins_terms", "batch_standardize", "cross_correlation"]


def batch_standardize(z: Tensor, eps: float = 1e-5) -> Tensor:
    """``(z - mean) / sqrt(var + eps)`` over the batch axis (biased variance, as BatchNorm in training mode)."""
    mean = z.mean(dim=0, keepdim=True)
    var = z.var(dim=0, unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + eps)


@float32_loss
def cross_correlation(z1: Tensor, z2: Tensor) -> Tensor:
    """``(d, d)`` cross-correlation of the globally gathered, standardised ``z1`` and ``z2`` ``(n, d)``."""
    a = batch_standardize(gather_with_grad(z1))
    b = batch_standardize(gather_with_grad(z2))
    return a.T @ b / a.shape[0]


@float32_loss
def barlow_twins_terms(z1: Tensor, z2: Tensor) -> tuple[Tensor, Tensor]:
    """``(invariance, redundancy)`` = ``(sum_i (1 - C_ii)^2, sum_{i != j} C_ij^2)``."""
    c = cross_correlation(z1, z2)
    diag = torch.diagonal(c)
    on = (1.0 - diag).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    return on, off


@overload
def barlow_twins_loss(z1: Tensor, z2: Tensor, lambd: float = ..., return_terms: Literal[False] = ...) -> Tensor: ...


@overload
def barlow_twins_loss(
    z1: Tensor, z2: Tensor, lambd: float = ..., *, return_terms: Literal[True]
) -> tuple[Tensor, dict[str, Tensor]]: ...


def barlow_twins_loss(
    z1: Tensor, z2: Tensor, lambd: float = 0.0051, return_terms: bool = False
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """Barlow Twins loss ``on + lambd * off`` of projections ``z1``, ``z2`` ``(n, d)``.

    With ``return_terms`` also ``{"on_diagonal": on, "off_diagonal": off}`` (not detached).
    """
    on, off = barlow_twins_terms(z1, z2)
    loss = on + lambd * off
    return (loss, {"on_diagonal": on, "off_diagonal": off}) if return_terms else loss
