"""CUDA checks (``make test-gpu``): skipped without a GPU. Augmentation parity lives in tests/test_augment.py.

* every loss on CUDA equals its CPU value, and stays float32 under CUDA autocast (bf16 and fp16);
* every method trains 3 steps on ``cuda:0`` with ``amp=auto`` and with ``amp=fp16`` (finite losses);
* ``torch.compile`` on one GPU: runs, and its graph breaks / recompiles are written to the summary file;
* with 2 or more GPUs: 4-step torchrun (NCCL) runs of acl_ecg, barlow, moco and lcd follow the 1-process losses.

Findings go to ``$ACLECG_GPU_SUMMARY`` (JSON lines), which ``benchmarks/gpu_check.py`` prints as one block.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aclecg.methods import create_method, list_methods
from aclecg.training import PretrainConfig, pretrain

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
REPO = Path(__file__).resolve().parent.parent
METHODS = [m.name for m in list_methods()]


def record(**fields) -> None:
    path = os.environ.get("ACLECG_GPU_SUMMARY")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(fields) + "\n")


def _config(data: Path, **overrides) -> PretrainConfig:
    base = dict(
        method="acl_ecg",
        data=[str(data)],
        encoder="small",
        epochs=1,
        batch_size=32,
        max_steps=3,
        checkpoint_every=100,
        warmup_steps=1,
        seed=3,
        device="cuda:0",
    )
    return PretrainConfig(**{**base, **overrides})


def test_losses_on_cuda_equal_cpu_and_stay_float32_under_autocast():
    from test_methods_precision import CASES  # tests/ is on sys.path under pytest

    for name, make in sorted(CASES.items()):
        fn, args, kwargs = make()
        cpu_args = [a.float() if a.is_floating_point() else a for a in args]
        ref = fn(*cpu_args, **kwargs)
        ref = list(ref) if isinstance(ref, tuple) else [ref]
        got = fn(*[a.cuda() for a in cpu_args], **kwargs)
        got = list(got) if isinstance(got, tuple) else [got]
        for r, g in zip(ref, got, strict=True):
            torch.testing.assert_close(g.cpu(), r, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")
        for dtype in (torch.bfloat16, torch.float16):
            with torch.autocast("cuda", dtype=dtype):
                out = fn(*[a.cuda().to(dtype) if a.is_floating_point() else a.cuda() for a in args], **kwargs)
            out = list(out) if isinstance(out, tuple) else [out]
            assert all(o.dtype == torch.float32 for o in out), (name, dtype)
    record(check="losses: CUDA == CPU, float32 under bf16/fp16 autocast", ok=True, n=len(CASES))


@pytest.mark.parametrize("amp", ["auto", "fp16"])
def test_every_method_trains_on_cuda(bundled_prepared, tmp_path, amp):
    dtypes = {}
    for method in METHODS:
        model = create_method(method, "small").cuda()
        dtype = (
            torch.float16
            if amp == "fp16"
            else (torch.bfloat16 if torch.cuda.get_device_capability(0)[0] >= 8 else torch.float16)
        )
        with torch.autocast("cuda", dtype=dtype):
            terms = model(torch.randn(8, 12, 1000, device="cuda"), torch.randn(8, 12, 1000, device="cuda"))
        dtypes[method] = str(terms["loss"].dtype)
        assert terms["loss"].dtype == torch.float32, method
        pretrain(_config(bundled_prepared, method=method, amp=amp), tmp_path / method, progress=False)
        rows = [json.loads(x) for x in (tmp_path / method / "metrics.jsonl").read_text().splitlines()]
        assert len(rows) == 3 and all(np.isfinite(r["loss"]) for r in rows), method
        assert rows[-1]["peak_gpu_memory_mb"] > 0
    record(check=f"10 methods x 3 steps on cuda:0, amp={amp}", ok=True, loss_dtypes=dtypes)


def test_compile_on_one_gpu_counts_graph_breaks_and_recompiles(bundled_prepared, tmp_path):
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    pretrain(_config(bundled_prepared, compile=True, max_steps=5), tmp_path / "compiled", progress=False)
    breaks = sum(counters["graph_break"].values())
    recompiles = sum(v for k, v in counters["stats"].items() if "recompil" in k) if "stats" in counters else None
    frames = dict(counters["frames"]) if "frames" in counters else {}
    record(
        check="torch.compile, acl_ecg, 5 steps, 1 GPU",
        ok=True,
        graph_breaks=breaks,
        recompiles=recompiles,
        frames=frames,
    )


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
@pytest.mark.parametrize("method", ["acl_ecg", "barlow", "moco", "lcd"])
def test_two_gpu_torchrun_follows_one_process(bundled_prepared, tmp_path, method):
    config = _config(bundled_prepared, method=method, max_steps=4, device="cuda", amp="off")
    pretrain(PretrainConfig(**{**config.to_dict(), "device": "cuda:0"}), tmp_path / "one", progress=False)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(config.to_dict()))
    rc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "aclecg",
            "pretrain",
            "--config",
            str(cfg),
            "--run-dir",
            str(tmp_path / "two"),
            "--no-progress",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert rc.returncode == 0, rc.stderr[-3000:]
    one = [json.loads(x)["loss"] for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    two = [json.loads(x)["loss"] for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(two, one, rtol=2e-3, atol=2e-4)  # cuDNN/NCCL reduction order: looser than CPU
    record(check=f"2-GPU torchrun (NCCL) {method}: 4 steps match 1 process", ok=True, one=one, two=two)
