"""A plain 12-lead 1-D CNN: the strong supervised reference of the label-fraction sweeps.

The pretrained encoders of this project read every lead separately (a shared per-lead network, then a fusion).
A reviewer also wants to see where their probes stand against the best *plain* supervised model, so the
``reference_cnn`` arm trains a standard network of the kind the PTB-XL benchmark uses (Strodthoff et al.,
IEEE JBHI 2021, whose xresnet1d / 4-stage CNN baselines stack all leads as input channels) from scratch on the
same labels. It is sized for 2 CPU cores: four stages of two convolutions each, widths 32-64-128-128, about
0.2 M parameters, concatenated average and max pooling, then a linear head.

>>> import torch
>>> net = build_reference_cnn(n_leads=12, n_classes=5, seed=0)
>>> net(torch.randn(2, 12, 1000)).shape
torch.Size([2, 5])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from aclecg.errors import ConfigError

__all__ = ["ReferenceCNN", "ReferenceCNNConfig", "build_reference_cnn"]


@dataclass(frozen=True)
class ReferenceCNNConfig:
    """Widths of the four stages, kernel size and dropout before the head (plain data, part of cell keys)."""

    widths: tuple[int, ...] = (32, 64, 128, 128)
    kernel_size: int = 7
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if not self.widths or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ConfigError(f"widths must be positive integers, got {self.widths!r}")
        if not isinstance(self.kernel_size, int) or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be a positive odd integer, got {self.kernel_size!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "widths": list(self.widths)}


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
    )


class ReferenceCNN(nn.Module):
    """Input ``(N, leads, T)``; output class logits ``(N, n_classes)``."""

    def __init__(self, n_leads: int, n_classes: int, config: ReferenceCNNConfig | None = None):
        super().__init__()
        cfg = config or ReferenceCNNConfig()
        self.config = cfg
        layers: list[nn.Module] = []
        c_in = n_leads
        for i, width in enumerate(cfg.widths):
            # the first convolution of the first stage halves the time axis (100 Hz input, 1000 samples)
            layers += [
                _conv_bn(c_in, width, cfg.kernel_size, stride=2 if i == 0 else 1),
                _conv_bn(width, width, cfg.kernel_size),
                nn.MaxPool1d(2),
            ]
            c_in = width
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(float(cfg.dropout))
        self.head = nn.Linear(2 * c_in, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x)
        h = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)
        return self.head(self.dropout(h))


def build_reference_cnn(
    n_leads: int, n_classes: int, config: ReferenceCNNConfig | None = None, seed: int | None = None
) -> ReferenceCNN:
    """A seeded :class:`ReferenceCNN` (the global RNG state is left untouched when ``seed`` is given)."""
    for name, value in (("n_leads", n_leads), ("n_classes", n_classes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if seed is None:
        return ReferenceCNN(n_leads, n_classes, config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return ReferenceCNN(n_leads, n_classes, config)
