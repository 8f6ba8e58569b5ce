"""DLC: Dense Lead Contrast, contrastive learning between every pair of leads across two views.

Liu, Li, Zhang, Chang, Wang, He, Huang. "Dense lead contrast for self-supervised representation learning of
multilead electrocardiograms". Information Sciences 634:189-205, 2023 (doi:10.1016/j.ins.2023.03.099).

The encoder gives one feature per lead (shared weights across leads, standing in for the paper's multi-branch
network); a shared lead projector maps it to ``h^v_{b,l}``. For a pair of leads ``(l, m)`` let
``NTXent_{l,m}`` be the NT-Xent loss (:mod:`aclecg.methods.losses.ntxent`) between ``{h^1_{b,l}}_b`` and
``{h^2_{b,m}}_b``: the positive of record ``b``'s lead ``l`` in view 1 is the same record's lead ``m`` in view 2,
negatives are the other records' (lead ``l``, view 1) and (lead ``m``, view 2) features. Then

    L_intra = mean_l NTXent_{l,l}                 (same lead across views)
    L_inter = mean_{l != m} NTXent_{l,m}          (different leads of the same record across views)
    L = L_intra + w_inter * L_inter               (w_inter = 1)

The paper gives the intra/inter structure and a joint loss; the equal weighting, ``tau = 0.1`` and the lead
projector 64 -> 64 -> 32 are our choices (documented in docs/methods.md). All ``L^2`` pairs are computed in one
batched tensor operation; negatives are gathered across processes. The loss is
:func:`aclecg.methods.losses.dlc_loss`.

Example:
    >>> import torch
    >>> from aclecg.methods import create_method
    >>> method = create_method("dlc", "small", leads=("I", "II", "V1"))
    >>> list(method(torch.randn(4, 3, 250), torch.randn(4, 3, 250)))
    ['loss', 'intra_lead', 'inter_lead']
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from aclecg.constraints import Constraint, Integer, Real
from aclecg.methods.base import SSLMethod
from aclecg.methods.heads import projection_head
from aclecg.methods.losses import dlc_loss
from aclecg.methods.registry import register_method

__all__ = ["DLC"]


@register_method
class DLC(SSLMethod):
    """Dense Lead Contrast: joint intra-lead and inter-lead NT-Xent on per-lead projections."""

    NAME = "dlc"
    TITLE = "DLC (Dense Lead Contrast)"
    PAPER = (
        "Liu et al., Dense lead contrast for self-supervised representation learning of multilead ECGs, "
        "Information Sciences 634:189-205, 2023"
    )
    DESCRIPTION = "NT-Xent between every lead of view 1 and every lead of view 2 (intra-lead + inter-lead)."
    LOSS_TERMS = ("loss", "intra_lead", "inter_lead")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "augmentation": "standard",
        "temperature": 0.1,
        "inter_weight": 1.0,
        "proj_hidden_dim": 64,
        "proj_dim": 32,
    }
    PARAMS: ClassVar[dict[str, Constraint]] = {
        "temperature": Real(0, lo_open=True),
        "inter_weight": Real(0),
        "proj_hidden_dim": Integer(1),
        "proj_dim": Integer(1),
    }

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        self.projector = projection_head(self.encoder.feature_dim, h["proj_hidden_dim"], h["proj_dim"])

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        h1 = self.projector(self.encoder(view1).lead_features)
        h2 = self.projector(self.encoder(view2).lead_features)
        loss, terms = dlc_loss(h1, h2, self.hparams["temperature"], self.hparams["inter_weight"], return_terms=True)
        return {"loss": loss, **{name: term.detach() for name, term in terms.items()}}
