"""MoCo v2: queries against momentum-encoder keys and a FIFO queue of past keys, constant momentum.

Chen, Fan, Girshick, He. "Improved Baselines with Momentum Contrastive Learning", arXiv:2003.04297 (see
:mod:`aclecg.methods.moco` for the formula and the defaults). Built by ``create_method("moco")`` (``version="v2"``,
the default).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from aclecg.methods.distributed import gather_no_grad
from aclecg.methods.heads import projection_head
from aclecg.methods.losses import moco_queue_loss
from aclecg.methods.moco import MoCo

__all__ = ["MoCoV2"]


class MoCoV2(MoCo):
    """MoCo v2: projector only, a queue of ``queue_size`` normalised keys (buffers ``queue``, ``queue_ptr``)."""

    VERSION = "v2"
    DEFAULT_MOMENTUM = 0.999
    queue: Tensor
    queue_ptr: Tensor

    def _build_heads(self, embedding_dim: int) -> None:
        h = self.hparams
        self.projector = projection_head(embedding_dim, h["proj_hidden_dim"], h["proj_dim"])
        self.predictor = None
        self.register_buffer("queue", F.normalize(torch.randn(h["queue_size"], h["proj_dim"]), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        q = self.projector(self.encoder(view1).embedding)
        k = self.target_forward(view2)
        loss = moco_queue_loss(q, k, self.queue.clone(), self.hparams["temperature"])
        if self.training:
            self._enqueue(F.normalize(k, dim=-1))
        return {"loss": loss, "infonce": loss.detach()}

    @torch.no_grad()
    def _enqueue(self, keys: Tensor) -> None:
        keys = gather_no_grad(keys)[: self.queue.shape[0]]
        idx = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % self.queue.shape[0]
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % self.queue.shape[0])

    def momentum_schedule(self) -> str:
        return "constant"

    def extra_state_description(self) -> dict[str, Any]:
        out = super().extra_state_description()
        out["queue"] = {
            "buffer": "queue",
            "size": int(self.queue.shape[0]),
            "dim": int(self.queue.shape[1]),
            "pointer": int(self.queue_ptr),
        }
        return out
