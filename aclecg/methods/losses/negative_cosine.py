"""Negative cosine similarity with a stop-gradient on the target: the regression losses of BYOL and SimSiam.

Grill et al. "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning". NeurIPS 2020
(arXiv:2006.07733); Chen, He. "Exploring Simple Siamese Representation Learning". CVPR 2021 (arXiv:2011.10566).

BYOL regresses the normalised prediction ``p`` onto the normalised target projection ``z``:

    l(p, z) = || p/|p| - z/|z| ||^2 = 2 - 2 cos(p, sg(z))            (mean over every leading axis)

(also the intra- and inter-lead terms of LCD); SimSiam's symmetrised ``D(p, z) = -cos(p, sg(z))``:

    L = D(p_1, z_2) / 2 + D(p_2, z_1) / 2

Example:
    >>> import torch
    >>> p = torch.randn(4, 8)
    >>> abs(float(byol_loss(p, p))) < 1e-6  # identical directions -> 0
    True
    >>> round(float(simsiam_loss(p, p, p, p)), 4)  # perfectly aligned -> -1
    -1.0
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from aclecg.methods.precision import float32_loss

__all__ = ["byol_loss", "simsiam_loss"]


@float32_loss
def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """``mean(2 - 2 cos(p, sg(z)))`` over all leading axes; ``p`` and ``z`` have shape ``(..., d)``."""
    return (2.0 - 2.0 * F.cosine_similarity(p, z.detach(), dim=-1, eps=1e-8)).mean()


@float32_loss
def simsiam_loss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """Symmetrised negative cosine with stop-gradient on the projections ``z``."""
    d12 = -F.cosine_similarity(p1, z2.detach(), dim=-1, eps=1e-8).mean()
    d21 = -F.cosine_similarity(p2, z1.detach(), dim=-1, eps=1e-8).mean()
    return 0.5 * d12 + 0.5 * d21
