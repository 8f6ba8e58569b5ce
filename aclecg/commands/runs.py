"""``python -m aclecg runs``: list, tail, cancel and resume background runs (the app's Pretraining page, in a shell)."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  python -m aclecg runs list
  python -m aclecg runs launch my-run -- --method simclr --data .cache/prepared/ptbxl --epochs 5
  python -m aclecg runs tail my-run
  python -m aclecg runs cancel my-run
  python -m aclecg runs resume my-run
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "runs",
        help="manage background runs (list, launch, tail, cancel, resume)",
        description="Manage runs started in the background, as the app does. A run whose process is "
        "gone without finishing is shown as interrupted and can be resumed. Jobs beyond the free job slots wait "
        "as queued (ACLECG_MAX_JOBS, default one per GPU or one on a CPU machine). From this shell you act as "
        "the machine's operator: you may cancel and resume any run, whoever launched it in the app.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "action",
        choices=["list", "launch", "tail", "cancel", "resume"],
        help="launch takes the command's own options after a bare --",
    )
    p.add_argument("name", nargs="?", help="run name (directory under --root)")
    p.add_argument("--root", default=None, help="runs root (default: $ACLECG_RUNS or ./runs)")
    p.add_argument("--kind", default="pretrain", choices=["pretrain", "sweep"], help="for launch")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aclecg import jobs, paths
    from aclecg.errors import ConfigError

    root = Path(args.root) if args.root else paths.runs_root()
    if args.action == "list":
        runs = jobs.list_runs(root)
        if not runs:
            print(f"no runs under {root}")
        for r in runs:
            progress = f"{r.step}/{r.total_steps}" if r.total_steps else str(r.step)
            print(
                f"{r.name:30s} {r.kind:8s} {r.state:11s} {r.method or '-':12s} step {progress}"
                + (f"  owner: {r.owner}" if r.owner else "")
                + (f"  error: {r.error.splitlines()[-1]}" if r.error else "")
            )
        return 0
    if not args.name:
        raise ConfigError(f"runs {args.action} needs a run name")
    run_dir = root / jobs.sanitize_name(args.name)
    if args.action == "launch":
        print(jobs.launch(args.kind, getattr(args, "passthrough", []), root, args.name))
    elif args.action == "tail":
        print(jobs.tail_log(run_dir))
    elif args.action == "cancel":
        print("cancel requested" if jobs.cancel(run_dir) else f"{args.name} is not running")
    elif args.action == "resume":
        print(jobs.resume(run_dir))
    return 0
