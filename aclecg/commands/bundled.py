"""``python -m aclecg bundled``: prepare the real data shipped in aclecg/bundled (idempotent)."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  python -m aclecg bundled                 # prepare what is missing or stale, print the folders
  python -m aclecg bundled --only ptbxl    # just PTB-XL
  python -m aclecg bundled --force         # prepare again even if up to date
  ACLECG_CACHE=/tmp/c python -m aclecg bundled   # cache under /tmp/c/prepared

Bundled: 987 PTB-XL records (100 Hz) and 20 PhysioNet Challenge 2021 records (CPSC 2018 + Chapman-Shaoxing),
CC BY 4.0; see aclecg/bundled/README.md.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bundled",
        help="prepare the bundled real datasets",
        description="Prepare the bundled raw datasets into <cache>/prepared/{ptbxl,challenge} "
        "(<cache> = $ACLECG_CACHE or <repo>/.cache), skipping those already up to date.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--only", choices=("ptbxl", "challenge"), action="append", help="prepare only this dataset")
    p.add_argument("--force", action="store_true", help="prepare again even if up to date")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aclecg.data import PreparedDataset, ensure_bundled

    for name, path in ensure_bundled(args.only, progress=True, force=args.force).items():
        ds = PreparedDataset(path)
        print(f"{name}: {path} ({len(ds)} rows, fs {ds.fs:g} Hz, fingerprint {ds.fingerprint[:12]})")
    return 0
