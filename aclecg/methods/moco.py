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

Example:
    >>> import torch
    >>> from aclecg.methods.moco import moco_queue_loss
    >>> q, k, queue = torch.randn(4, 8), torch.randn(4, 8), torch.randn(16, 8)
    >>> float(moco_queue_loss(q, k, queue, 0.2)) > 0
    True
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from aclecg.methods.base import SSLMethod, cosine_momentum, ema_update_, make_momentum_copy, mlp
from aclecg.methods.distributed import gather_no_grad, rank
from aclecg.methods.precision import float32_loss
from aclecg.methods.registry import register_method

__all__ = ["MoCo", "moco_queue_loss", "moco_v3_loss"]


@float32_loss
def moco_queue_loss(q: Tensor, k: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """MoCo v1/v2 InfoNCE: ``q`` ``(n, d)`` queries, ``k`` ``(n, d)`` positive keys, ``queue`` ``(K, d)`` negatives.

    All inputs are L2-normalised here; the keys and the queue are treated as constants (no gradient).
    """
    q = F.normalize(q, dim=-1)
    k = F.normalize(k, dim=-1).detach()
    queue = F.normalize(queue, dim=-1).detach()
    positive = (q * k).sum(dim=-1, keepdim=True)
    logits = torch.cat([positive, q @ queue.T], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


@float32_loss
def moco_v3_loss(q: Tensor, k: Tensor, temperature: float) -> Tensor:
    """MoCo v3 contrastive term ``2 tau CE(q k_all^T / tau, positives)``; keys gathered across processes."""
    q = F.normalize(q, dim=-1)
    k = F.normalize(gather_no_grad(k.detach()), dim=-1)
    labels = torch.arange(q.shape[0], device=q.device) + rank() * q.shape[0]
    return F.cross_entropy(q @ k.T / temperature, labels) * 2.0 * temperature


@register_method
class MoCo(SSLMethod):
    """MoCo v2 (queue, constant momentum) or v3 (in-batch keys, predictor, cosine momentum)."""

    NAME = "moco"
    TITLE = "MoCo (v2 / v3)"
    PAPER = ("He et al., Momentum Contrast for Unsupervised Visual Representation Learning, CVPR 2020; "
             "Chen et al., Improved Baselines with Momentum Contrastive Learning, arXiv:2003.04297 (v2); "
             "Chen, Xie, He, An Empirical Study of Training Self-Supervised Vision Transformers, ICCV 2021 (v3)")
    DESCRIPTION = "InfoNCE between online queries and momentum-encoder keys; v2 queue of negatives, v3 in-batch."
    DEFAULTS: dict[str, Any] = {"augmentation": "standard", "version": "v2", "temperature": 0.2,
                                "queue_size": 1024, "momentum": None, "proj_hidden_dim": 256, "proj_dim": 64,
                                "pred_hidden_dim": 256}
    CHOICES = {"version": ("v2", "v3")}

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        if h["momentum"] is None:
            h["momentum"] = 0.999 if h["version"] == "v2" else 0.99
        self._check_hparams()
        emb = self.encoder.embedding_dim
        if h["version"] == "v2":
            self.projector = mlp(emb, h["proj_hidden_dim"], h["proj_dim"], n_layers=2)
            self.predictor = None
            queue = F.normalize(torch.randn(h["queue_size"], h["proj_dim"]), dim=1)
            self.register_buffer("queue", queue)
            self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        else:
            self.projector = mlp(emb, h["proj_hidden_dim"], h["proj_dim"], n_layers=3, last_bn=True,
                                 last_bn_affine=False)
            self.predictor = mlp(h["proj_dim"], h["pred_hidden_dim"], h["proj_dim"], n_layers=2)
        self.target_encoder = make_momentum_copy(self.encoder)
        self.target_projector = make_momentum_copy(self.projector)
        self._momentum = float(h["momentum"])

    def _check_hparams(self) -> None:
        self._positive("temperature", "queue_size", "proj_hidden_dim", "proj_dim", "pred_hidden_dim")
        m = self.hparams["momentum"]
        self._require(m is None or 0.0 <= m < 1.0, "momentum", "in [0, 1) or null")

    def _keys(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.target_projector(self.target_encoder(x).embedding)

    def _queries(self, x: Tensor) -> Tensor:
        q = self.projector(self.encoder(x).embedding)
        return self.predictor(q) if self.predictor is not None else q

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        tau = self.hparams["temperature"]
        if self.hparams["version"] == "v3":
            q1, q2 = self._queries(view1), self._queries(view2)
            k1, k2 = self._keys(view1), self._keys(view2)
            loss = moco_v3_loss(q1, k2, tau) + moco_v3_loss(q2, k1, tau)
            return {"loss": loss, "infonce": loss.detach()}
        q = self._queries(view1)
        k = self._keys(view2)
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

    def momentum_update(self, progress: float) -> None:
        base = self.hparams["momentum"]
        self._momentum = base if self.hparams["version"] == "v2" else cosine_momentum(base, progress)
        ema_update_(self.target_encoder, self.encoder, self._momentum)
        ema_update_(self.target_projector, self.projector, self._momentum)

    def extra_state_description(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ema": {"modules": ["target_encoder", "target_projector"],
                                       "base_momentum": self.hparams["momentum"],
                                       "schedule": "constant" if self.hparams["version"] == "v2" else "cosine",
                                       "current_momentum": self._momentum}}
        if self.hparams["version"] == "v2":
            out["queue"] = {"buffer": "queue", "size": int(self.queue.shape[0]), "dim": int(self.queue.shape[1]),
                            "pointer": int(self.queue_ptr)}
        return out
