"""Cross-process helpers so that every loss sees the *global* batch under ``torch.distributed``.

Convention (the one DistributedDataParallel assumes): each rank computes a loss ``L_r`` on its local batch,
DDP averages the parameter gradients over the ``W`` ranks, so the optimised objective is ``mean_r L_r``. The
helpers below make ``mean_r L_r`` equal the single-process loss on the concatenated batch, and its gradient
equal the single-process gradient, provided every rank holds the same number of samples (use
``drop_last=True``):

* contrastive losses (SimCLR, MoCo v3, DLC, DLA, ACL-ECG) take their *anchors* from the local batch and their
  positives/negatives from :func:`gather_with_grad` of the whole batch; the anchor index of local sample ``i``
  in the gathered batch is ``rank() * n + i``;
* batch-statistics losses (Barlow Twins, VICReg, LCD's decorrelation term) gather the whole batch and compute
  the full single-process loss on every rank (``L_r = L``), which the summed backward turns into ``W * dL``
  and DDP's average back into ``dL``.

When ``torch.distributed`` is not initialised (or the world has one process) everything is the identity.

>>> import torch
>>> t = torch.randn(4, 3, requires_grad=True)
>>> gather_with_grad(t) is t     # single process: identity
True
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["gather_no_grad", "gather_with_grad", "is_distributed", "rank", "world_size"]


def is_distributed() -> bool:
    """True when a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along ``dim`` whose backward all-reduces (sums) the gradient and returns the local slice."""

    @staticmethod
    def forward(ctx: Any, t: Tensor, dim: int) -> Tensor:
        ctx.dim = dim
        ctx.local_size = t.shape[dim]
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim=dim)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        local = grad.narrow(ctx.dim, dist.get_rank() * ctx.local_size, ctx.local_size)
        return local, None


def gather_with_grad(t: Tensor, dim: int = 0) -> Tensor:
    """Concatenate ``t`` from all processes along ``dim``, keeping the gradient path to every rank's input.

    The backward sums the gradients that all ranks computed for the gathered tensor and returns this rank's
    slice, so ``mean_r L_r`` (what DDP optimises) gets exactly the single-process gradient. Identity when not
    distributed. Every rank must pass the same shape.
    """
    if not is_distributed():
        return t
    return _GatherWithGrad.apply(t, dim)


@torch.no_grad()
def gather_no_grad(t: Tensor, dim: int = 0) -> Tensor:
    """Concatenate ``t`` from all processes along ``dim`` without a gradient path (e.g. MoCo keys)."""
    if not is_distributed():
        return t
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim=dim)
