"""LCD's lead correlation (same-lead and other-lead BYOL terms) and decorrelation (Barlow Twins) objective.

Liu, Pan, Chang, Huang, Jiang. "Self-supervised learning of multilead ECGs by lead correlation and
decorrelation" (LCD). Applied Soft Computing 172:112871, 2025 (doi:10.1016/j.asoc.2025.112871).

With online lead predictions ``p^v_{b,l}``, EMA-target lead projections ``t^v_{b,l}``,
``l(p, t) = 2 - 2 cos(p, sg(t))`` (:func:`.negative_cosine.byol_loss`) and, for every record and lead, a random
*other* lead ``r(b, l) != l`` (:func:`random_other_lead`):

    L_intra = mean_{b,l} [ l(p^1_{b,l}, t^2_{b,l}) + l(p^2_{b,l}, t^1_{b,l}) ]             (lead correlation)
    L_inter = mean_{b,l} [ l(p^1_{b,l}, t^2_{b,r(b,l)}) + l(p^2_{b,l}, t^1_{b,r'(b,l)}) ]
    L_dec   = BarlowTwins(E^1, E^2; lambda = 0.0051),  E^v = concatenated lead features (B, L*D)  (decorrelation)
    L = L_intra + L_inter + gamma * L_dec,        gamma = 0.005

(the equal weights of intra and inter are our choice; see :mod:`aclecg.methods.lcd`).

Example:
    >>> import torch
    >>> idx = random_other_lead(4, 3, torch.device("cpu"))
    >>> bool((idx != torch.arange(3)).all())
    True
    >>> p1, p2, t1, t2 = (torch.randn(4, 3, 8) for _ in range(4))
    >>> loss, terms = lcd_loss(p1, p2, t1, t2, idx, idx, torch.randn(4, 24), torch.randn(4, 24), return_terms=True)
    >>> list(terms)
    ['intra_lead', 'inter_lead', 'decorrelation']
"""

from __future__ import annotations

from typing import Literal, overload

import torch
from torch import Tensor

from aclecg.methods.losses.barlow import barlow_twins_loss
from aclecg.methods.losses.negative_cosine import byol_loss
from aclecg.methods.precision import float32_loss

__all__ = ["lcd_loss", "lcd_terms", "random_other_lead"]


def random_other_lead(
    batch: int, n_leads: int, device: torch.device, generator: torch.Generator | None = None
) -> Tensor:
    """``(batch, n_leads)`` indices ``r(b, l) != l`` drawn uniformly among the other leads."""
    shift = torch.randint(1, n_leads, (batch, n_leads), device=device, generator=generator)
    return (torch.arange(n_leads, device=device) + shift) % n_leads


@float32_loss
def lcd_terms(
    p1: Tensor, p2: Tensor, t1: Tensor, t2: Tensor, r12: Tensor | None, r21: Tensor | None
) -> tuple[Tensor, Tensor]:
    """``(L_intra, L_inter)`` from predictions ``p`` and targets ``t`` ``(B, L, d)`` and other-lead indices.

    ``L_inter`` is 0 when ``r12`` or ``r21`` is None (a single lead has no other lead).
    """
    intra = byol_loss(p1, t2) + byol_loss(p2, t1)
    if r12 is None or r21 is None:
        return intra, intra.new_zeros(())
    d = t1.shape[-1]
    t2_other = t2.gather(1, r12.unsqueeze(-1).expand(-1, -1, d))
    t1_other = t1.gather(1, r21.unsqueeze(-1).expand(-1, -1, d))
    inter = byol_loss(p1, t2_other) + byol_loss(p2, t1_other)
    return intra, inter


# long: predictions, targets, lead matches and record embeddings of both views, and the two loss weights
@overload
def lcd_loss(
    p1: Tensor,
    p2: Tensor,
    t1: Tensor,
    t2: Tensor,
    r12: Tensor | None,
    r21: Tensor | None,
    e1: Tensor,
    e2: Tensor,
    gamma: float = ...,
    lambd: float = ...,
    return_terms: Literal[False] = ...,
) -> Tensor: ...


# long: predictions, targets, lead matches and record embeddings of both views, and the two loss weights
@overload
def lcd_loss(
    p1: Tensor,
    p2: Tensor,
    t1: Tensor,
    t2: Tensor,
    r12: Tensor | None,
    r21: Tensor | None,
    e1: Tensor,
    e2: Tensor,
    gamma: float = ...,
    lambd: float = ...,
    *,
    return_terms: Literal[True],
) -> tuple[Tensor, dict[str, Tensor]]: ...


# long: predictions, targets, lead matches and record embeddings of both views, and the two loss weights
def lcd_loss(
    p1: Tensor,
    p2: Tensor,
    t1: Tensor,
    t2: Tensor,
    r12: Tensor | None,
    r21: Tensor | None,
    e1: Tensor,
    e2: Tensor,
    gamma: float = 0.005,
    lambd: float = 0.0051,
    return_terms: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """``L_intra + L_inter + gamma * L_dec``; ``e1``, ``e2`` ``(B, L*D)`` are the record embeddings of the views.

    With ``return_terms`` also ``{"intra_lead": ..., "inter_lead": ..., "decorrelation": ...}`` (not detached).
    """
    intra, inter = lcd_terms(p1, p2, t1, t2, r12, r21)
    dec = barlow_twins_loss(e1, e2, lambd)
    loss = intra + inter + gamma * dec
    return (loss, {"intra_lead": intra, "inter_lead": inter, "decorrelation": dec}) if return_terms else loss
