"""Run every speed benchmark in one go and print their reports one after the other (``make bench``).

Each benchmark measures its two sides in the same run, so the printed ratios compare like with like even on a
busy machine; absolute times depend on the machine and its load, printed at the start.

    python benchmarks/run_all.py [--only cache,augment,encoder,train,umap,pages]
    python benchmarks/run_all.py --only scale      # opt-in: full-size scale benchmark (GBs of disk, an idle machine)
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "cache": "bench_cache.py",  # memory-mapped cache vs reading WFDB files again, per epoch
    "augment": "bench_augment.py",  # batched Physio-AUG vs a per-sample NumPy loop; share of a training step
    "encoder": "bench_encoder.py",  # encoder training/evaluation samples/s vs the pre-2026-12 encoder and a plain CNN
    "train": "bench_train.py",  # end-to-end pretraining throughput vs the bare encoder
    "umap": "bench_umap.py",  # fast 2-D embedding vs umap-learn defaults (time and trustworthiness)
    "pages": "bench_pages.py",  # first render of every app page
    "gc": "bench_gc.py",  # one full garbage collection in the app server's heap, before and after gc.freeze()
}
#: Run only when named in --only: long, and they need an idle machine and gigabytes of disk.
OPT_IN = {
    "scale": "bench_scale.py",  # every product step at 1k-21.8k PTB-XL and 20k Challenge records (synthetic clones)
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help="comma-separated subset of " + ", ".join(BENCHMARKS) + " (default: all); opt-in: " + ", ".join(OPT_IN),
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    scripts = {**BENCHMARKS, **OPT_IN}
    unknown = sorted(set(chosen) - set(scripts))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {sorted(scripts)}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}  {platform.machine()}  {os.cpu_count()} cores  "
        f"Python {platform.python_version()}  load average {load:.1f}",
        flush=True,
    )
    failed = []
    for name in chosen:
        print(f"\n## {name} ({scripts[name]})", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / scripts[name])], cwd=HERE.parent)
        if rc:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
