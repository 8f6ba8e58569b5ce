"""``python -m aclecg methods``: list the registered self-supervised methods and the reference arms."""

from __future__ import annotations

import argparse
import json
from typing import Any

EPILOG = """examples:
  python -m aclecg methods                      # table: name, paper, reconstruction flag, augmentation, parameters
  python -m aclecg methods --encoder base       # parameter counts for the larger encoder preset
  python -m aclecg methods --json               # machine-readable, with every default hyper-parameter
  python -m aclecg methods --leads I II V1 V2 V3 V4 V5 V6
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "methods",
        help="list the self-supervised methods",
        description="List the registered self-supervised methods: name, paper, whether the objective is this "
        "project's reconstruction, default augmentation and parameter counts (online encoder, "
        "trainable, total with EMA targets). Reference arms (supervised, random_init) are listed "
        "last; they are evaluation arms, not pretraining methods.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--encoder", default="small", help="encoder preset for the parameter counts (default small)")
    parser.add_argument("--leads", nargs="+", default=None, help="lead subset (default: the 12 standard leads)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def collect(encoder: str = "small", leads: list[str] | None = None) -> list[dict[str, Any]]:
    """One plain dict per method (registry info + parameter counts for the given encoder preset)."""
    import torch

    from aclecg.leads import LEADS
    from aclecg.methods import create_method, list_methods

    rows = []
    for info in list_methods():
        with torch.random.fork_rng(devices=[]):
            method = create_method(info.name, encoder, leads=tuple(leads or LEADS))
        rows.append(
            {
                **info.to_dict(),
                "parameters": method.parameter_count(),
                "extra_state": sorted(method.extra_state_description()),
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    from aclecg.evaluation.arms import reference_arms

    references = [a.name for a in reference_arms()]
    rows = collect(args.encoder, args.leads)
    if args.json:
        print(json.dumps({"methods": rows, "reference_arms": references}, indent=2))
        return 0
    header = f"{'name':<9} {'reconstr.':<9} {'augment.':<9} {'encoder':>9} {'trainable':>10} {'total':>10}  paper"
    print(header)
    print("-" * len(header))
    for r in rows:
        p = r["parameters"]
        paper = r["paper"] if len(r["paper"]) <= 90 else r["paper"][:87] + "..."
        print(
            f"{r['name']:<9} {'yes' if r['reconstruction'] else 'no':<9} {r['default_augmentation']!s:<9} "
            f"{p['encoder']:>9,} {p['trainable']:>10,} {p['total']:>10,}  {paper}"
        )
    print(f"\nreference arms (evaluation only): {', '.join(references)}")
    print("reconstruction = yes: the published formulas are not public; see docs/methods.md")
    return 0
