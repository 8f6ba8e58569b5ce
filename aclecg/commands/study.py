"""``python -m aclecg study``: the paper's question from a folder of sweeps (all methods, test-fold rotations)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  # the whole study declared in a file: what is left (with a time estimate), run it, then the report
  python -m aclecg study plan studies/bundled.toml
  python -m aclecg study run studies/bundled.toml --workers 2
  python -m aclecg study report studies/bundled.toml
  # the file with some keys overridden (TOML values), e.g. pointed at your own prepared folders
  python -m aclecg study run studies/full-ptbxl.toml --set data.pretrain='["/data/ptbxl"]' \\
      --set data.downstream=/data/ptbxl --set study.runs=runs/mine --set evaluation.seeds=1
  # on a Ray cluster (pip install "aclecg[cluster]"; the study's folders on a shared filesystem)
  python -m aclecg study run studies/full-ptbxl.toml --executor ray --address auto
  # one element of a Slurm array of 8 (see docs/cluster.md)
  python -m aclecg study run studies/full-ptbxl.toml --shard $SLURM_ARRAY_TASK_ID/8

  # in each rotation, the baseline whose linear probe validates best at 10 % of labels (no test fold read)
  python -m aclecg study best-baseline --sweeps runs/sweeps
  python -m aclecg study best-baseline --sweeps runs/sweeps --test-fold 8

  # the sample-size planner: variance components, the present design's power and minimum detectable effect,
  # and the designs that reach 80 % power at the paper's effect (or --effect), here and on the full PTB-XL
  python -m aclecg study power --sweeps runs/sweeps
  python -m aclecg study power --sweeps runs/sweeps --effect 0.02 --records 2180

  # copy runs/ship-NAME/encoder.pt into checkpoints/NAME with a model card quoting its official probe results
  python -m aclecg study ship --sweeps runs/sweeps

  # docs/results.md, plus the tables the app's Label-fraction sweeps page lists
  python -m aclecg study report --sweeps runs/sweeps --preamble docs/results_preamble.md --out docs/results.md \\
      --export docs/results/sweeps

The whole pipeline that fills runs/sweeps is `study run studies/bundled.toml` (make results).
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
        choices=("plan", "run", "best-baseline", "ship", "report", "power"),
        help="plan: list a study file's tasks, which are done, and the time left; run: run what is missing; "
        "best-baseline: print it; ship: copy the official encoders into checkpoints/NAME with "
        "model cards; report: write the report; power: the sample-size planner",
    )
    p.add_argument(
        "file", nargs="?", default=None, help="the study file (TOML; plan, run, and report instead of --sweeps)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="with FILE: override a dotted key of the study file before it is validated, VALUE a TOML value "
        "(repeatable; e.g. --set evaluation.max_steps=10 --set sweep.0.fractions=[0.1] --set data.downstream=DIR); "
        "a study changed outside [study] runs in <study.runs>/set-<hash> unless --set study.runs=DIR",
    )
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="run: where tasks run (%(default)s)")
    p.add_argument("--address", default=None, help="run --executor ray: the cluster (e.g. auto, or HOST:6379)")
    p.add_argument(
        "--workers", type=int, default=None, help="run/plan: parallel tasks (local default: GPUs, else cores / 2)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="run: torch threads (and Ray CPUs) per task (default cores / workers)"
    )
    p.add_argument("--shard", default=None, metavar="I/N", help="plan/run: only shard I of N of the tasks")
    p.add_argument(
        "--only", default=None, metavar="KINDS", help="plan/run: only these task kinds (pretrain,embed,probe,trained)"
    )
    p.add_argument("--quiet", action="store_true", help="plan: only the summary table, not every task")
    p.add_argument("--no-progress", action="store_true", help="run: no progress bar")
    p.add_argument(
        "--test-fold", type=int, default=10, help="best-baseline: the rotation (its validation fold) (%(default)s)"
    )
    p.add_argument(
        "--effect",
        type=float,
        default=None,
        help="power: the difference to detect (default: the paper's, +0.0129 AUROC)",
    )
    p.add_argument(
        "--records",
        type=float,
        default=None,
        help="power: test records per rotation of the larger design (default: a full PTB-XL fold, 2180)",
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
    p.add_argument(
        "--cards",
        default=None,
        metavar="CHECKPOINTS_DIR",
        help="also write the verdict line into every model card CHECKPOINTS_DIR/*/README.md",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aclecg.errors import ConfigError
    from aclecg.results import study
    from aclecg.results.study_report import build_study_report

    if args.action in ("plan", "run"):
        from aclecg.commands.studyrun import run_plan_or_run

        return run_plan_or_run(args)
    if args.file is not None:
        from aclecg.studyplan import load_study

        spec = load_study(args.file, args.overrides)
        args.sweeps = str(spec.sweeps_dir)
        if args.action == "report":  # a study still running: its committed cells count too
            from aclecg.studyplan.executors import restore_finished
            from aclecg.studyplan.tasks import StudyPlan

            restore_finished(StudyPlan(spec))
    elif args.overrides:
        raise ConfigError("--set overrides keys of a study file: give the file (aclecg study ACTION FILE --set ...)")
    if args.action == "best-baseline":
        print(study.best_baseline(study.load_cells(args.sweeps), test_fold=args.test_fold))
        return 0
    if args.action == "power":
        from aclecg.results.power import FULL_PTBXL_RECORDS_PER_FOLD, power_section

        if args.effect is not None and not 0 < args.effect < 1:
            raise ConfigError(f"--effect must lie in (0, 1), got {args.effect}")
        if args.records is not None and not 10 <= args.records <= 1e6:
            raise ConfigError(f"--records must lie in [10, 1e6], got {args.records}")
        prim = study.primary_comparison(study.load_cells(args.sweeps))
        records = FULL_PTBXL_RECORDS_PER_FOLD if args.records is None else args.records
        print("\n".join(power_section(prim, args.effect, records)))
        return 0
    if args.action == "ship":
        import json

        from aclecg.results.study_report import update_cards

        for path in study.ship_official(args.sweeps):
            print(path)
        primary = Path(args.sweeps).parent / "primary.json"
        if primary.is_file():  # the freshly written cards carry the exported verdict too
            update_cards(json.loads(primary.read_text()))
        return 0
    pre = Path(args.preamble) if args.preamble else None
    preamble = pre.read_text() if pre is not None and pre.is_file() else ""
    print(build_study_report(args.sweeps, args.out, preamble=preamble, export=args.export))
    if args.readme:
        from aclecg.results.study_report import update_readme

        print(update_readme(args.sweeps, args.readme))
    if args.cards:
        from aclecg.results.study_report import update_cards

        for card in update_cards(study.primary_comparison(study.load_cells(args.sweeps)), args.cards):
            print(card)
    return 0
