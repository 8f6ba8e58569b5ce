"""BYOL: bootstrap your own latent with an EMA target network and a predictor.

Grill et al. "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning". NeurIPS 2020
(arXiv:2006.07733).

Online branch: encoder ``f``, projector ``g``, predictor ``q``; target branch ``f', g'`` updated only by
``xi <- tau xi + (1 - tau) theta`` with ``tau`` cosine-scheduled from ``tau_base = 0.996`` to 1. With
``p_i = q(g(f(x_i)))`` and ``z'_i = g'(f'(x_i))``:

    l(p, z') = || p/|p| - z'/|z'| ||^2 = 2 - 2 cos(p, z'),     L = mean_batch[ l(p_1, sg(z'_2)) + l(p_2, sg(z'_1)) ]

Published: projector and predictor Linear(4096)-BN-ReLU-Linear(256); here 768 -> 512 -> 128 and
128 -> 512 -> 128 for the small encoder.

The loss is :func:`aclecg.methods.losses.byol_loss`; the target network and its EMA update come from
:class:`~aclecg.methods.momentum.MomentumMethod`.

Example:
    >>> from aclecg.methods import create_method
    >>> method = create_method("byol", "small")
    >>> method.momentum_update(0.5)
    >>> round(method.extra_state_description()["ema"]["current_momentum"], 6)
    0.998
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from aclecg.constraints import Constraint, Integer, Optional, Real
from aclecg.methods.heads import prediction_head, projection_head
from aclecg.methods.losses import byol_loss
from aclecg.methods.momentum import MomentumMethod
from aclecg.methods.registry import register_method

__all__ = ["BYOL"]


@register_method
class BYOL(MomentumMethod):
    """BYOL on the record embedding, symmetrised, with a cosine EMA schedule."""

    NAME = "byol"
    TITLE = "BYOL"
    PAPER = "Grill et al., Bootstrap Your Own Latent, NeurIPS 2020"
    DESCRIPTION = "Online predictor regresses the EMA target's projection of the other view (2 - 2 cos)."
    LOSS_TERMS = ("loss", "regression")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "augmentation": "standard",
        "base_momentum": 0.996,
        "ema_half_life": None,
        "proj_hidden_dim": 512,
        "proj_dim": 128,
        "pred_hidden_dim": 512,
    }
    PARAMS: ClassVar[dict[str, Constraint]] = {
        "base_momentum": Real(0, 1, hi_open=True),
        "ema_half_life": Optional(Real(0, 1, lo_open=True)),
        "proj_hidden_dim": Integer(1),
        "proj_dim": Integer(1),
        "pred_hidden_dim": Integer(1),
    }

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        self.projector = projection_head(self.encoder.embedding_dim, h["proj_hidden_dim"], h["proj_dim"])
        self.predictor = prediction_head(h["proj_dim"], h["pred_hidden_dim"])
        self._build_targets()

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        p1 = self.predictor(self.projector(self.encoder(view1).embedding))
        p2 = self.predictor(self.projector(self.encoder(view2).embedding))
        t1, t2 = self.target_forward(view1), self.target_forward(view2)
        loss = byol_loss(p1, t2) + byol_loss(p2, t1)
        return {"loss": loss, "regression": loss.detach()}
