"""SimCLR: the NT-Xent (normalised temperature-scaled cross-entropy) loss between two views, in-batch negatives.

Chen, Kornblith, Norouzi, Hinton. "A Simple Framework for Contrastive Learning of Visual Representations".
ICML 2020 (arXiv:2002.05709).

For a batch of ``N`` records with projections ``z_i`` (view 1) and ``z_{N+i}`` (view 2), all L2-normalised,
``sim(u, v) = u . v / tau`` and for each of the ``2N`` anchors ``a`` with positive ``p(a)``:

    l(a) = -log( exp(sim(z_a, z_p(a))) / sum_{k != a} exp(sim(z_a, z_k)) ),      L = mean_a l(a)

The negatives are the other ``2N - 2`` projections of the batch; across processes the keys are gathered with
:func:`~aclecg.methods.distributed.gather_with_grad` (anchors stay local). The loss is
:func:`aclecg.methods.losses.nt_xent`.

Defaults: temperature 0.1 (the value used by ECG contrastive work, e.g. the ELIC/LCD authors, and SimCLR's
best large-batch value; SimCLR's CIFAR setting is 0.5); projector Linear-BN-ReLU-Linear 768 -> 256 -> 64
(published 2048 -> 128, scaled to the small encoder).

Example:
    >>> import torch
    >>> from aclecg.methods import create_method
    >>> method = create_method("simclr", "small", temperature=0.2)
    >>> sorted(method(torch.randn(4, 12, 250), torch.randn(4, 12, 250)))
    ['loss', 'nt_xent']
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from aclecg.constraints import Constraint, Integer, Real
from aclecg.methods.base import SSLMethod
from aclecg.methods.heads import projection_head
from aclecg.methods.losses import nt_xent
from aclecg.methods.registry import register_method

__all__ = ["SimCLR"]


@register_method
class SimCLR(SSLMethod):
    """SimCLR on the record embedding: shared projector, NT-Xent with in-batch negatives."""

    NAME = "simclr"
    TITLE = "SimCLR"
    PAPER = "Chen et al., A Simple Framework for Contrastive Learning of Visual Representations, ICML 2020"
    DESCRIPTION = "NT-Xent between the projected record embeddings of two views; in-batch negatives."
    LOSS_TERMS = ("loss", "nt_xent")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "augmentation": "standard",
        "temperature": 0.1,
        "proj_hidden_dim": 256,
        "proj_dim": 64,
    }
    PARAMS: ClassVar[dict[str, Constraint]] = {
        "temperature": Real(0, lo_open=True),
        "proj_hidden_dim": Integer(1),
        "proj_dim": Integer(1),
    }

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        self.projector = projection_head(self.encoder.embedding_dim, h["proj_hidden_dim"], h["proj_dim"])

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        z1 = self.projector(self.encoder(view1).embedding)
        z2 = self.projector(self.encoder(view2).embedding)
        loss = nt_xent(z1, z2, self.hparams["temperature"])
        return {"loss": loss, "nt_xent": loss.detach()}
