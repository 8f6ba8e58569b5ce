"""BYOL: bootstrap your own latent with an EMA target network and a predictor.

Grill et al. "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning". NeurIPS 2020
(arXiv:2006.07733).

Online branch: encoder ``f``, projector ``g``, predictor ``q``; target branch ``f', g'`` updated only by
``xi <- tau xi + (1 - tau) theta`` with ``tau`` cosine-scheduled from ``tau_base = 0.996`` to 1. With
``p_i = q(g(f(x_i)))`` and ``z'_i = g'(f'(x_i))``:

    l(p, z') = || p/|p| - z'/|z'| ||^2 = 2 - 2 cos(p, z'),     L = mean_batch[ l(p_1, sg(z'_2)) + l(p_2, sg(z'_1)) ]

Published: projector and predictor Linear(4096)-BN-ReLU-Linear(256); here 768 -> 512 -> 128 and
128 -> 512 -> 128 for the small encoder.

Example:
    >>> import torch
    >>> from aclecg.methods.byol import byol_loss
    >>> p = torch.randn(4, 8)
    >>> abs(float(byol_loss(p, p))) < 1e-6  # identical directions -> 0
    True
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from aclecg.methods.base import SSLMethod, cosine_momentum, ema_update_, make_momentum_copy, mlp
from aclecg.methods.precision import float32_loss
from aclecg.methods.registry import register_method

__all__ = ["BYOL", "byol_loss"]


@float32_loss
def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """``mean(2 - 2 cos(p, sg(z)))`` over all leading axes; ``p`` and ``z`` have shape ``(..., d)``."""
    return (2.0 - 2.0 * F.cosine_similarity(p, z.detach(), dim=-1, eps=1e-8)).mean()


@register_method
class BYOL(SSLMethod):
    """BYOL on the record embedding, symmetrised, with a cosine EMA schedule."""

    NAME = "byol"
    TITLE = "BYOL"
    PAPER = "Grill et al., Bootstrap Your Own Latent, NeurIPS 2020"
    DESCRIPTION = "Online predictor regresses the EMA target's projection of the other view (2 - 2 cos)."
    DEFAULTS: dict[str, Any] = {"augmentation": "standard", "base_momentum": 0.996, "proj_hidden_dim": 512,
                                "proj_dim": 128, "pred_hidden_dim": 512}

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        self.projector = mlp(self.encoder.embedding_dim, h["proj_hidden_dim"], h["proj_dim"], n_layers=2)
        self.predictor = mlp(h["proj_dim"], h["pred_hidden_dim"], h["proj_dim"], n_layers=2)
        self.target_encoder = make_momentum_copy(self.encoder)
        self.target_projector = make_momentum_copy(self.projector)
        self._momentum = h["base_momentum"]

    def _check_hparams(self) -> None:
        self._positive("proj_hidden_dim", "proj_dim", "pred_hidden_dim")
        self._require(0.0 <= self.hparams["base_momentum"] < 1.0, "base_momentum", "in [0, 1)")

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        p1 = self.predictor(self.projector(self.encoder(view1).embedding))
        p2 = self.predictor(self.projector(self.encoder(view2).embedding))
        with torch.no_grad():
            t1 = self.target_projector(self.target_encoder(view1).embedding)
            t2 = self.target_projector(self.target_encoder(view2).embedding)
        loss = byol_loss(p1, t2) + byol_loss(p2, t1)
        return {"loss": loss, "regression": loss.detach()}

    def momentum_update(self, progress: float) -> None:
        self._momentum = cosine_momentum(self.hparams["base_momentum"], progress)
        ema_update_(self.target_encoder, self.encoder, self._momentum)
        ema_update_(self.target_projector, self.projector, self._momentum)

    def extra_state_description(self) -> dict[str, Any]:
        return {"ema": {"modules": ["target_encoder", "target_projector"],
                        "base_momentum": self.hparams["base_momentum"], "schedule": "cosine",
                        "current_momentum": self._momentum}}
