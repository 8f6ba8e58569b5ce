"""EMA (momentum) target networks, shared by BYOL, MoCo and LCD (in the style of solo-learn's momentum base class).

A :class:`MomentumMethod` owns, next to the online ``encoder`` and ``projector``, frozen copies
``target_encoder`` and ``target_projector`` that change only in :meth:`MomentumMethod.momentum_update`:

    theta_target <- m * theta_target + (1 - m) * theta_online

with ``m`` either constant (MoCo v2, LCD by default) or BYOL's cosine schedule from the base momentum to 1
(BYOL, MoCo v3, LCD with ``momentum_schedule="cosine"``). The targets are submodules, so they are in
``state_dict()`` (as ``target_encoder.*`` and ``target_projector.*``) and resume with the rest.

Example:
    >>> round(cosine_momentum(0.996, 0.0), 6), cosine_momentum(0.996, 1.0)
    (0.996, 1.0)
    >>> from torch import nn
    >>> online = nn.Linear(2, 2)
    >>> target = make_momentum_copy(online)
    >>> target.weight.requires_grad
    False
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from aclecg.methods.base import SSLMethod
from aclecg.models import ECGEncoder

__all__ = ["MomentumMethod", "cosine_momentum", "ema_update_", "make_momentum_copy"]


def make_momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` for an EMA/momentum target.

    Its BatchNorm layers keep no running statistics (they always normalise with the batch, as the online
    branch does in training), so the copy changes *only* through :func:`ema_update_`.
    """
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    for m in target.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``theta_target <- m * theta_target + (1 - m) * theta_online`` for every parameter."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)


def cosine_momentum(base: float, progress: float) -> float:
    """BYOL's schedule ``1 - (1 - base) * (cos(pi * progress) + 1) / 2``: ``base`` at 0, 1 at the end."""
    p = min(max(float(progress), 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * p) + 1.0) / 2.0


class MomentumMethod(SSLMethod):
    """An :class:`SSLMethod` with EMA copies of its encoder and projector.

    Subclasses build ``self.projector`` (and any predictor) in ``__init__``, then call :meth:`_build_targets`;
    they name the hyper-parameter holding the base momentum in :attr:`MOMENTUM_HPARAM` and override
    :meth:`momentum_schedule` when it is not BYOL's cosine schedule.
    """

    #: The hyper-parameter with the base momentum (``m`` of a constant schedule, the start of a cosine one).
    MOMENTUM_HPARAM: ClassVar[str] = "base_momentum"
    #: ``(target, online)`` attribute pairs kept as EMA copies, in the order they are updated.
    EMA_PAIRS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("target_encoder", "encoder"),
        ("target_projector", "projector"),
    )
    target_encoder: ECGEncoder
    target_projector: nn.Module

    def _build_targets(self) -> None:
        """Create the frozen EMA copies of the online modules (after the projector has been built)."""
        for target, online in self.EMA_PAIRS:
            setattr(self, target, make_momentum_copy(getattr(self, online)))
        self._momentum: float = float(self.base_momentum)

    @property
    def base_momentum(self) -> float:
        return self.hparams[self.MOMENTUM_HPARAM]

    def momentum_schedule(self) -> str:
        """``"constant"`` or ``"cosine"`` (the default, BYOL's)."""
        return "cosine"

    @torch.no_grad()
    def target_forward(self, x: Tensor, lead_level: bool = False) -> Tensor:
        """The target projection of ``x`` without gradient: of the record embedding, or of every lead feature."""
        out = self.target_encoder(x)
        return self.target_projector(out.lead_features if lead_level else out.embedding)

    def effective_base_momentum(self, total_steps: int | None = None) -> float:
        """The base momentum, capped so the EMA forgets its start within the run (hyper-parameter
        ``ema_half_life``: the target's half-life as a share of ``total_steps``; None keeps the paper's value).

        The papers' momenta (0.99-0.999) assume 10^5-10^6 steps. Over a few hundred steps a target updated with
        0.999 still holds 0.999^260 = 77 % of its random initialisation. With ``ema_half_life = 0.05`` the base
        momentum is at most ``0.5 ** (1 / (0.05 * total_steps))`` (0.948 at 260 steps, 0.991 at 1,560, the
        paper's 0.996 from about 3,500 steps on), so the target holds under 1e-6 of its start at the end.
        """
        base = float(self.base_momentum)
        share = self.hparams.get("ema_half_life")
        if share is None or not total_steps:
            return base
        return min(base, 0.5 ** (1.0 / max(1.0, float(share) * total_steps)))

    def momentum_update(self, progress: float, total_steps: int | None = None) -> None:
        """Set the momentum for ``progress`` in [0, 1] and move every target towards its online module."""
        base = self.effective_base_momentum(total_steps)
        self._momentum = cosine_momentum(base, progress) if self.momentum_schedule() == "cosine" else base
        for target, online in self.EMA_PAIRS:
            ema_update_(getattr(self, target), getattr(self, online), self._momentum)

    def extra_state_description(self) -> dict[str, Any]:
        return {
            "ema": {
                "modules": [target for target, _ in self.EMA_PAIRS],
                "base_momentum": self.base_momentum,
                "schedule": self.momentum_schedule(),
                "current_momentum": self._momentum,
            }
        }
