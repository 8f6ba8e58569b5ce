"""ACL-ECG: anatomy-aware contrastive learning with region-level and instance-level objectives.

Liu, Wu, Yuan. "ACL-ECG: Anatomy-Aware Contrastive Learning for Multi-Lead Electrocardiograms".
Sensors 26(3):1080, 2026 (doi:10.3390/s26031080).

What the paper states: physiology-aware augmentation (Physio-AUG: random scale cropping, cardiac-cycle
masking, temporal shifting), leads grouped into anterior, inferior, septal and lateral regions, and
region-level contrastive objectives for *intra-region consistency* and *inter-region discriminability*.
Its formulas are not public: the objective below is OUR RECONSTRUCTION of that description.

Lead features ``F^v in R^{B x L x D}`` are pooled into region embeddings with the row-normalised assignment
matrix ``A in R^{G x L}`` of :meth:`aclecg.leads.RegionMap.assignment_matrix` (mean over a region's leads; aVR
is in no region by default): ``R^v_{b,g} = sum_l A_{g,l} F^v_{b,l}``, projected by a shared region projector
``u^v_{b,g} = g_r(R^v_{b,g})``. The region term is ONE InfoNCE (NT-Xent) over all ``2 B G`` (record, region,
view) items of the batch:

    L_region = NTXent({u^1_{b,g}}, {u^2_{b,g}}; tau)
      positive of (b, g, view 1): (b, g, view 2)                          -> intra-region consistency
      negatives: (b, g' != g, both views) and (b' != b, any g', both views)  -> inter-region discriminability

plus an instance-level NT-Xent on the projected record embeddings ``z^v_b = g_i(E^v_b)``:

    L = lambda_region * L_region + lambda_instance * L_instance,    tau = 0.1, lambda_region = lambda_instance = 1

Ablation switches: ``augmentation="standard"`` (the training engine reads ``method.default_augmentation``)
and ``region_weight=0`` (instance term only). Negatives are gathered across processes. The loss is
:func:`aclecg.methods.losses.acl_ecg_loss`.

Example:
    >>> import torch
    >>> from aclecg.methods import create_method
    >>> method = create_method("acl_ecg", "small")
    >>> method.region_names, method.default_augmentation
    (('septal', 'anterior', 'lateral', 'inferior'), 'physio')
    >>> list(method(torch.randn(4, 12, 250), torch.randn(4, 12, 250)))
    ['loss', 'region', 'instance']
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from aclecg.constraints import Constraint, Integer, Real
from aclecg.errors import ConfigError
from aclecg.methods.base import SSLMethod
from aclecg.methods.heads import projection_head
from aclecg.methods.losses import acl_ecg_loss
from aclecg.methods.registry import register_method

__all__ = ["ACLECG", "pool_regions"]


def pool_regions(lead_features: Tensor, assignment: Tensor) -> Tensor:
    """``(B, L, D)`` lead features -> ``(B, G, D)`` region embeddings with ``assignment`` ``(G, L)``."""
    return torch.einsum("gl,bld->bgd", assignment.to(lead_features.dtype), lead_features)


@register_method
class ACLECG(SSLMethod):
    """ACL-ECG (reconstructed objective): region-level InfoNCE + instance-level NT-Xent, Physio-AUG views."""

    NAME = "acl_ecg"
    TITLE = "ACL-ECG (anatomy-aware contrastive learning)"
    PAPER = (
        "Liu, Wu, Yuan, ACL-ECG: Anatomy-Aware Contrastive Learning for Multi-Lead Electrocardiograms, "
        "Sensors 26(3):1080, 2026"
    )
    DESCRIPTION = (
        "Region-level InfoNCE over (record, region) pairs + instance NT-Xent; Physio-AUG views. "
        "Loss formulas reconstructed from the paper's description."
    )
    RECONSTRUCTION = True
    LOSS_TERMS = ("loss", "region", "instance")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "augmentation": "physio",
        "temperature": 0.1,
        "region_weight": 1.0,
        "instance_weight": 1.0,
        "region_proj_hidden_dim": 64,
        "region_proj_dim": 32,
        "proj_hidden_dim": 256,
        "proj_dim": 64,
    }
    PARAMS: ClassVar[dict[str, Constraint]] = {
        "temperature": Real(0, lo_open=True),
        "region_weight": Real(0),
        "instance_weight": Real(0),
        "region_proj_hidden_dim": Integer(1),
        "region_proj_dim": Integer(1),
        "proj_hidden_dim": Integer(1),
        "proj_dim": Integer(1),
    }
    # Buffer registered in ``__init__``, declared for the type checker.
    assignment: Tensor

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        assignment = self.region_map.assignment_matrix(self.leads)
        if assignment.shape[0] == 0:
            raise ConfigError(
                f"method 'acl_ecg': no region of the region map {self.region_map.to_dict()} has a "
                f"lead among the encoder's leads {list(self.leads)}"
            )
        self.region_names: tuple[str, ...] = tuple(self.region_map.indices(self.leads))
        self.register_buffer("assignment", torch.from_numpy(assignment), persistent=False)
        self.region_projector = projection_head(
            self.encoder.feature_dim, h["region_proj_hidden_dim"], h["region_proj_dim"]
        )
        self.projector = projection_head(self.encoder.embedding_dim, h["proj_hidden_dim"], h["proj_dim"])

    def _check_hparams(self) -> None:
        self._require(
            self.hparams["region_weight"] + self.hparams["instance_weight"] > 0,
            "region_weight",
            "> 0 or instance_weight > 0 (both are 0: nothing to learn)",
        )

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        out1, out2 = self.encoder(view1), self.encoder(view2)
        h = self.hparams
        u1 = self.region_projector(pool_regions(out1.lead_features, self.assignment))
        u2 = self.region_projector(pool_regions(out2.lead_features, self.assignment))
        z1, z2 = self.projector(out1.embedding), self.projector(out2.embedding)
        loss, terms = acl_ecg_loss(
            u1, u2, z1, z2, h["temperature"], h["region_weight"], h["instance_weight"], return_terms=True
        )
        return {"loss": loss, **{name: term.detach() for name, term in terms.items()}}

    def extra_state_description(self) -> dict[str, Any]:
        return {
            "regions": {name: [self.leads[i] for i in idx] for name, idx in self.region_map.indices(self.leads).items()}
        }
