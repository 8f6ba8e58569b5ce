"""``python -m aclecg info``: what a prepared dataset holds."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  python -m aclecg info .cache/prepared/ptbxl
  python -m aclecg info data-cache/ningbo --verify     # also recompute the fingerprint
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="describe a prepared dataset",
        description="Print counts, folds, label counts per label set and protocol "
        "(multilabel / singlelabel), and the skipped records of a prepared dataset.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="PREPARED_DIR", help="prepared dataset folder")
    p.add_argument("--verify", action="store_true", help="recompute the fingerprint and compare")
    p.add_argument("--all-skipped", action="store_true", help="list every skipped record")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aclecg.data import PreparedDataset
    from aclecg.data.prepare import summary_lines

    ds = PreparedDataset(args.path)
    m = ds.manifest
    print(f"{ds.path}")
    print(f"fingerprint {ds.fingerprint}")
    lines = summary_lines(m, max_skipped=10**9 if args.all_skipped else 20)
    print(lines[0])
    print(lines[1])
    for name, classes in ds.label_sets.items():
        print(f"\nlabel set {name} ({len(classes)} classes)")
        rows = []
        for protocol in ("multilabel", "singlelabel"):
            keep, y, _ = ds.labels(name, protocol)
            rows.append((protocol, len(keep), y.sum(0).astype(int)))
        print(f"  {'class':<16}{'multilabel':>12}{'singlelabel':>12}")
        for j, cls in enumerate(classes):
            print(f"  {cls:<16}{rows[0][2][j]:>12}{rows[1][2][j]:>12}")
        print(f"  {'rows kept':<16}{rows[0][1]:>12}{rows[1][1]:>12}")
    rest = [line for line in lines[2:] if not line.startswith("label set")]
    if rest:
        print()
        print("\n".join(rest))
    if args.verify:
        ds.verify()
        print("fingerprint verified")
    return 0
