"""``python -m aclecg prepare``: turn a raw PhysioNet dataset folder into a memory-mapped prepared dataset."""

from __future__ import annotations

import argparse

from aclecg.registry import LazyNames, Registry

EXAMPLES = """examples:
  # the bundled PTB-XL subset at 100 Hz, 10 s windows
  python -m aclecg prepare --format ptbxl --input aclecg/bundled/ptb-xl --output data-cache/ptbxl

  # Challenge 2021 data (g1/, g2/ sub-folders searched recursively), 5 s windows, 4 worker processes
  python -m aclecg prepare --format challenge --input /data/challenge-2021/training/ningbo \\
      --output data-cache/ningbo --seconds 5 --workers 4

  # the original CPSC 2018 release; stop at the first malformed record
  python -m aclecg prepare --format cpsc2018 --input /data/cpsc2018 --output data-cache/cpsc --strict

Malformed records are skipped and listed (manifest.json "skipped"); --strict turns the first one into an error
(exit code 2). The output is written to a temporary sibling folder and renamed into place when complete; Ctrl-C
or SIGTERM removes it (exit 130 / 143), a later run removes one left by a killed run, and a failing write
(read-only, disk full) is one line with exit code 2. --workers is capped at the CPUs available.
"""


def _readers() -> Registry:
    from aclecg.data import READERS  # the readers and their registrations (imported when --format is checked)

    return READERS


#: ``--format`` accepts every registered reader; reading the names imports the data layer only when needed
FORMAT_CHOICES = LazyNames(_readers)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="prepare a raw dataset into a memory-mapped cache",
        description="Read a dataset as downloaded from PhysioNet, resample, band-pass filter, cut "
        "into fixed windows, z-score, detect R-peaks and write signals.npy, records.csv, "
        "rpeaks and manifest.json (see docs/data.md).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--format", required=True, choices=FORMAT_CHOICES, metavar="FORMAT", help="input format: %(choices)s"
    )
    p.add_argument("--input", required=True, help="dataset root folder (as downloaded)")
    p.add_argument("--output", required=True, help="prepared dataset folder to write (replaced atomically)")
    p.add_argument("--fs", type=float, default=100.0, help="target sampling rate in Hz (default 100)")
    p.add_argument("--seconds", type=float, default=10.0, help="window length in seconds (default 10)")
    p.add_argument(
        "--band",
        type=float,
        nargs=2,
        default=(0.5, 40.0),
        metavar=("LOW", "HIGH"),
        help="band-pass edges in Hz (default 0.5 40; HIGH is capped at 0.45*fs)",
    )
    p.add_argument("--strict", action="store_true", help="fail (exit 2) on the first malformed record")
    p.add_argument("--name", help="dataset name stored in the manifest (default: from the format/folder)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: the CPU cores this process may use; 0: in this process; at most the CPUs)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the generated folds (datasets without official ones)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from aclecg.data.prepare import prepare_dataset, summary_lines, usable_cpus
    from aclecg.data.staging import Terminated
    from aclecg.errors import ConfigError

    if args.workers is None:
        args.workers = usable_cpus()
    if args.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {args.workers}")
    args.workers = min(args.workers, usable_cpus())  # the CLI already said so (aclecg.cli.cap_workers)
    try:
        manifest = prepare_dataset(
            args.input,
            args.output,
            args.format,
            fs=args.fs,
            seconds=args.seconds,
            band_hz=tuple(args.band),
            strict=args.strict,
            name=args.name,
            workers=args.workers,
            seed=args.seed,
            progress=not args.quiet,
        )
    except Terminated:
        print(
            f"error: prepare stopped by SIGTERM; its temporary folder was removed, {args.output} is unchanged",
            file=sys.stderr,
        )
        return 143
    for line in summary_lines(manifest):
        print(line)
    print(
        f"written to {args.output} in {manifest['prepare_seconds']:.1f} s (fingerprint {manifest['fingerprint'][:12]})"
    )
    return 0
