"""SimSiam: siamese representation learning with a predictor and stop-gradient, no negatives, no EMA.

Chen, He. "Exploring Simple Siamese Representation Learning". CVPR 2021 (arXiv:2011.10566).

With projections ``z_i = g(f(x_i))`` and predictions ``p_i = h(z_i)``, ``D(p, z) = -cos(p, sg(z))``:

    L = D(p_1, z_2) / 2 + D(p_2, z_1) / 2

Published: 3-layer projector with BN on every layer (output BN without affine), dim 2048, and a bottleneck
predictor 2048 -> 512 -> 2048; here dim 256 and predictor 256 -> 64 -> 256 (same 4:1 bottleneck).

The loss is :func:`aclecg.methods.losses.simsiam_loss`.

Example:
    >>> import torch
    >>> from aclecg.methods import create_method
    >>> method = create_method("simsiam", "small")
    >>> float(method(torch.randn(4, 12, 250), torch.randn(4, 12, 250))["loss"].detach()) >= -1.0
    True
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from aclecg.constraints import Constraint, Integer
from aclecg.methods.base import SSLMethod
from aclecg.methods.heads import prediction_head, projection_head
from aclecg.methods.losses import simsiam_loss
from aclecg.methods.registry import register_method

__all__ = ["SimSiam"]


@register_method
class SimSiam(SSLMethod):
    """SimSiam on the record embedding."""

    NAME = "simsiam"
    TITLE = "SimSiam"
    PAPER = "Chen and He, Exploring Simple Siamese Representation Learning, CVPR 2021"
    DESCRIPTION = "Predictor + stop-gradient negative cosine between views; no negatives, no momentum encoder."
    LOSS_TERMS = ("loss", "neg_cosine")
    DEFAULTS: ClassVar[dict[str, Any]] = {"augmentation": "standard", "proj_dim": 256, "pred_hidden_dim": 64}
    PARAMS: ClassVar[dict[str, Constraint]] = {"proj_dim": Integer(1), "pred_hidden_dim": Integer(1)}

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        self.projector = projection_head(
            self.encoder.embedding_dim, h["proj_dim"], h["proj_dim"], n_layers=3, standardize_output=True
        )
        self.predictor = prediction_head(h["proj_dim"], h["pred_hidden_dim"])

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        z1 = self.projector(self.encoder(view1).embedding)
        z2 = self.projector(self.encoder(view2).embedding)
        loss = simsiam_loss(self.predictor(z1), self.predictor(z2), z1, z2)
        return {"loss": loss, "neg_cosine": loss.detach()}
