"""Barlow Twins: redundancy reduction through the cross-correlation matrix of the two views.

Zbontar, Jing, Misra, LeCun, Deny. "Barlow Twins: Self-Supervised Learning via Redundancy Reduction".
ICML 2021 (arXiv:2103.03230).

With projections standardised over the batch (the published affine-free BatchNorm, biased variance),
``C_ij = sum_b z1n_bi z2n_bj / N``:

    L = sum_i (1 - C_ii)^2 + lambda * sum_i sum_{j != i} C_ij^2,      lambda = 0.0051 (published code)

The standardisation and ``C`` use the *global* batch: the projections are gathered with
:func:`~aclecg.methods.distributed.gather_with_grad` and every rank computes the full loss (no BN statistics,
hence no SyncBatchNorm needed for the loss). Published projector: 3 x 8192 Linear-BN-ReLU; here 3 x 512.

Example:
    >>> import torch
    >>> from aclecg.methods.barlow import barlow_twins_loss
    >>> z = torch.randn(32, 8)
    >>> float(barlow_twins_loss(z, z, 0.0051)) < float(barlow_twins_loss(z, torch.randn(32, 8), 0.0051))
    True
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from aclecg.methods.base import SSLMethod, mlp
from aclecg.methods.distributed import gather_with_grad
from aclecg.methods.precision import float32_loss
from aclecg.methods.registry import register_method

__all__ = ["BarlowTwins", "barlow_twins_loss", "barlow_twins_terms", "cross_correlation", "batch_standardize"]


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


def barlow_twins_loss(z1: Tensor, z2: Tensor, lambd: float) -> Tensor:
    """Barlow Twins loss ``on + lambd * off``."""
    on, off = barlow_twins_terms(z1, z2)
    return on + lambd * off


@register_method
class BarlowTwins(SSLMethod):
    """Barlow Twins on the record embedding."""

    NAME = "barlow"
    TITLE = "Barlow Twins"
    PAPER = "Zbontar et al., Barlow Twins: Self-Supervised Learning via Redundancy Reduction, ICML 2021"
    DESCRIPTION = "Cross-correlation of the two views' projections pushed to the identity matrix."
    DEFAULTS: dict[str, Any] = {"augmentation": "standard", "lambd": 0.0051, "proj_dim": 512}

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        self.projector = mlp(self.encoder.embedding_dim, h["proj_dim"], h["proj_dim"], n_layers=3)

    def _check_hparams(self) -> None:
        self._positive("proj_dim")
        self._require(self.hparams["lambd"] >= 0, "lambd", ">= 0")

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        z1 = self.projector(self.encoder(view1).embedding)
        z2 = self.projector(self.encoder(view2).embedding)
        on, off = barlow_twins_terms(z1, z2)
        loss = on + self.hparams["lambd"] * off
        return {"loss": loss, "on_diagonal": on.detach(), "off_diagonal": off.detach()}
