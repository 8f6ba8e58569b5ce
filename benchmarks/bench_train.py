"""End-to-end pretraining throughput against the bare encoder, measured side by side in one run.

End-to-end = the real engine (:func:`aclecg.training.pretrain`): memory-mapped batch reads, two augmented views,
the method's encoder + heads + loss, backward, optimiser, EMA/queue updates, metric logging and checkpoints.
Bare = the same encoder's forward and backward on a batch of the same shape (two views), nothing else.

    python benchmarks/bench_train.py [--method acl_ecg] [--batch-size 128] [--steps 12]

Target (issue 5): end-to-end samples/s >= 90 % of the bare encoder's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from aclecg.data import ensure_bundled
from aclecg.models import ECGEncoder
from aclecg.runtime import resolve_amp
from aclecg.training import PretrainConfig, build_encoder_config, pretrain


def bare_encoder_samples_per_s(encoder: ECGEncoder, batch: int, n_samples: int, steps: int) -> float:
    """Forward + backward of two views, at the precision the engine's amp=auto picks here (bf16 on CPUs with it)."""
    x = torch.randn(2 * batch, encoder.config.n_leads, n_samples)
    encoder.train()
    dtype = resolve_amp("auto", torch.device("cpu"), cpu_auto_bf16=True)
    times = []
    for _ in range(steps + 2):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = encoder(x)
        out.embedding.float().square().mean().backward()
        times.append(time.perf_counter() - t0)
        encoder.zero_grad(set_to_none=True)
    return batch / float(np.median(times[2:]))


def end_to_end_samples_per_s(data: Path, method: str, batch: int, steps: int) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        config = PretrainConfig(
            method=method,
            data=[str(data)],
            encoder="small",
            batch_size=batch,
            epochs=100,
            max_steps=steps + 2,
            checkpoint_every=50,
            device="cpu",
        )
        t0 = time.perf_counter()
        pretrain(config, Path(tmp) / "run", progress=False)
        wall = time.perf_counter() - t0
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    stamps = np.array([r["time"] for r in rows])
    per_step = np.diff(stamps)[1:]  # drop the first step (warm-up); each interval covers a whole loop iteration
    return batch / float(np.median(per_step)), {"wall_s_incl_startup": round(wall, 1), "steps": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="acl_ecg")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    data = ensure_bundled()["ptbxl"]
    torch.manual_seed(0)
    encoder = ECGEncoder(build_encoder_config("small", list(PretrainConfig().leads)))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    bare = bare_encoder_samples_per_s(encoder, args.batch_size, 1000, args.steps)
    e2e, extra = end_to_end_samples_per_s(data, args.method, args.batch_size, args.steps)
    bare2 = bare_encoder_samples_per_s(encoder, args.batch_size, 1000, args.steps)  # bracket the e2e run
    bare_mean = (bare + bare2) / 2
    print(f"bare encoder fwd+bwd (2 views): {bare_mean:8.1f} samples/s  (runs: {bare:.1f}, {bare2:.1f})")
    print(f"end-to-end {args.method:>12s}:      {e2e:8.1f} samples/s  {extra}")
    print(f"ratio end-to-end / bare: {e2e / bare_mean:.1%}  (target >= 90 %)")


if __name__ == "__main__":
    main()
