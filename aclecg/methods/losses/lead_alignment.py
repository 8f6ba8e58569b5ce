"""DLA's lead alignment: within-record lead assignment + lead-aligned record contrast (OUR RECONSTRUCTION).

"DLA" is a baseline named in Liu, Wu, Yuan, "ACL-ECG: Anatomy-Aware Contrastive Learning for Multi-Lead
Electrocardiograms", Sensors 26(3):1080, 2026, without a public definition; this objective is this project's
reconstruction (see :mod:`aclecg.methods.dla`). With lead projections ``h^v_{b,l}`` (L2-normalised) and
``S_b[l, m] = h^1_{b,l} . h^2_{b,m} / tau``:

    L_assign   = 1 / (2 B L) sum_b sum_l [ -log softmax_m(S_b[l, :])_l  - log softmax_m(S_b[:, l])_l ]
    L_instance = NT-Xent over records with similarity sim(b, b') = mean_l cos(h^1_{b,l}, h^2_{b',l}) / tau
    L = L_assign + w_inst * L_instance,           tau = 0.1, w_inst = 1

Example:
    >>> import torch
    >>> h = torch.nn.functional.normalize(torch.eye(4).repeat(2, 1, 1), dim=-1)  # 2 records, 4 leads
    >>> float(lead_assignment_loss(h, h, 0.01)) < 1e-6    # perfect, confident assignment
    True
    >>> loss, terms = dla_loss(torch.randn(8, 4, 16), torch.randn(8, 4, 16), 0.1, return_terms=True)
    >>> list(terms)
    ['assignment', 'instance']
"""

from __future__ import annotations

from typing import Literal, overload

import torch
import torch.nn.functional as F
from torch import Tensor

from aclecg.methods.losses.ntxent import nt_xent
from aclecg.methods.precision import float32_loss

__all__ = ["dla_loss", "lead_aligned_instance_loss", "lead_assignment_loss"]


@float32_loss
def lead_assignment_loss(h1: Tensor, h2: Tensor, temperature: float) -> Tensor:
    """Symmetric soft-assignment cross-entropy with the identity as target; ``h1``, ``h2``: ``(B, L, d)``."""
    a = F.normalize(h1, dim=-1)
    b = F.normalize(h2, dim=-1)
    sim = a @ b.transpose(1, 2) / temperature  # (B, L, L)
    n_leads = sim.shape[-1]
    target = torch.arange(n_leads, device=sim.device).expand(sim.shape[0], n_leads)
    rows = F.cross_entropy(sim.reshape(-1, n_leads), target.reshape(-1))
    cols = F.cross_entropy(sim.transpose(1, 2).reshape(-1, n_leads), target.reshape(-1))
    return 0.5 * (rows + cols)


@float32_loss
def lead_aligned_instance_loss(h1: Tensor, h2: Tensor, temperature: float) -> Tensor:
    """NT-Xent over records whose similarity is the mean over leads of per-lead cosine similarities."""
    a = F.normalize(h1, dim=-1).flatten(1)
    b = F.normalize(h2, dim=-1).flatten(1)
    return nt_xent(a, b, temperature)  # nt_xent renormalises: dot / L = mean_l cos


@overload
def dla_loss(
    h1: Tensor, h2: Tensor, temperature: float, instance_weight: float = ..., return_terms: Literal[False] = ...
) -> Tensor: ...


@overload
def dla_loss(
    h1: Tensor, h2: Tensor, temperature: float, instance_weight: float = ..., *, return_terms: Literal[True]
) -> tuple[Tensor, dict[str, Tensor]]: ...


def dla_loss(
    h1: Tensor, h2: Tensor, temperature: float, instance_weight: float = 1.0, return_terms: bool = False
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """``L_assign + instance_weight * L_instance`` of lead projections ``h1``, ``h2`` ``(B, L, d)``.

    With ``return_terms`` also ``{"assignment": L_assign, "instance": L_instance}`` (not detached).
    """
    assign = lead_assignment_loss(h1, h2, temperature)
    instance = lead_aligned_instance_loss(h1, h2, temperature)
    loss = assign + instance_weight * instance
    return (loss, {"assignment": assign, "instance": instance}) if return_terms else loss
