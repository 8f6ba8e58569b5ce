"""Run under ``torchrun --nproc_per_node 2``: the two-process scenarios of tests/test_train_distributed.py.

The driver owns the (gloo) process group, so one launch runs every scenario in sequence, and each rank writes
what it saw to ``OUT/rank-R.json``. Usage: ``torchrun ... tests/helpers/ddp_driver.py SPEC.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

import aclecg.training as train
import aclecg.training.loop as loop
from aclecg import procs
from aclecg.errors import AclEcgError
from aclecg.methods import register_method
from aclecg.methods.distributed import rank
from aclecg.methods.simclr import SimCLR
from aclecg.parallel import init_distributed, shutdown_distributed


@register_method
class NaNOnRankOne(SimCLR):
    """SimCLR whose loss becomes NaN on rank 1 only, at its third training forward."""

    NAME = "nan_on_rank1"
    TITLE = "test: NaN on rank 1"
    DESCRIPTION = "test-only method"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def forward(self, view1, view2):
        terms = super().forward(view1, view2)
        self.calls += 1
        if rank() == 1 and self.calls == 3:
            terms["loss"] = terms["loss"] * float("nan")
        return terms


def timed(fn):
    t0 = time.perf_counter()
    try:
        fn()
        error = None
    except AclEcgError as exc:
        error = str(exc)
    return {"error": error, "seconds": time.perf_counter() - t0}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = Path(spec["out"])
    info = init_distributed(False)
    me: dict = {"rank": info.rank, "world_size": info.world_size}
    base = spec["config"]

    # 1. loss-curve parity: every method, the same global batch
    for method in spec["methods"]:
        train.pretrain(train.PretrainConfig(**{**base, "method": method}), out / f"{method}-2", progress=False)

    train.pretrain(
        train.PretrainConfig(**{**base, "method": "acl_ecg", "amp": "bf16"}), out / "acl_ecg-bf16-2", progress=False
    )

    # 2. a non-finite loss on rank 1 only: both ranks stop, with the same error
    me["nonfinite"] = timed(
        lambda: train.pretrain(
            train.PretrainConfig(**{**base, "method": "nan_on_rank1"}), out / "nonfinite", progress=False
        )
    )

    # 3. resume with a command-line override: every rank trains with the stored configuration
    seen: list[dict] = []
    original = loop.Trainer

    class Spy(original):
        def __init__(self, ctx):
            seen.append(ctx.config.to_dict())
            super().__init__(ctx)

    loop.Trainer = Spy
    first = train.PretrainConfig(**{**base, "method": "acl_ecg"})
    train.pretrain(first, out / "resume", progress=False, stop_after_steps=2)
    train.pretrain(
        train.PretrainConfig(**{**base, "method": "acl_ecg", "lr": 0.5, "seed": 99}),
        out / "resume",
        resume=True,
        progress=False,
    )
    loop.Trainer = original
    me["resume_configs"] = seen

    # 4. rank 0 cannot take the lock (a live process holds it): both ranks give up within seconds
    locked = out / "locked"
    if info.rank == 0:
        locked.mkdir(parents=True, exist_ok=True)
        (locked / "lock").write_text(json.dumps({**procs.own_record(spec["holder_pid"]), "time": time.time()}))
    torch.distributed.barrier()
    me["lock"] = timed(
        lambda: train.pretrain(train.PretrainConfig(**{**base, "method": "simclr"}), locked, progress=False)
    )

    # 5. torch.compile under DDP is refused on every rank, with the same message
    me["compile"] = timed(
        lambda: train.pretrain(
            train.PretrainConfig(**{**base, "method": "simclr", "compile": True}), out / "compile", progress=False
        )
    )

    (out / f"rank-{info.rank}.json").write_text(json.dumps(me, indent=1))
    torch.distributed.barrier()
    shutdown_distributed(info)
    # as `python -m aclecg` does for torchrun workers: no interpreter teardown (see aclecg/__main__.py)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
