"""``python -m aclecg pretrain``: self-supervised pretraining into a run directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from aclecg.constraints import AMP_MODES
from aclecg.errors import ConfigError

if TYPE_CHECKING:
    from aclecg.training.config import PretrainConfig

EXAMPLES = """examples:
  # ACL-ECG on the bundled PTB-XL data with the CPU default preset
  python -m aclecg pretrain --method acl_ecg --data .cache/prepared/ptbxl --run-dir runs/acl-small

  # reproduce a shipped checkpoint from its configuration alone
  python -m aclecg pretrain --config checkpoints/acl_ecg/config.json --run-dir runs/acl-repro

  # continue a stopped or crashed run from its last good checkpoint
  python -m aclecg pretrain --run-dir runs/acl-small --resume

  # ... even if its checkpoints are damaged or another run's (they are moved to checkpoints/set-aside/)
  python -m aclecg pretrain --run-dir runs/acl-small --resume --restart

  # several GPUs (DistributedDataParallel; global batch split across processes)
  torchrun --nproc_per_node 4 -m aclecg pretrain --preset gpu-base --method acl_ecg --data DIR --run-dir runs/big
"""


def register(sub: argparse._SubParsersAction) -> None:
    from aclecg.training.config import RUN_PRESETS

    p = sub.add_parser(
        "pretrain",
        help="pretrain an encoder with a self-supervised method",
        description="Pretrain an ECG encoder with one of the registered self-supervised methods "
        "(see `python -m aclecg methods`). Writes config.json, metrics.jsonl, status.json, "
        "checkpoints/ and encoder.pt into --run-dir.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run-dir", required=True, help="output directory of the run (created)")
    p.add_argument("--config", help="JSON configuration file (a run's config.json or a checkpoint's config.json)")
    p.add_argument(
        "--preset", choices=sorted(RUN_PRESETS.names()), help="named starting configuration (default cpu-small)"
    )
    p.add_argument("--method", help="method name from the registry (default acl_ecg)")
    p.add_argument("--data", action="append", help="prepared dataset directory; repeat for several")
    p.add_argument("--encoder", help="encoder preset (small, base)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps in total")
    p.add_argument("--batch-size", type=int, help="global batch size (split across processes)")
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (CUDA if present), cpu, cuda or cuda:N")
    p.add_argument("--amp", choices=AMP_MODES)
    p.add_argument("--compile", action="store_true", default=None, help="use torch.compile")
    p.add_argument("--augmentation", help="augmentation preset overriding the method's default (physio, standard)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override any configuration key, e.g. --set method_hparams='{\"temperature\": 0.2}'",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.add_argument(
        "--restart",
        action="store_true",
        help="with --resume: when checkpoints in --run-dir cannot be used (damaged, or from another run), move "
        "them to checkpoints/set-aside/ and continue from the newest usable one or from scratch (without it, "
        "--resume refuses and changes nothing)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> PretrainConfig:
    from aclecg.training.config import RUN_PRESETS, PretrainConfig

    run_config = Path(args.run_dir) / "config.json"
    if args.config:
        base = PretrainConfig.from_file(args.config).to_dict()
    elif args.resume and run_config.exists():
        base = PretrainConfig.from_file(run_config).to_dict()
    else:
        base = {**PretrainConfig().to_dict(), **RUN_PRESETS.get(args.preset or "cpu-small")}
    if args.preset and args.config:
        base.update(RUN_PRESETS.get(args.preset))
    overrides = {
        "method": args.method,
        "data": args.data,
        "encoder": args.encoder,
        "epochs": args.epochs,
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "device": args.device,
        "amp": args.amp,
        "compile": args.compile,
        "augmentation": args.augmentation,
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            base[key] = json.loads(value)
        except json.JSONDecodeError:
            base[key] = value
    return PretrainConfig.from_dict(base)


def run(args: argparse.Namespace) -> int:
    from aclecg.training import pretrain

    args.resume = args.resume or args.restart
    config = build_config(args)
    out = pretrain(config, args.run_dir, resume=args.resume, progress=not args.no_progress, restart=args.restart)
    print(out)
    return 0
