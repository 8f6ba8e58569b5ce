"""MoCo: momentum contrast with a key queue (v2) or with in-batch keys and a predictor (v3).

He, Fan, Wu, Xie, Girshick. "Momentum Contrast for Unsupervised Visual Representation Learning". CVPR 2020;
Chen, Fan, Girshick, He. "Improved Baselines with Momentum Contrastive Learning" (MoCo v2), arXiv:2003.04297;
Chen, Xie, He. "An Empirical Study of Training Self-Supervised Vision Transformers" (MoCo v3), ICCV 2021.

v2 (default): query ``q = g(f(x1))`` from the online encoder, key ``k = g'(f'(x2))`` from the momentum
encoder (``theta' <- m theta' + (1 - m) theta``, constant ``m = 0.999``), a queue ``{k_j}`` of ``K`` past keys:

    L = -log( exp(q.k / tau) / (exp(q.k / tau) + sum_j exp(q.k_j / tau)) )        (all vectors L2-normalised)

then the keys of the (global) batch are enqueued, oldest out. Published: ``K = 65536``, ``tau = 0.2``, MLP head
2048 -> 128. Here ``K = 1024`` by default (the queue should stay a small fraction of the training set; with
~1000 records a larger queue mostly holds stale keys of the same records), head 768 -> 256 -> 64.

v3 (``version="v3"``): no queue; a predictor ``h`` on the online branch, keys of the whole batch as negatives,
symmetrised and scaled as published, ``L = 2 tau [CE(h(q1) k2^T / tau, I) + CE(h(q2) k1^T / tau, I)]``;
projector 3 layers with a final affine-free BN, predictor 2 layers; momentum cosine-scheduled from
``m = 0.99`` to 1. Published ``tau`` is 1.0 for ResNet-50 and 0.2 for ViT; we keep one ``temperature``
default of 0.2 for both versions.

The losses are :func:`aclecg.methods.losses.moco_queue_loss` and :func:`~aclecg.methods.losses.moco_v3_loss`;
the target network and its EMA update come from :class:`~aclecg.methods.momentum.MomentumMethod`.

Example:
    >>> from aclecg.methods import create_method
    >>> method = create_method("moco", "small", queue_size=64)
    >>> tuple(method.queue.shape), method.extra_state_description()["ema"]["schedule"]
    ((64, 64), 'constant')
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from aclecg.methods.distributed import gather_no_grad
from aclecg.methods.heads import prediction_head, projection_head
from aclecg.methods.losses import moco_queue_loss, moco_v3_loss
from aclecg.methods.momentum import MomentumMethod
from aclecg.methods.registry import register_method

__all__ = ["MoCo"]


@register_method
class MoCo(MomentumMethod):
    """MoCo v2 (queue, constant momentum) or v3 (in-batch keys, predictor, cosine momentum)."""

    NAME = "moco"
    TITLE = "MoCo (v2 / v3)"
    PAPER = (
        "He et al., Momentum Contrast for Unsupervised Visual Representation Learning, CVPR 2020; "
        "Chen et al., Improved Baselines with Momentum Contrastive Learning, arXiv:2003.04297 (v2); "
        "Chen, Xie, He, An Empirical Study of Training Self-Supervised Vision Transformers, ICCV 2021 (v3)"
    )
    DESCRIPTION = "InfoNCE between online queries and momentum-encoder keys; v2 queue of negatives, v3 in-batch."
    LOSS_TERMS = ("loss", "infonce")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "augmentation": "standard",
        "version": "v2",
        "temperature": 0.2,
        "queue_size": 1024,
        "momentum": None,
        "ema_half_life": None,
        "proj_hidden_dim": 256,
        "proj_dim": 64,
        "pred_hidden_dim": 256,
    }
    CHOICES = {"version": ("v2", "v3")}
    MOMENTUM_HPARAM = "momentum"
    # Buffers registered in ``__init__`` (v2 only), declared for the type checker.
    queue: Tensor
    queue_ptr: Tensor

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        if h["momentum"] is None:
            h["momentum"] = 0.999 if h["version"] == "v2" else 0.99
        self._check_hparams()
        emb = self.encoder.embedding_dim
        if h["version"] == "v2":
            self.projector = projection_head(emb, h["proj_hidden_dim"], h["proj_dim"])
            self.predictor = None
            queue = F.normalize(torch.randn(h["queue_size"], h["proj_dim"]), dim=1)
            self.register_buffer("queue", queue)
            self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        else:
            self.projector = projection_head(
                emb, h["proj_hidden_dim"], h["proj_dim"], n_layers=3, standardize_output=True
            )
            self.predictor = prediction_head(h["proj_dim"], h["pred_hidden_dim"])
        self._build_targets()

    def _check_hparams(self) -> None:
        self._positive("temperature", "queue_size", "proj_hidden_dim", "proj_dim", "pred_hidden_dim")
        m = self.hparams["momentum"]
        self._require(m is None or 0.0 <= m < 1.0, "momentum", "in [0, 1) or null")
        self._check_ema_half_life()

    def _queries(self, x: Tensor) -> Tensor:
        q = self.projector(self.encoder(x).embedding)
        return self.predictor(q) if self.predictor is not None else q

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        tau = self.hparams["temperature"]
        if self.hparams["version"] == "v3":
            q1, q2 = self._queries(view1), self._queries(view2)
            k1, k2 = self.target_forward(view1), self.target_forward(view2)
            loss = moco_v3_loss(q1, k2, tau) + moco_v3_loss(q2, k1, tau)
            return {"loss": loss, "infonce": loss.detach()}
        q = self._queries(view1)
        k = self.target_forward(view2)
        loss = moco_queue_loss(q, k, self.queue.clone(), tau)
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
        return "constant" if self.hparams["version"] == "v2" else "cosine"

    def extra_state_description(self) -> dict[str, Any]:
        out = super().extra_state_description()
        if self.hparams["version"] == "v2":
            out["queue"] = {
                "buffer": "queue",
                "size": int(self.queue.shape[0]),
                "dim": int(self.queue.shape[1]),
                "pointer": int(self.queue_ptr),
            }
        return out
