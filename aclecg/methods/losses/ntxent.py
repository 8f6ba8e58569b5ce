"""NT-Xent (normalised temperature-scaled cross-entropy), the InfoNCE loss of SimCLR with in-batch negatives.

Chen, Kornblith, Norouzi, Hinton. "A Simple Framework for Contrastive Learning of Visual Representations".
ICML 2020 (arXiv:2002.05709); InfoNCE: van den Oord, Li, Vinyals, "Representation Learning with Contrastive
Predictive Coding", arXiv:1807.03748, 2018.

For a batch of ``N`` records with projections ``z_i`` (view 1) and ``z_{N+i}`` (view 2), all L2-normalised,
``sim(u, v) = u . v / tau`` and for each of the ``2N`` anchors ``a`` with positive ``p(a)``:

    l(a) = -log( exp(sim(z_a, z_p(a))) / sum_{k != a} exp(sim(z_a, z_k)) ),      L = mean_a l(a)

The negatives are the other ``2N - 2`` projections of the batch; across processes the keys are gathered with
:func:`~aclecg.methods.distributed.gather_with_grad` (anchors stay local). Used by SimCLR, and as a building
block by DLC, DLA and ACL-ECG.

Example:
    >>> import torch
    >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    >>> float(nt_xent(z1, z2, 0.1)) > 0
    True
    >>> nt_xent_batched(torch.randn(3, 8, 16), torch.randn(3, 8, 16), 0.1).shape   # 3 problems at once
    torch.Size([3])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aclecg.methods.distributed import gather_with_grad, rank
from aclecg.methods.precision import float32_loss

__all__ = ["nt_xent", "nt_xent_batched"]


@float32_loss
def nt_xent_batched(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """NT-Xent for ``P`` independent problems at once.

    Args:
        z1: ``(P, n, d)`` view-1 projections of the local batch (not necessarily normalised).
        z2: ``(P, n, d)`` view-2 projections; ``z1[p, i]`` and ``z2[p, i]`` are positives.
        temperature: ``tau > 0``.

    Returns:
        ``(P,)`` losses, each the mean over the ``2n`` local anchors, with the negatives of the global batch.
    """
    z1 = F.normalize(z1, dim=-1)
    z2 = F.normalize(z2, dim=-1)
    n = z1.shape[1]
    k1 = gather_with_grad(z1, dim=1)
    k2 = gather_with_grad(z2, dim=1)
    n_all = k1.shape[1]
    keys = torch.cat([k1, k2], dim=1)  # (P, 2N, d)
    anchors = torch.cat([z1, z2], dim=1)  # (P, 2n, d)
    logits = anchors @ keys.transpose(1, 2) / temperature  # (P, 2n, 2N)
    idx = torch.arange(n, device=z1.device) + rank() * n
    self_idx = torch.cat([idx, idx + n_all])
    pos_idx = torch.cat([idx + n_all, idx])
    rows = torch.arange(2 * n, device=z1.device)
    self_mask = torch.zeros(2 * n, 2 * n_all, dtype=torch.bool, device=z1.device)
    self_mask[rows, self_idx] = True
    logits = logits.masked_fill(self_mask, float("-inf"))
    positive = logits[:, rows, pos_idx]  # (P, 2n)
    return (torch.logsumexp(logits, dim=-1) - positive).mean(dim=-1)


def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """NT-Xent between ``z1`` ``(n, d)`` and ``z2`` ``(n, d)`` (rows ``i`` are positives); a scalar."""
    return nt_xent_batched(z1.unsqueeze(0), z2.unsqueeze(0), temperature)[0]
