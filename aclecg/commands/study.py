"""``python -m aclecg study``: the paper's question from a folder of sweeps (all methods, test-fold rotations)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  # the baseline whose linear probe validates best at 10 % of labels on the official split (no test data read)
  python -m aclecg study best-baseline --sweeps runs/sweeps

  # copy runs/ship-NAME/encoder.pt into checkpoints/NAME with a model card quoting its official probe results
  python -m aclecg study ship --sweeps runs/sweeps

  # docs/results.md, plus the tables the app's Label-fraction sweeps page lists
  python -m aclecg study report --sweeps runs/sweeps --preamble docs/results_preamble.md --out docs/results.md \\
      --export docs/results/sweeps

The whole pipeline that fills runs/sweeps is checkpoints/results_all.sh (make results).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study",
        help="all methods pooled over test-fold rotations: table, primary test, verdict",
        description="Read every finished sweep cell under --sweeps (folders written by `sweep`, one "
        "per protocol, test fold and arm group) and answer the paper's question: a table "
        "of every method by label fraction, the declared primary comparison with a "
        "hierarchical bootstrap interval and TOST, DeLong tests with Holm correction, "
        "and a computed verdict.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "action",
        choices=("best-baseline", "ship", "report"),
        help="best-baseline: print it; ship: copy the official encoders into checkpoints/NAME with "
        "model cards; report: write the report",
    )
    p.add_argument("--sweeps", default="runs/sweeps", help="folder holding the sweep folders (%(default)s)")
    p.add_argument("--out", default="docs/results.md", help="report path (%(default)s)")
    p.add_argument(
        "--preamble",
        default="docs/results_preamble.md",
        help="Markdown inserted after the title (%(default)s; skipped when missing)",
    )
    p.add_argument("--export", default=None, help="also copy the sweep tables and manifests here (not the cells)")
    p.add_argument(
        "--readme", default=None, help="also fill this README's <!-- study:start --> ... <!-- study:end --> block"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aclecg import study
    from aclecg.study_report import build_study_report

    if args.action == "best-baseline":
        print(study.best_baseline(study.load_cells(args.sweeps)))
        return 0
    if args.action == "ship":
        for path in study.ship_official(args.sweeps):
            print(path)
        return 0
    pre = Path(args.preamble) if args.preamble else None
    preamble = pre.read_text() if pre is not None and pre.is_file() else ""
    print(build_study_report(args.sweeps, args.out, preamble=preamble, export=args.export))
    if args.readme:
        from aclecg.study_report import update_readme

        print(update_readme(args.sweeps, args.readme))
    return 0
