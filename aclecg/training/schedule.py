"""The learning-rate schedule of pretraining: linear warm-up, then cosine decay to zero.

A pure function of the step (nothing to checkpoint), so a resumed run continues on the same curve.

>>> [round(lr_at(step, 10, 1.0, 2), 3) for step in (0, 1, 2, 6, 10)]
[0.5, 1.0, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import math

__all__ = ["lr_at"]


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to zero; a pure function of the step."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
