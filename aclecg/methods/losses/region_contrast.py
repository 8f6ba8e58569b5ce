"""ACL-ECG's region-level InfoNCE and its combination with the instance NT-Xent (OUR RECONSTRUCTION).

Liu, Wu, Yuan. "ACL-ECG: Anatomy-Aware Contrastive Learning for Multi-Lead Electrocardiograms".
Sensors 26(3):1080, 2026 (doi:10.3390/s26031080). The paper describes region-level objectives for intra-region
consistency and inter-region discriminability without formulas; the loss below is this project's
reconstruction (see :mod:`aclecg.methods.acl_ecg`).

With projected region embeddings ``u^v_{b,g}`` the region term is ONE NT-Xent (:mod:`.ntxent`) over all ``2 B G``
(record, region, view) items of the batch:

    L_region = NTXent({u^1_{b,g}}, {u^2_{b,g}}; tau)
      positive of (b, g, view 1): (b, g, view 2)                          -> intra-region consistency
      negatives: (b, g' != g, both views) and (b' != b, any g', both views)  -> inter-region discriminability

plus an instance-level NT-Xent on the projected record embeddings ``z^v_b``:

    L = lambda_region * L_region + lambda_instance * L_instance,    tau = 0.1, lambda_region = lambda_instance = 1

Example:
    >>> import torch
    >>> u1, u2 = torch.randn(4, 4, 16), torch.randn(4, 4, 16)   # (records, regions, dim)
    >>> float(region_nt_xent(u1, u2, 0.1)) > 0
    True
    >>> loss, terms = acl_ecg_loss(u1, u2, torch.randn(4, 8), torch.randn(4, 8), 0.1, return_terms=True)
    >>> list(terms)
    ['region', 'instance']
"""

from __future__ import annotations

from typing import Literal, overload

from torch import Tensor

from aclecg.methods.losses.ntxent import nt_xent
from aclecg.methods.precision import float32_loss

__all__ = ["acl_ecg_loss", "region_nt_xent"]


@float32_loss
def region_nt_xent(u1: Tensor, u2: Tensor, temperature: float) -> Tensor:
    """One NT-Xent over all (record, region) items: ``u1``, ``u2`` ``(B, G, d)``; positives share (b, g)."""
    b, g, d = u1.shape
    return nt_xent(u1.reshape(b * g, d), u2.reshape(b * g, d), temperature)


@overload
def acl_ecg_loss(
    u1: Tensor,
    u2: Tensor,
    z1: Tensor,
    z2: Tensor,
    temperature: float,
    region_weight: float = ...,
    instance_weight: float = ...,
    return_terms: Literal[False] = ...,
) -> Tensor: ...


@overload
def acl_ecg_loss(
    u1: Tensor,
    u2: Tensor,
    z1: Tensor,
    z2: Tensor,
    temperature: float,
    region_weight: float = ...,
    instance_weight: float = ...,
    *,
    return_terms: Literal[True],
) -> tuple[Tensor, dict[str, Tensor]]: ...


def acl_ecg_loss(
    u1: Tensor,
    u2: Tensor,
    z1: Tensor,
    z2: Tensor,
    temperature: float,
    region_weight: float = 1.0,
    instance_weight: float = 1.0,
    return_terms: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """``region_weight * L_region(u1, u2) + instance_weight * L_instance(z1, z2)``.

    ``u1``, ``u2``: ``(B, G, d)`` projected region embeddings; ``z1``, ``z2``: ``(B, d')`` projected record
    embeddings. With ``return_terms`` also ``{"region": L_region, "instance": L_instance}`` (not detached).
    """
    region = region_nt_xent(u1, u2, temperature)
    instance = nt_xent(z1, z2, temperature)
    loss = region_weight * region + instance_weight * instance
    return (loss, {"region": region, "instance": instance}) if return_terms else loss
