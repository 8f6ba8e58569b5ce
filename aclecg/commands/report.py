"""``python -m aclecg report``: write docs/results.md and its figures from sweep folders."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  python -m aclecg report --sweep runs/sweeps/ptbxl-multilabel --sweep runs/sweeps/ptbxl-singlelabel
  python -m aclecg report --sweep runs/sweeps/ptbxl-multilabel --preamble docs/results_preamble.md --out docs/results.md
  python -m aclecg report --sweep runs/sweeps/ptbxl-multilabel --ship runs/ship-acl_ecg=checkpoints/acl_ecg
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write the results report (Markdown + PNG figures) from sweep folders",
        description="Generate the results report from finished sweep folders (see `sweep`): tables of "
        "macro AUROC/AUPRC per arm and label fraction with CIs over seeds, DeLong tests of "
        "the focus method against every other arm, and plots next to the report.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--sweep", action="append", required=True, help="sweep output folder; repeat for several")
    p.add_argument("--out", default="docs/results.md", help="report path (default: %(default)s)")
    p.add_argument("--focus", default="acl_ecg", help="arm label compared against all others (default: %(default)s)")
    p.add_argument("--preamble", help="Markdown file inserted after the title (setup, data, caveats)")
    p.add_argument(
        "--ship",
        action="append",
        default=[],
        metavar="RUN_DIR=CHECKPOINT_DIR",
        help="also copy a finished run's encoder into CHECKPOINT_DIR with a model card that quotes its "
        "linear-probe results from the sweeps; repeat for several",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aclecg.errors import ConfigError
    from aclecg.results.report import build_report

    preamble = ""
    if args.preamble:
        path = Path(args.preamble)
        if not path.is_file():
            raise ConfigError(f"preamble file {path} does not exist")
        preamble = path.read_text()
    from aclecg.results.report import ship_checkpoint

    for item in args.ship:
        run_dir, sep, dest = item.partition("=")
        if not sep:
            raise ConfigError(f"--ship expects RUN_DIR=CHECKPOINT_DIR, got {item!r}")
        print(ship_checkpoint(run_dir, dest, args.sweep))
    print(build_report(args.sweep, args.out, focus=args.focus, preamble=preamble))
    return 0
