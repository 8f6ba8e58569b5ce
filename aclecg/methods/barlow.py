"""Barlow Twins: redundancy reduction through the cross-correlation matrix of the two views.

Zbontar, Jing, Misra, LeCun, Deny. "Barlow Twins: Self-Supervised Learning via Redundancy Reduction".
ICML 2021 (arXiv:2103.03230).

With projections standardised over the batch (the published affine-free BatchNorm, biased variance),
``C_ij = sum_b z1n_bi z2n_bj / N``:

    L = sum_i (1 - C_ii)^2 + lambda * sum_i sum_{j != i} C_ij^2,      lambda = 0.0051 (published code)

The standardisation and ``C`` use the *global* batch: the projections are gathered with
:func:`~aclecg.methods.distributed.gather_with_grad` and every rank computes the full loss (no BN statistics,
hence no SyncBatchNorm needed for the loss). Published projector: 3 x 8192 Linear-BN-ReLU; here 3 x 512.

The loss is :func:`aclecg.methods.losses.barlow_twins_loss`.

Example:
    >>> import torch
    >>> from aclecg.methods import create_method
    >>> method = create_method("barlow", "small", proj_dim=64)
    >>> list(method(torch.randn(8, 12, 250), torch.randn(8, 12, 250)))
    ['loss', 'on_diagonal', 'off_diagonal']
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from aclecg.constraints import Constraint, Integer, Real
from aclecg.methods.base import SSLMethod
from aclecg.methods.heads import projection_head
from aclecg.methods.losses import barlow_twins_loss
from aclecg.methods.registry import register_method

__all__ = ["BarlowTwins"]


@register_method
class BarlowTwins(SSLMethod):
    """Barlow Twins on the record embedding."""

    NAME = "barlow"
    TITLE = "Barlow Twins"
    PAPER = "Zbontar et al., Barlow Twins: Self-Supervised Learning via Redundancy Reduction, ICML 2021"
    DESCRIPTION = "Cross-correlation of the two views' projections pushed to the identity matrix."
    LOSS_TERMS = ("loss", "on_diagonal", "off_diagonal")
    DEFAULTS: ClassVar[dict[str, Any]] = {"augmentation": "standard", "lambd": 0.0051, "proj_dim": 512}
    PARAMS: ClassVar[dict[str, Constraint]] = {"lambd": Real(0), "proj_dim": Integer(1)}

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        self.projector = projection_head(self.encoder.embedding_dim, h["proj_dim"], h["proj_dim"], n_layers=3)

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        z1 = self.projector(self.encoder(view1).embedding)
        z2 = self.projector(self.encoder(view2).embedding)
        loss, terms = barlow_twins_loss(z1, z2, self.hparams["lambd"], return_terms=True)
        return {"loss": loss, **{name: term.detach() for name, term in terms.items()}}
