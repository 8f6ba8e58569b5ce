"""LCD: Lead Correlation and Decorrelation.

Liu, Pan, Chang, Huang, Jiang. "Self-supervised learning of multilead ECGs by lead correlation and
decorrelation" (LCD). Applied Soft Computing 172:112871, 2025 (doi:10.1016/j.asoc.2025.112871).

One encoder shared across leads gives lead features ``F^v_{b,l}``; online lead projector ``g`` and predictor
``q`` give ``p^v_{b,l} = q(g(F^v_{b,l}))``; an EMA target (encoder ``f'``, projector ``g'``, momentum
``m = 0.996``) gives ``t^v_{b,l}``. With ``l(p, t) = 2 - 2 cos(p, sg(t))`` and, for every record and lead, a
random *other* lead ``r(b, l) != l`` drawn each step:

    L_intra = mean_{b,l} [ l(p^1_{b,l}, t^2_{b,l}) + l(p^2_{b,l}, t^1_{b,l}) ]             (lead correlation)
    L_inter = mean_{b,l} [ l(p^1_{b,l}, t^2_{b,r(b,l)}) + l(p^2_{b,l}, t^1_{b,r'(b,l)}) ]
    L_dec   = BarlowTwins(E^1, E^2; lambda = 0.0051),  E^v = concatenated lead features (B, L*D)  (decorrelation)
    L = L_intra + L_inter + gamma * L_dec,        gamma = 0.005

Facts from the authors' public description: shared encoder, BYOL-style intra/inter terms with EMA 0.996,
a Barlow-Twins term on concatenated lead features with lambda 0.0051 weighted by gamma 0.005. Our choices:
the equal weights of intra and inter, a constant momentum (``momentum_schedule="cosine"`` gives BYOL's
schedule), lead projector/predictor 64 -> 128 -> 64. ``L_dec`` standardises over the global batch
(gathered across processes; see :mod:`aclecg.methods.losses.barlow`). The loss is
:func:`aclecg.methods.losses.lcd_loss`; the target network and its EMA update come from
:class:`~aclecg.methods.momentum.MomentumMethod`.

Example:
    >>> import torch
    >>> from aclecg.methods import create_method
    >>> method = create_method("lcd", "small", leads=("I", "II", "V1"))
    >>> list(method(torch.randn(4, 3, 250), torch.randn(4, 3, 250)))
    ['loss', 'intra_lead', 'inter_lead', 'decorrelation']
    >>> int(method.draw_step)    # training forwards so far (seeds the other-lead draw)
    1
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from aclecg.constraints import Constraint, Integer, Optional, Options, Real
from aclecg.methods.distributed import rank, world_size
from aclecg.methods.heads import prediction_head, projection_head
from aclecg.methods.losses import lcd_loss, random_other_lead
from aclecg.methods.momentum import MomentumMethod
from aclecg.methods.registry import register_method

__all__ = ["LCD"]


@register_method
class LCD(MomentumMethod):
    """Lead correlation (intra/inter BYOL terms with an EMA target) and decorrelation (Barlow Twins)."""

    NAME = "lcd"
    TITLE = "LCD (Lead Correlation and Decorrelation)"
    PAPER = (
        "Liu et al., Self-supervised learning of multilead ECGs by lead correlation and decorrelation, "
        "Applied Soft Computing 172:112871, 2025"
    )
    DESCRIPTION = (
        "BYOL-style same-lead and other-lead regression with an EMA target + Barlow Twins "
        "decorrelation of concatenated lead features."
    )
    LOSS_TERMS = ("loss", "intra_lead", "inter_lead", "decorrelation")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "augmentation": "standard",
        "base_momentum": 0.996,
        "ema_half_life": None,
        "momentum_schedule": "constant",
        "gamma": 0.005,
        "lambd": 0.0051,
        "proj_hidden_dim": 128,
        "proj_dim": 64,
        "pred_hidden_dim": 128,
    }
    PARAMS: ClassVar[dict[str, Constraint]] = {
        "base_momentum": Real(0, 1, hi_open=True),
        "ema_half_life": Optional(Real(0, 1, lo_open=True)),
        "momentum_schedule": Options(("constant", "cosine")),
        "gamma": Real(0),
        "lambd": Real(0),
        "proj_hidden_dim": Integer(1),
        "proj_dim": Integer(1),
        "pred_hidden_dim": Integer(1),
    }
    # Buffer registered in ``__init__``, declared for the type checker.
    draw_step: Tensor

    def __init__(self, encoder_config: Any = None, region_map: Any = None, **hparams: Any) -> None:
        super().__init__(encoder_config, region_map, **hparams)
        h = self.hparams
        self.projector = projection_head(self.encoder.feature_dim, h["proj_hidden_dim"], h["proj_dim"])
        self.predictor = prediction_head(h["proj_dim"], h["pred_hidden_dim"])
        self._build_targets()
        # Counts training forwards; seeds the other-lead draw so that it is the same for 1 or N processes and
        # is restored on resume (a buffer, so it lives in the checkpoint).
        self.register_buffer("draw_step", torch.zeros((), dtype=torch.int64))

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        out1, out2 = self.encoder(view1), self.encoder(view2)
        p1 = self.predictor(self.projector(out1.lead_features))
        p2 = self.predictor(self.projector(out2.lead_features))
        t1, t2 = self.target_forward(view1, lead_level=True), self.target_forward(view2, lead_level=True)
        b, n_leads = p1.shape[:2]
        r12 = r21 = None
        if n_leads > 1:
            r12, r21 = self._other_leads(b, n_leads, p1.device)
        h = self.hparams
        loss, terms = lcd_loss(
            p1, p2, t1, t2, r12, r21, out1.embedding, out2.embedding, h["gamma"], h["lambd"], return_terms=True
        )
        return {"loss": loss, **{name: term.detach() for name, term in terms.items()}}

    def _other_leads(self, b: int, n_leads: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """The two other-lead index tables of this step for the local slice of the *global* batch.

        Drawn for all ``world_size * b`` records from a generator seeded by the step, then sliced, so that ``N``
        processes draw exactly what one process with the whole batch draws.
        """
        world, me = world_size(), rank()
        gen = torch.Generator().manual_seed(int(self.draw_step) * 2 + 1)
        if self.training:
            self.draw_step += 1
        both = random_other_lead(2 * world * b, n_leads, torch.device("cpu"), generator=gen)
        r12, r21 = both[: world * b], both[world * b :]
        return r12[me * b : (me + 1) * b].to(device), r21[me * b : (me + 1) * b].to(device)

    def momentum_schedule(self) -> str:
        return self.hparams["momentum_schedule"]
