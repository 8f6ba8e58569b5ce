"""DLA: Dense Lead Alignment -- OUR RECONSTRUCTION (no public definition of this baseline was found).

The ACL-ECG paper (Liu, Wu, Yuan, Sensors 26(3):1080, 2026) lists "DLA" among its baselines without a
definition we could find. This module implements a method consistent with the name and marked
``reconstruction=True`` everywhere: each lead of view 1 must be *assigned* to the same lead of view 2 among all
leads of the same record (a soft assignment whose target is the identity), and records are aligned lead by
lead across the batch.

With lead projections ``h^v_{b,l}`` (shared projector, L2-normalised), ``S_b[l, m] = h^1_{b,l} . h^2_{b,m} / tau``:

    L_assign   = 1 / (2 B L) sum_b sum_l [ -log softmax_m(S_b[l, :])_l  - log softmax_m(S_b[:, l])_l ]
    L_instance = NT-Xent over records with similarity sim(b, b') = mean_l cos(h^1_{b,l}, h^2_{b',l}) / tau
    L = L_assign + w_inst * L_instance,           tau = 0.1, w_inst = 1

``L_assign`` alone can be solved by telling leads apart without describing the record; ``L_instance`` (whose
negatives are gathered across processes) makes the aligned lead features record-specific. The loss is
:func:`aclecg.methods.losses.dla_loss`.

Example:
    >>> import torch
    >>> from aclecg.methods import create_method
    >>> method = create_method("dla", "small")
    >>> method.RECONSTRUCTION
    True
    >>> list(method(torch.randn(4, 12, 250), torch.randn(4, 12, 250)))
    ['loss', 'assignment', 'instance']
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from aclecg.constraints import Constraint, Integer, Real
from aclecg.methods.base import SSLMethod
from aclecg.methods.heads import projection_head
from aclecg.methods.losses import dla_loss
from aclecg.methods.registry import register_method

__all__ = ["DLA"]


@register_method
class DLA(SSLMethod):
    """Dense Lead Alignment (reconstruction): within-record lead assignment + lead-aligned instance contrast."""

    NAME = "dla"
    TITLE = "DLA (Dense Lead Alignment, reconstruction)"
    PAPER = (
        "Baseline named in Liu et al., ACL-ECG, Sensors 26(3):1080, 2026; no public definition found -- "
        "objective reconstructed by this project"
    )
    DESCRIPTION = (
        "RECONSTRUCTION: soft assignment of each lead to the same lead of the other view + "
        "lead-aligned record contrast."
    )
    RECONSTRUCTION = True
    LOSS_TERMS = ("loss", "assignment", "instance")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "augmentation": "standard",
        "temperature": 0.1,
        "instance_weight": 1.0,
        "proj_hidden_dim": 64,
        "proj_dim": 32,
    }
    PARAMS: ClassVar[dict[str, Constraint]] = {
        "temperature": Real(0, lo_open=True),
        "instance_weight": Real(0),
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
        h = self.hparams
        loss, terms = dla_loss(h1, h2, h["temperature"], h["instance_weight"], return_terms=True)
        return {"loss": loss, **{name: term.detach() for name, term in terms.items()}}
