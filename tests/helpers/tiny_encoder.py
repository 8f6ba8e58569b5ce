"""A user's own encoder, as someone outside aclecg would write it: plain torch, no aclecg import.

``build`` maps ``(N, 12, T)`` to embeddings ``(N, 8)``; ``build_wrong_shape`` returns per-time-step features
``(N, 8, T)`` (refused); ``build_not_a_module`` returns a function (refused)."""

from __future__ import annotations

import torch
from torch import nn


class TinyEncoder(nn.Module):
    def __init__(self, pool: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(12, 8, kernel_size=5, padding=2)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        return h.mean(dim=-1) if self.pool else h


def build() -> nn.Module:
    torch.manual_seed(7)
    return TinyEncoder()


def build_wrong_shape() -> nn.Module:
    torch.manual_seed(7)
    return TinyEncoder(pool=False)


def build_not_a_module():
    return lambda x: x
