"""MoCo's InfoNCE between online queries and momentum-encoder keys: against a queue (v1/v2) or in-batch (v3).

He, Fan, Wu, Xie, Girshick. "Momentum Contrast for Unsupervised Visual Representation Learning". CVPR 2020;
Chen, Fan, Girshick, He. "Improved Baselines with Momentum Contrastive Learning" (MoCo v2), arXiv:2003.04297;
Chen, Xie, He. "An Empirical Study of Training Self-Supervised Vision Transformers" (MoCo v3), ICCV 2021.

v1/v2, with queries ``q``, positive keys ``k`` and a queue ``{k_j}`` of ``K`` past keys (all L2-normalised):

    L = -log( exp(q.k / tau) / (exp(q.k / tau) + sum_j exp(q.k_j / tau)) )

v3, keys of the whole (global) batch as negatives, scaled as published: ``L = 2 tau CE(q k^T / tau, I)``; MoCo v3
symmetrises it over the two views. The keys are constants (no gradient) in both.

Example:
    >>> import torch
    >>> q, k, queue = torch.randn(4, 8), torch.randn(4, 8), torch.randn(16, 8)
    >>> float(moco_queue_loss(q, k, queue, 0.2)) > 0
    True
    >>> float(moco_v3_loss(q, q, 0.2)) < float(moco_v3_loss(q, k, 0.2))   # aligned keys: lower loss
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aclecg.methods.distributed import gather_no_grad, rank
from aclecg.methods.precision import float32_loss

__all__ = ["moco_queue_loss", "moco_v3_loss"]


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
