"""Run under torchrun (any number of processes, one or two node ranks): one short pretraining run, and what each
rank read. Usage: ``torchrun ... tests/helpers/scaleout_driver.py SPEC.json``; writes ``OUT/rank-R.json`` with the
rows each step's input read on that rank, and the run's metrics in ``OUT/run``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import aclecg.training as train
from aclecg.training.data import PretrainData


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = Path(spec["out"])
    rows: list[int] = []
    original = PretrainData.batch

    def counted(self, index, max_peaks):
        rows.append(len(index))
        return original(self, index, max_peaks)

    PretrainData.batch = counted  # type: ignore[method-assign]
    train.pretrain(train.PretrainConfig(**spec["config"]), out / "run", progress=False)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    (out / f"rank-{rank}.json").write_text(json.dumps({"world_size": world, "rows": rows}))


if __name__ == "__main__":
    main()
