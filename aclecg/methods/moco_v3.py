"""MoCo v3: a predictor on the online branch, the keys of the whole batch as negatives, cosine momentum.

Chen, Xie, He. "An Empirical Study of Training Self-Supervised Vision Transformers", ICCV 2021 (see
:mod:`aclecg.methods.moco` for the formula and the defaults). Built by ``create_method("moco", version="v3")``.
"""

from __future__ import annotations

from torch import Tensor, nn

from aclecg.methods.heads import prediction_head, projection_head
from aclecg.methods.losses import moco_v3_loss
from aclecg.methods.moco import MoCo

__all__ = ["MoCoV3"]


class MoCoV3(MoCo):
    """MoCo v3: 3-layer projector ending in an affine-free BN, 2-layer predictor, symmetrised in-batch loss."""

    VERSION = "v3"
    DEFAULT_MOMENTUM = 0.99
    predictor: nn.Module

    def _build_heads(self, embedding_dim: int) -> None:
        h = self.hparams
        self.projector = projection_head(
            embedding_dim, h["proj_hidden_dim"], h["proj_dim"], n_layers=3, standardize_output=True
        )
        self.predictor = prediction_head(h["proj_dim"], h["pred_hidden_dim"])

    def _queries(self, x: Tensor) -> Tensor:
        return self.predictor(self.projector(self.encoder(x).embedding))

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        tau = self.hparams["temperature"]
        q1, q2 = self._queries(view1), self._queries(view2)
        k1, k2 = self.target_forward(view1), self.target_forward(view2)
        loss = moco_v3_loss(q1, k2, tau) + moco_v3_loss(q2, k1, tau)
        return {"loss": loss, "infonce": loss.detach()}
