"""``python -m aclecg embed``: embeddings of every record of a prepared dataset, cached on disk."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  # embed the bundled PTB-XL data with a pretrained encoder (cached under .cache/embeddings)
  python -m aclecg embed --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl

  # also write a copy to a file of your choice
  python -m aclecg embed --checkpoint runs/acl-small/encoder.pt --data .cache/prepared/ptbxl --out emb.npy

  # a seeded randomly initialised encoder of the small preset (the random_init reference)
  python -m aclecg embed --random-init small --seed 0 --data .cache/prepared/ptbxl

The cache key is the checkpoint's sha256 plus the prepared data's fingerprint; set ACLECG_CACHE to move the
cache root (default <repo>/.cache). A checkpoint whose leads, sampling rate or window length do not match the
prepared data is refused before anything is computed.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from aclecg.commands.encoder_args import add_factory_args

    p = sub.add_parser(
        "embed",
        help="compute (and cache) record embeddings of an encoder",
        description="Compute the record embeddings (concatenated lead features) of a frozen encoder "
        "for every record of a prepared dataset, in eval mode without gradients, and "
        "cache them as .npy keyed by checkpoint sha256 + data fingerprint.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint file (encoder.pt, best.pt, ...)")
    src.add_argument("--random-init", metavar="PRESET", help="a seeded random encoder of this preset (small, base)")
    add_factory_args(p, src)
    p.add_argument("--seed", type=int, default=0, help="seed of --random-init (default 0)")
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument("--out", help="also save the embeddings to this .npy file")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--refresh", action="store_true", help="recompute even if cached")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from aclecg import evaluation
    from aclecg.commands.encoder_args import encoder_sources
    from aclecg.errors import ConfigError

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    dataset = evaluation.open_dataset(args.data)
    if args.checkpoint or args.encoder_factory:
        source = encoder_sources(args)[0]
    else:
        source = evaluation.random_init_source(
            args.random_init,
            args.seed,
            [str(x) for x in dataset.leads],
            dataset.fs,
            dataset.n_samples,
            evaluation.data_contract(dataset),
        )
    emb, path = evaluation.cached_embeddings(
        source, dataset, batch_size=args.batch_size, device=args.device, refresh=args.refresh, show_progress=True
    )
    print(f"embeddings {emb.shape[0]} x {emb.shape[1]} cached at {path}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, emb)
        print(f"written {out}")
    return 0
