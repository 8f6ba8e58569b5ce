"""Distributed helpers for the training engine: process-group setup and batch norm synchronised on any device.

PyTorch's ``nn.SyncBatchNorm`` runs on GPUs only. Exactly equal single- and multi-process training needs batch
statistics over the *global* batch on CPU (gloo) too, so :class:`SyncBatchNormAnyDevice` all-reduces the per-channel
sums with autograd support. On CUDA the engine uses PyTorch's own implementation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from aclecg.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this call created the process group, so it destroys it (see shutdown_distributed)
    device: str = "cpu"  # where collectives' tensors live: "cpu" for gloo, "cuda:LOCAL_RANK" for nccl

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(use_cuda: bool) -> DistInfo:
    """Join the process group that ``torchrun`` describes through the environment; single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    owns = not dist.is_initialized()
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s) are visible; start "
                f"at most that many processes per node"
            )
        torch.cuda.set_device(local)
    if owns:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    backend_cuda = dist.get_backend() == "nccl"
    return DistInfo(
        rank=rank,
        world_size=world,
        local_rank=local,
        owns_group=owns,
        device=f"cuda:{local}" if backend_cuda else "cpu",
    )


def shutdown_distributed(info: DistInfo) -> None:
    """Destroy the process group this process created (torch warns, and exits can abort, if it is left alive)."""
    if info.owns_group and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """``obj`` as rank 0 holds it, on every rank (any picklable object; identity in a single process)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def reduce_flags(flags: Sequence[float], info: DistInfo) -> list[float]:
    """Element-wise sum of small per-rank counters (e.g. "my loss is not finite"), the same on every rank."""
    if not info.enabled:
        return [float(f) for f in flags]
    t = torch.tensor([float(f) for f in flags], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.cpu().tolist()


class _AllReduceSum(torch.autograd.Function):
    """Sum a tensor over processes; the gradient of every contribution is the sum of the upstream gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNormAnyDevice(_BatchNorm):
    """Batch norm whose training statistics cover the batch of every process (CPU/gloo or GPU)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(input)
        out_dtype = input.dtype
        input = input.float()  # statistics (and their all-reduce) in float32, also under bf16/fp16 autocast
        dims = [d for d in range(input.dim()) if d != 1]
        count = torch.tensor(float(input.numel() // input.shape[1]), device=input.device, dtype=input.dtype)
        stats = torch.cat([input.sum(dims), (input * input).sum(dims), count.reshape(1)])
        stats = _AllReduceSum.apply(stats)
        channels = input.shape[1]
        total = stats[-1]
        mean = stats[:channels] / total
        var = stats[channels : 2 * channels] / total - mean * mean
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                momentum = self.momentum if self.momentum is not None else 0.1
                unbiased = var * total / (total - 1).clamp(min=1)
                self.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased.detach())
                assert self.num_batches_tracked is not None  # registered whenever track_running_stats
                self.num_batches_tracked.add_(1)
        shape = [1, channels] + [1] * (input.dim() - 2)
        out = (input - mean.reshape(shape)) * torch.rsqrt(var.reshape(shape) + self.eps)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        return out.to(out_dtype)


def convert_sync_batchnorm(module: nn.Module, use_cuda: bool) -> nn.Module:
    """Replace every batch-norm layer so that its statistics span all processes."""
    if use_cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNormAnyDevice):
        new = SyncBatchNormAnyDevice(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        new.load_state_dict(module.state_dict())
        if module.affine:  # a frozen (EMA target) layer stays frozen, as torch's own conversion keeps it
            new.weight.requires_grad_(module.weight.requires_grad)
            new.bias.requires_grad_(module.bias.requires_grad)
        new.train(module.training)
        return new
    for name, child in list(module.named_children()):
        setattr(module, name, convert_sync_batchnorm(child, use_cuda))
    return module


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a (detached) tensor over processes, for logging."""
    if not info.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / info.world_size
