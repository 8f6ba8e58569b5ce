"""Encoder throughput: the default encoder against today's reference ("before") and a plain 12-lead CNN.

Each variant is an encoder + a linear head on the record embedding (5 classes, BCE), timed on a batch of
``--batch-size`` x 12 x 1000 random signals:

* training samples/s: forward + backward + AdamW step, in training mode;
* evaluation samples/s: forward under ``no_grad`` in eval mode;
* achieved GFLOP/s: FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode`` (forward + backward for
  training, forward for evaluation) divided by the measured time.

Variants (all in one run, interleaved round by round, medians reported):

* ``before``: the encoder as computed before 2026-12 -- the ``small-v1`` network (xresnet stem) in the
  ``(N, C, T)`` layout with 1-D convolutions and pools (computed here from the same modules);
* ``small``: the default encoder (strided stem, channels-last ``(N, C, 1, T)`` layout), float32;
* ``small, bf16``: the same under CPU bf16 autocast: what pretraining's ``amp=auto`` runs on a CPU with native
  bf16 (AVX512-BF16/AMX), and ``--amp bf16`` anywhere;
* ``small-v1`` (and ``, bf16``): the old network in the new layout (what the layout alone buys);
* ``plain CNN``: a 12-channel 4-stage CNN (kernel 5, widths 32/64/128/192, two conv-BN-ReLU per stage, max
  pool between stages), a fixed yardstick of what the CPU does with a conventional network.

    python benchmarks/bench_encoder.py [--batch-size 64] [--rounds 5] [--steps 4] [--compile]

``--compile`` adds ``torch.compile`` variants of ``small`` (their compile time is printed). Target (issue 19): the
default encoder, at the precision ``amp=auto`` picks on this machine, trains >= 2.5x and evaluates >= 2x as many
samples/s as ``before``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from aclecg.models import ENCODER_PRESETS, ECGEncoder, _Conv, _Pool, _ResBlock
from aclecg.runtime import cpu_native_bf16


# ------------------------------------------------------------------------------------------------ the variants
def _forward_1d(module: nn.Module, x: Tensor) -> Tensor:
    """Today's-before computation: the same modules, applied in the (N, C, T) layout with 1-D operators."""
    if isinstance(module, _Conv):
        return F.conv1d(x, module.weight, module.bias, module.stride, module.padding)
    if isinstance(module, _Pool):
        if module.kind == "max":
            return F.max_pool1d(x, module.kernel, module.stride, module.padding, ceil_mode=module.ceil_mode)
        return F.avg_pool1d(x, module.kernel, module.stride, module.padding, ceil_mode=module.ceil_mode)
    if isinstance(module, _ResBlock):
        return module.act(_forward_1d(module.convs, x) + _forward_1d(module.shortcut, x))
    if isinstance(module, nn.Sequential):
        for child in module:
            x = _forward_1d(child, x)
        return x
    return module(x)


class Before(nn.Module):
    """The pre-2026-12 encoder (``small-v1`` computed in the 1-D layout) + linear head."""

    def __init__(self, n_classes: int = 5) -> None:
        super().__init__()
        self.encoder = ECGEncoder(ENCODER_PRESETS["small-v1"])
        self.head = nn.Linear(self.encoder.embedding_dim, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        b, n_leads, t = x.shape
        enc = self.encoder
        h = _forward_1d(enc.stages, _forward_1d(enc.stem, x.reshape(b * n_leads, 1, t)))
        feats = enc.head(torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1))
        return self.head(feats.reshape(b, -1))


class WithHead(nn.Module):
    def __init__(self, preset: str, n_classes: int = 5) -> None:
        super().__init__()
        self.encoder = ECGEncoder(ENCODER_PRESETS[preset])
        self.head = nn.Linear(self.encoder.embedding_dim, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x).embedding)


