"""The step interface (:class:`Augmentation`) and the pipeline (:class:`Compose`), which fuses runs of warp steps.

A step draws its random parameters, plans (the R-peaks after it and its ``info``) and renders; a step that only
moves or blanks samples describes itself as a :class:`~aclecg.augment.warp.Warp` instead of rendering, so that
:class:`Compose` can render a run of them in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from aclecg.augment.draws import Draws, uniform
from aclecg.augment.params import STEP_CONSTRAINTS, check_step
from aclecg.augment.rpeaks import check_signal, sanitize_rpeaks
from aclecg.augment.warp import WARP_ORDER, Warp, render_warp
from aclecg.constraints import Constraint

__all__ = ["Augmentation", "Compose", "Info"]

#: what a step reports about one call: per-sample tensors (and a few plain values), see each step
Info = dict[str, Any]


class Augmentation:
    """Base class: a callable ``aug(x, rpeaks=None, generator=None) -> Tensor``.

    A step is split in four parts so that pipelines can be fused and tested against a reference:

    * :meth:`sample_params` draws every random number (vectorised over the batch);
    * :meth:`plan` turns parameters into the R-peaks after the step and the ``info`` dict (cheap, never reads the
      signal's values);
    * :meth:`render` computes the augmented signal;
    * steps that only move or blank samples (crop, cycle masks with zero fill, time-out, shift) set
      :attr:`warp_kind` and describe themselves with :meth:`warp_update`; :class:`Compose` then renders a run of
      them (crop -> masks -> shift) in one pass with :func:`render_warp`.

    ``p`` is the per-sample probability that the step is applied; samples where it is not pass through unchanged
    (``info["applied"]`` says which).
    """

    #: registered name; a class default that a built step may override with its spec's spelling (registry)
    name: str = "augmentation"
    #: "crop", "mask" or "shift" for steps rendered as a :class:`Warp`; ``None`` for the others
    warp_kind: str | None = None
    #: whether the step reads the R-peaks to draw its parameters or render (not just to move them)
    reads_rpeaks: bool = False
    #: parameter name -> one-line description with its accepted range (used by docs, errors and the app)
    PARAMS: ClassVar[dict[str, str]] = {}
    #: the accepted values of the step's own parameters (:mod:`aclecg.constraints`; ``p`` and ``fs`` are in
    #: :data:`~aclecg.augment.params.STEP_CONSTRAINTS`), checked when the step is built
    CONSTRAINTS: ClassVar[dict[str, Constraint]] = {}

    def __init__(self, p: float = 1.0, fs: float = 100.0) -> None:
        checked = check_step(self.name, STEP_CONSTRAINTS, {"p": p, "fs": fs})
        self.p: float = checked["p"]
        self.fs: float = checked["fs"]

    # -- to be implemented -------------------------------------------------------------------------------------
    def sample_params(self, x: Tensor, rpeaks: Tensor, generator: Draws) -> dict[str, Tensor]:
        """Draw this step's per-sample random parameters (tensors on ``x``'s device; reads only its shape)."""
        return {}

    def plan(
        self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], detail: bool = True, need_peaks: bool = True
    ) -> tuple[Tensor, Info]:
        """R-peaks after the step and the info dict (reads only ``x``'s shape and device).

        ``detail=False`` (augmenting without returning info, e.g. in training) lets a step put only what rendering
        needs in ``info``; ``need_peaks=False`` lets it return the R-peaks unmoved, when no later step reads them.
        """
        return rpeaks, dict(params)

    def render(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info) -> Tensor:
        """The augmented signal for fixed parameters (``info`` from :meth:`plan`)."""
        if self.warp_kind is None:
            raise NotImplementedError(f"{type(self).__name__} must implement render or warp_update")
        return self._render_as_warp(x, params, info, None)

    def _render_as_warp(self, x: Tensor, params: Mapping[str, Tensor], info: Info, applied: Tensor | None) -> Tensor:
        return render_warp(x, self.warp_update(Warp.identity(x), x, params, info, applied))

    def warp_update(
        self, warp: Warp, x: Tensor, params: Mapping[str, Tensor], info: Info, applied: Tensor | None
    ) -> Warp:
        """``warp`` followed by this step (only for steps with a :attr:`warp_kind`); samples where ``applied`` is
        False keep ``warp`` unchanged (``None``: applied everywhere)."""
        raise NotImplementedError(f"{type(self).__name__} is not a warp step")

    def config(self) -> dict[str, Any]:
        """The plain-data spec that rebuilds this step (``{"name": ..., **params}``)."""
        return {"name": self.name, "p": self.p}

    # -- shared machinery ----------------------------------------------------------------------------------------
    def apply(self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Info]:
        """Apply with fixed ``params`` (ignores ``p``); return ``(y, rpeaks_after, info)``."""
        peaks, info = self.plan(x, rpeaks, params)
        return self.render(x, rpeaks, params, info), peaks, info

    def prepare(
        self, x: Tensor, rpeaks: Tensor, generator: Draws, detail: bool = True, need_peaks: bool = True
    ) -> tuple[dict[str, Tensor], Tensor, Tensor, Info]:
        """Draw parameters and the ``p`` decision, plan; return ``(params, applied, rpeaks_after, info)``."""
        params = self.sample_params(x, rpeaks, generator)
        if self.p < 1.0:
            applied = uniform((x.shape[0],), generator, x.device) < self.p
        else:
            applied = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        peaks, info = self.plan(x, rpeaks, params, detail=detail, need_peaks=need_peaks or self.p < 1.0)
        if self.p < 1.0:
            peaks = torch.where(applied[:, None], peaks, rpeaks)
        info["applied"] = applied
        info["rpeaks"] = peaks
        return params, applied, peaks, info

    def render_applied(
        self, x: Tensor, rpeaks: Tensor, params: Mapping[str, Tensor], info: Info, applied: Tensor
    ) -> Tensor:
        """:meth:`render`, passing through the samples where the step is not applied."""
        if self.warp_kind is not None:
            return self._render_as_warp(x, params, info, applied)
        y = self.render(x, rpeaks, params, info)
        return y if self.p >= 1.0 else torch.where(applied[:, None, None], y, x)

    def step(self, x: Tensor, rpeaks: Tensor, generator: Draws, detail: bool = True) -> tuple[Tensor, Tensor, Info]:
        """One step on sanitised inputs: draw, plan, render, honouring ``p``. With ``detail=False`` the info holds
        only what rendering needed and the returned R-peaks may be stale (see :meth:`plan`)."""
        params, applied, peaks, info = self.prepare(x, rpeaks, generator, detail=detail, need_peaks=detail)
        return self.render_applied(x, rpeaks, params, info, applied), peaks, info

    def forward_with_info(
        self, x: Tensor, rpeaks: Tensor | None = None, generator: Draws = None
    ) -> tuple[Tensor, Info]:
        """Augment and describe what was done (a dict of per-sample tensors, see each class)."""
        check_signal(x)
        peaks = sanitize_rpeaks(rpeaks, x)
        y, _, info = self.step(x, peaks, generator)
        return y, info

    def __call__(self, x: Tensor, rpeaks: Tensor | None = None, generator: Draws = None) -> Tensor:
        """Augment; the same output as :meth:`forward_with_info` for the same generator state, without building
        the info (the fast path used in training)."""
        check_signal(x)
        peaks = sanitize_rpeaks(rpeaks, x)
        return self.step(x, peaks, generator, detail=False)[0]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Compose(Augmentation):
    """Apply steps in order; R-peaks are carried through every geometric step.

    ``forward_with_info`` returns ``info`` keyed ``"<i>:<step name>"`` (in order), each value being that step's
    info dict. Every step's dict has ``applied`` (B,) and ``rpeaks`` (B, K) after the step.

    With ``fuse=True`` (default) consecutive warp steps in the order crop -> masks -> shift (Physio-AUG, and the
    standard crop + time-out) are folded into one :class:`Warp` and rendered in one pass; a step out of that order
    starts a new pass. The result equals rendering step by step (``fuse=False``): masks and shifts move whole
    samples, so only the crop interpolates, once either way.
    """

    name = "compose"

    def __init__(self, steps: Sequence[Augmentation], fs: float = 100.0, fuse: bool = True) -> None:
        super().__init__(p=1.0, fs=fs)
        self.steps = list(steps)
        self.fuse = fuse

    def step(self, x: Tensor, rpeaks: Tensor, generator: Draws, detail: bool = True) -> tuple[Tensor, Tensor, Info]:
        info: Info = {}
        pending: list[tuple[Augmentation, dict[str, Tensor], Info, Tensor]] = []
        stage = 0  # WARP_ORDER of the last pending step
        for i, part in enumerate(self.steps):
            need_peaks = detail or any(later.reads_rpeaks for later in self.steps[i + 1 :])
            params, applied, peaks, part_info = part.prepare(x, rpeaks, generator, detail=detail, need_peaks=need_peaks)
            info[f"{i}:{part.name}"] = part_info
            kind = part.warp_kind if self.fuse else None
            if kind is None:
                x = self._flush(x, pending)
                pending, stage = [], 0
                x = part.render_applied(x, rpeaks, params, part_info, applied)
            else:
                order = WARP_ORDER[kind]
                if pending and not (order > stage or (kind == "mask" and stage == order)):
                    x = self._flush(x, pending)
                    pending = []
                pending.append((part, params, part_info, applied))
                stage = order
            rpeaks = peaks
        return self._flush(x, pending), rpeaks, info

    @staticmethod
    def _flush(x: Tensor, pending: Sequence[tuple[Augmentation, dict[str, Tensor], Info, Tensor]]) -> Tensor:
        """Render the pending run of warp steps onto ``x`` in one pass."""
        if not pending:
            return x
        warp = Warp.identity(x)
        for part, params, part_info, applied in pending:
            warp = part.warp_update(warp, x, params, part_info, None if part.p >= 1.0 else applied)
        return render_warp(x, warp)

    def config(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [part.config() for part in self.steps]

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.steps)) + "])"
