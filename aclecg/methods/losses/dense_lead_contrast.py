"""DLC's dense lead contrast: NT-Xent between every lead of view 1 and every lead of view 2.

Liu, Li, Zhang, Chang, Wang, He, Huang. "Dense lead contrast for self-supervised representation learning of
multilead electrocardiograms". Information Sciences 634:189-205, 2023 (doi:10.1016/j.ins.2023.03.099).

With lead projections ``h^v_{b,l}``, let ``NTXent_{l,m}`` be the NT-Xent loss (:mod:`.ntxent`) between
``{h^1_{b,l}}_b`` and ``{h^2_{b,m}}_b``: the positive of record ``b``'s lead ``l`` in view 1 is the same record's
lead ``m`` in view 2, negatives are the other records' (lead ``l``, view 1) and (lead ``m``, view 2) features:

    L_intra = mean_l NTXent_{l,l}                 (same lead across views)
    L_inter = mean_{l != m} NTXent_{l,m}          (different leads of the same record across views)
    L = L_intra + w_inter * L_inter               (w_inter = 1, our choice)

All ``L^2`` pairs are computed in one batched tensor operation; negatives are gathered across processes.

Example:
    >>> import torch
    >>> intra, inter = dlc_terms(torch.randn(8, 3, 16), torch.randn(8, 3, 16), 0.1)
    >>> float(intra) > 0 and float(inter) > 0
    True
    >>> dlc_loss(torch.randn(8, 3, 16), torch.randn(8, 3, 16), 0.1, inter_weight=0.5).shape
    torch.Size([])
"""

from __future__ import annotations

from typing import Literal, overload

import torch
from torch import Tensor

from aclecg.methods.losses.ntxent import nt_xent_batched
from aclecg.methods.precision import float32_loss

__all__ = ["dlc_loss", "dlc_terms", "lead_pair_nt_xent"]


def lead_pair_nt_xent(h1: Tensor, h2: Tensor, temperature: float) -> Tensor:
    """``(L, L)`` matrix of NT-Xent losses between lead ``l`` of view 1 and lead ``m`` of view 2.

    ``h1``, ``h2``: ``(n, L, d)`` lead projections of the local batch.
    """
    n, n_leads, d = h1.shape
    a = h1.transpose(0, 1)  # (L, n, d)
    b = h2.transpose(0, 1)
    za = a.unsqueeze(1).expand(n_leads, n_leads, n, d).reshape(n_leads * n_leads, n, d)
    zb = b.unsqueeze(0).expand(n_leads, n_leads, n, d).reshape(n_leads * n_leads, n, d)
    return nt_xent_batched(za, zb, temperature).reshape(n_leads, n_leads)


@float32_loss
def dlc_terms(h1: Tensor, h2: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """``(L_intra, L_inter)``; ``L_inter`` is 0 with a single lead."""
    pair = lead_pair_nt_xent(h1, h2, temperature)
    n_leads = pair.shape[0]
    eye = torch.eye(n_leads, dtype=torch.bool, device=pair.device)
    intra = pair[eye].mean()
    inter = pair[~eye].mean() if n_leads > 1 else pair.new_zeros(())
    return intra, inter


@overload
def dlc_loss(
    h1: Tensor, h2: Tensor, temperature: float, inter_weight: float = ..., return_terms: Literal[False] = ...
) -> Tensor: ...


@overload
def dlc_loss(
    h1: Tensor, h2: Tensor, temperature: float, inter_weight: float = ..., *, return_terms: Literal[True]
) -> tuple[Tensor, dict[str, Tensor]]: ...


def dlc_loss(
    h1: Tensor, h2: Tensor, temperature: float, inter_weight: float = 1.0, return_terms: bool = False
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """``L_intra + inter_weight * L_inter`` of lead projections ``h1``, ``h2`` ``(n, L, d)``.

    With ``return_terms`` also ``{"intra_lead": L_intra, "inter_lead": L_inter}`` (not detached).
    """
    intra, inter = dlc_terms(h1, h2, temperature)
    loss = intra + inter_weight * inter
    return (loss, {"intra_lead": intra, "inter_lead": inter}) if return_terms else loss