class PlainCNN(nn.Module):
    """12 input channels, 4 stages of 2 x (conv k5 + BN + ReLU), max pool 2 between stages, concat pooling."""

    def __init__(self, widths=(32, 64, 128, 192), n_classes: int = 5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 12
        for i, w in enumerate(widths):
            if i:
                layers.append(nn.MaxPool1d(2))
            for _ in range(2):
                layers += [nn.Conv1d(c_in, w, 5, padding=2, bias=False), nn.BatchNorm1d(w), nn.ReLU(inplace=True)]
                c_in = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(2 * c_in, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.body(x)
        return self.head(torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1))


# ------------------------------------------------------------------------------------------------ measurement
class Variant:
    def __init__(self, name: str, build: Callable[[], nn.Module], amp: bool = False, compiled: bool = False):
        torch.manual_seed(0)
        self.name, self.amp = name, amp
        self.model = build()
        self.params = sum(p.numel() for p in self.model.parameters())
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.forward = torch.compile(self.model) if compiled else self.model
        self.train_s: list[float] = []
        self.eval_s: list[float] = []

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.amp)

    def train_step(self, x: Tensor, y: Tensor) -> None:
        self.model.train()
        with self._autocast():
            logits = self.forward(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    @torch.no_grad()
    def eval_step(self, x: Tensor) -> None:
        self.model.eval()
        with self._autocast():
            self.forward(x)

    def flops(self, x: Tensor, y: Tensor) -> tuple[int, int]:
        with FlopCounterMode(display=False) as counter:
            self.model.train()
            loss = F.binary_cross_entropy_with_logits(self.model(x), y)
            loss.backward()
        train = counter.get_total_flops()
        self.model.zero_grad(set_to_none=True)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            self.model.eval()
            self.model(x)
        return train, counter.get_total_flops()


def _time(fn: Callable[[], None], steps: int) -> float:
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def machine() -> str:
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as fh:
            info = fh.read()
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        have = set(next(line for line in info.splitlines() if line.startswith("flags")).split(":", 1)[1].split())
        flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in have]
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{model}; {os.cpu_count()} cores; ISA {' '.join(flags) or '?'}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; load average {load:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds over all variants")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant and round")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile variants of small")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"batch {args.batch_size} x 12 x 1000, {args.rounds} rounds x {args.steps} steps, medians")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, 12, 1000, generator=gen)
    y = (torch.rand(args.batch_size, 5, generator=gen) > 0.5).float()
    variants = [
        Variant("before", Before),
        Variant("small", lambda: WithHead("small")),
        Variant("small, bf16", lambda: WithHead("small"), amp=True),
        Variant("small-v1", lambda: WithHead("small-v1")),
        Variant("small-v1, bf16", lambda: WithHead("small-v1"), amp=True),
        Variant("plain CNN", PlainCNN),
    ]
    if args.compile:
        for amp in (False, True):
            v = Variant(
                "small, compiled" + (", bf16" if amp else ""), lambda: WithHead("small"), amp=amp, compiled=True
            )
            t0 = time.perf_counter()
            v.train_step(x, y)
            v.eval_step(x)
            print(f"{v.name}: compile (train + eval graphs) {time.perf_counter() - t0:.1f} s")
            variants.append(v)
    flops = {v.name: v.flops(x, y) for v in variants}
    for v in variants:  # warm-up (oneDNN primitive caches, allocator)
        v.train_step(x, y)
        v.eval_step(x)
    for _ in range(args.rounds):
        for v in variants:
            v.train_s.append(_time(lambda: v.train_step(x, y), args.steps))
            v.eval_s.append(_time(lambda: v.eval_step(x), args.steps))
    b = args.batch_size
    before = variants[0]
    base_train, base_eval = b / np.median(before.train_s), b / np.median(before.eval_s)
    print(
        f"\n{'variant':<24}{'params':>9}{'train/s':>10}{'x before':>10}{'GFLOP/s':>9}{'eval/s':>10}"
        f"{'x before':>10}{'GFLOP/s':>9}{'MFLOP/sample fwd+bwd':>22}"
    )
    for v in variants:
        tr, ev = b / np.median(v.train_s), b / np.median(v.eval_s)
        f_train, f_eval = flops[v.name]
        print(
            f"{v.name:<24}{v.params:>9,}{tr:>10.1f}{tr / base_train:>9.2f}x{f_train / b * tr / 1e9:>9.1f}"
            f"{ev:>10.1f}{ev / base_eval:>9.2f}x{f_eval / b * ev / 1e9:>9.1f}{f_train / b / 1e6:>22.0f}"
        )
    print()
    for v in variants[1:]:
        spread = ", ".join(f"{b / t:.0f}" for t in v.train_s)
        print(f"{v.name:<18} training samples/s per round: {spread}")
    auto = "small, bf16" if cpu_native_bf16() else "small"
    print(f"pretraining's amp=auto on this CPU: {'bf16 (native bf16)' if cpu_native_bf16() else 'float32'}")
    for name in dict.fromkeys((auto, "small", "small, bf16")):
        v = next(v for v in variants if v.name == name)
        tag = "  <- the default here" if name == auto else ""
        print(
            f"targets (training >= 2.5x, evaluation >= 2x before), {name:<12}: "
            f"{b / np.median(v.train_s) / base_train:.2f}x, {b / np.median(v.eval_s) / base_eval:.2f}x{tag}"
        )


if __name__ == "__main__":
    main()
