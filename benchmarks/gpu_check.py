"""One command for a GPU machine (``make test-gpu``): correctness tests, then throughput, then one summary block.

1. ``pytest -m gpu``: CUDA/CPU parity of augmentations and losses, all ten methods x 3 steps with amp auto and
   fp16, torch.compile on one GPU (graph breaks, recompiles), explicit ``cuda:0``, and with 2+ GPUs 4-step
   torchrun (NCCL) runs of acl_ecg, barlow, moco and lcd against one process (tests/test_gpu.py).
2. 200 steps of ACL-ECG pretraining with AMP bf16 on the bundled data: samples/s and peak GPU memory.
3. Encoder throughput (``small`` and ``base``, training and evaluation) at batch 256 and 1024.

Without CUDA it says so and exits 0. Meant to fit in 5 minutes on one GPU.

    python benchmarks/gpu_check.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent


def pretrain_throughput(steps: int = 200) -> dict:
    from aclecg.data import ensure_bundled
    from aclecg.training import PretrainConfig, pretrain

    data = ensure_bundled()
    with tempfile.TemporaryDirectory() as tmp:
        config = PretrainConfig(
            method="acl_ecg",
            data=[data["ptbxl"], data["challenge"]],
            encoder="small",
            batch_size=256,
            epochs=1000,
            max_steps=steps,
            checkpoint_every=100,
            device="cuda",
            amp="bf16",
        )
        t0 = time.perf_counter()
        pretrain(config, Path(tmp) / "run", progress=False)
        wall = time.perf_counter() - t0
        rows = [json.loads(x) for x in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    sps = [r["samples_per_s"] for r in rows[5:]]
    return {
        "steps": len(rows),
        "wall_s": round(wall, 1),
        "median_samples_per_s": round(float(np.median(sps))),
        "peak_gpu_memory_mb": rows[-1].get("peak_gpu_memory_mb"),
        "loss": [rows[0]["loss"], rows[-1]["loss"]],
    }


def encoder_throughput(preset: str, batch: int, amp: bool) -> dict:
    from aclecg.models import ENCODER_PRESETS, ECGEncoder

    torch.manual_seed(0)
    model = ECGEncoder(ENCODER_PRESETS[preset]).cuda()
    head = torch.nn.Linear(model.embedding_dim, 5).cuda()
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], 1e-3)
    x = torch.randn(batch, 12, 1000, device="cuda")
    y = (torch.rand(batch, 5, device="cuda") > 0.5).float()

    def step(train: bool) -> None:
        model.train(train)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp), torch.set_grad_enabled(train):
            logits = head(model(x).embedding)
        if train:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    out = {}
    for train in (True, False):
        for _ in range(3):
            step(train)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        n = 10
        for _ in range(n):
            step(train)
        torch.cuda.synchronize()
        out["train" if train else "eval"] = round(batch * n / (time.perf_counter() - t0))
    return out


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: GPU checks skipped")
        return 0
    t_start = time.perf_counter()
    summary_file = Path(tempfile.mkdtemp()) / "gpu-summary.jsonl"
    env = {**os.environ, "ACLECG_GPU_SUMMARY": str(summary_file)}
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "gpu",
            "-p",
            "no:cacheprovider",
            "tests/test_gpu.py",
            "tests/test_augment.py",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    test_line = (tests.stdout.strip().splitlines() or ["(no output)"])[-1]
    pre = pretrain_throughput()
    enc = {
        f"{p} b{b} {'bf16' if amp else 'fp32'}": encoder_throughput(p, b, amp)
        for p in ("small", "base")
        for b in (256, 1024)
        for amp in (False, True)
    }
    props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
    print("=" * 100)
    print("GPU CHECK SUMMARY")
    print(
        f"devices: {', '.join(f'{p.name} ({p.total_memory / 2**30:.0f} GiB, cc {p.major}.{p.minor})' for p in props)}"
        f"; torch {torch.__version__}, CUDA {torch.version.cuda}"
    )
    print(f"tests (pytest -m gpu): {test_line}  (rc {tests.returncode})")
    if summary_file.exists():
        for line in summary_file.read_text().splitlines():
            print("  " + line)
    if tests.returncode:
        print(tests.stdout[-4000:])
    print(f"ACL-ECG pretraining, AMP bf16, batch 256: {json.dumps(pre)}")
    for name, figures in enc.items():
        print(f"encoder {name:<18} train {figures['train']:>8} samples/s   eval {figures['eval']:>8} samples/s")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    print("=" * 100)
    return tests.returncode


if __name__ == "__main__":
    raise SystemExit(main())
