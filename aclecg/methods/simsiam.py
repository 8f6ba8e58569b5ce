"""SimSiam: siamese representation learning with a predictor and stop-gradient, no negatives, no EMA.

Chen, He. "Exploring Simple Siamese Representation Learning". CVPR 2021 (arXiv:2011.10566).

With projections ``z_i = g(f(x_i))`` and predictions ``p_i = h(z_i)``, ``D(p, z) = -cos(p, sg(z))``:

    L = D(p_1, z_2) / 2 + D(p_2, z_1) / 2

Published: 3-layer projector with BN on every layer (output BN without affine), dim 2048, and a bottleneck
predictor 2048 -> 512 -> 2048; here dim 256 and predictor 256 -> 64 -> 256 (same 4:1 bottleneck).

Example:
    >>> import torch
    >>> from aclecg.methods.simsiam import simsiam_loss
    >>> z = torch.randn(4, 8)
    >>> round(float(simsiam_loss(z, z, z, z)), 4)  # perfectly aligned -> -1
    -1.0
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from aclecg.methods.base import SSLMethod, mlp
from aclecg.methods.precision import float32_loss
from aclecg.methods.registry import register_method

__all__ = ["SimSiam", "simsiam_loss"]


@float32_loss
def simsiam_loss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """Symmetrised negative cosine with stop-gradient on the projections ``z``."""
    d12 = -F.cosine_similarity(p1, z2.detach(), dim=-1, eps=1e-8).mean()
    d21 = -F.cosine_similarity(p2, z1.detach(), dim=-1, eps=1e-8).mean()
    return 0.5 * d12 + 0.5 * d21


@register_method
class SimSiam(SSLMethod):
    """SimSiam on the record embedding."""

    NAME = "simsiam"
    TITLE = "SimSiam"
    PAPER = "Chen and He, Exploring Simple Siamese Representation Learning, CVPR 2021"
    DESCRIPTION = "Predictor + stop-gradient negative cosine between views; no negatives, no momentum encoder."
    DEFAULTS: dict[str, Any] = {"augmentation": "standard", "proj_dim": 256, "pred_hidden_dim": 64}

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        self.projector = mlp(self.encoder.embedding_dim, h["proj_dim"], h["proj_dim"], n_layers=3, last_bn=True,
                             last_bn_affine=False)
        self.predictor = mlp(h["proj_dim"], h["pred_hidden_dim"], h["proj_dim"], n_layers=2)

    def _check_hparams(self) -> None:
        self._positive("proj_dim", "pred_hidden_dim")

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        z1 = self.projector(self.encoder(view1).embedding)
        z2 = self.projector(self.encoder(view2).embedding)
        loss = simsiam_loss(self.predictor(z1), self.predictor(z2), z1, z2)
        return {"loss": loss, "neg_cosine": loss.detach()}
