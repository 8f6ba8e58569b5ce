"""``python -m aclecg sweep``: linear probe / fine-tune / supervised / random-init over label fractions and seeds."""

from __future__ import annotations

import argparse

from aclecg.constraints import LR_SELECTIONS, SWEEP_PARAMS, validate

EXAMPLES = """examples:
  # linear probe of one checkpoint against the random-init and supervised references (default arms)
  python -m aclecg sweep --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl \\
      --label-set superdiagnostic --protocol multilabel --fractions 0.01,0.1,1 --seeds 3 --out runs/sweep-acl

  # two checkpoints, with fine-tuning, the authors' single-label protocol, on a GPU
  python -m aclecg sweep --checkpoint runs/acl/encoder.pt --checkpoint runs/simclr/encoder.pt \\
      --data .cache/prepared/ptbxl --label-set superdiagnostic --protocol singlelabel \\
      --arms linear_probe,fine_tune,random_init,supervised --device cuda --out runs/sweep-2

  # your own encoder (a module:factory and the contract of its input) against a checkpoint, linear probe
  python -m aclecg sweep --checkpoint checkpoints/acl_ecg/encoder.pt --encoder-factory mypkg.enc:build \\
      --encoder-contract my_contract.json --data .cache/prepared/ptbxl --label-set superdiagnostic \\
      --arms linear_probe,random_init --out runs/sweep-mine

  # run it again: finished cells are read back, nothing is recomputed
  python -m aclecg sweep --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl \\
      --label-set superdiagnostic --fractions 0.01,0.1,1 --seeds 3 --out runs/sweep-acl

outputs in --out: results.csv / results.json (one row per arm x fraction x seed x metric, bootstrap 95 % CI,
DeLong p-values vs supervised and random_init), comparisons.csv (all DeLong tests), summary.csv (over seeds),
cells/*.json + cells/*.npz (per-cell metrics and test predictions; used to resume).
The trained arms (fine_tune, supervised, reference_cnn) run at most --max-steps optimiser steps, check the
validation macro AUROC every --eval-every steps and stop after --patience steps without improvement; each
learning rate of --lr-grid is tried and the best on validation is kept. They are the slow arms on a CPU. A cell
whose best step came within --patience steps of the budget is marked "not converged" in the results.
"""


# long: one add_argument per flag of the sweep command
def register(sub: argparse._SubParsersAction) -> None:
    from aclecg.commands.encoder_args import add_factory_args
    from aclecg.evaluation import ARM_KINDS, DEFAULT_ARMS, DEFAULT_FRACTIONS, PROTOCOLS, EvalConfig
    from aclecg.evaluation.config import DEFAULT_SEEDS

    d = EvalConfig()
    p = sub.add_parser(
        "sweep",
        help="label-fraction sweep: probe, fine-tune and reference arms with statistics",
        description="Evaluate checkpoints on a prepared dataset at several label fractions and seeds: "
        "linear probe and fine-tuning per checkpoint, plus a supervised-from-scratch arm "
        "and a linear probe on a seeded random encoder. Label fractions are drawn "
        "patient-wise and stratified from the training folds only; the validation folds "
        "select hyper-parameters and the test folds are scored, with bootstrap CIs and "
        "DeLong tests. Resumable.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", action="append", default=[], help="checkpoint file; repeat for several")
    add_factory_args(p)
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument("--label-set", required=True, help="label set of the prepared data (e.g. superdiagnostic)")
    p.add_argument(
        "--protocol",
        default="multilabel",
        choices=PROTOCOLS,
        help="multilabel (sigmoid) or singlelabel (softmax; multi-label records dropped)",
    )
    p.add_argument(
        "--fractions",
        default=",".join(f"{f:g}" for f in DEFAULT_FRACTIONS),
        help="comma-separated label fractions, each in [0.0001, 1] (default %(default)s)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        help="number of seeds per fraction, 1 to 100 (seeds 0..N-1; default %(default)s)",
    )
    p.add_argument(
        "--arms",
        default=",".join(DEFAULT_ARMS),
        help=f"comma-separated arms from {', '.join(ARM_KINDS.names())} (default %(default)s)",
    )
    p.add_argument(
        "--encoder",
        default=None,
        help="encoder preset for the reference arms when no --checkpoint is given (default small)",
    )
    p.add_argument("--out", required=True, help="output directory (created; reused to resume)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    p.add_argument(
        "--max-steps",
        type=int,
        default=d.max_steps,
        help="step budget of each trained arm and learning rate (%(default)s)",
    )
    p.add_argument("--eval-every", type=int, default=d.eval_every, help="validate every this many steps (%(default)s)")
    p.add_argument(
        "--dense-every",
        type=int,
        default=d.dense_every,
        help="early on, validate every this many steps (%(default)s), from step 0 up to --dense-until",
    )
    p.add_argument(
        "--dense-until",
        type=int,
        default=d.dense_until,
        help="validate densely up to this step (%(default)s; 0: the old schedule, every --eval-every from "
        "step --eval-every, which reproduces cells trained before 2026-12-04)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=d.patience,
        help="early stopping: steps without validation improvement (%(default)s)",
    )
    p.add_argument(
        "--lr-grid",
        default=",".join(f"{v:g}" for v in d.lr_grid),
        help="comma-separated learning rates tried on validation (%(default)s)",
    )
    p.add_argument(
        "--lr-from",
        default=None,
        metavar="SWEEP_DIR",
        help="reuse the learning rates another sweep chose on its validation fold for the same arms "
        "and fractions (e.g. the official split's, for a test-fold rotation)",
    )
    p.add_argument(
        "--lr-selection",
        default=d.lr_selection,
        choices=LR_SELECTIONS,
        help="search the grid with the first seed and reuse its choice, or search in every cell (%(default)s)",
    )
    p.add_argument(
        "--val-cap",
        type=int,
        default=d.val_cap,
        help="trained arms: validate during training on at most this many validation records (a fixed "
        "class-stratified subsample; the whole fold scores each learning rate's best step once); "
        "0: always the whole fold (%(default)s)",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="training batch size (%(default)s)")
    p.add_argument("--bootstrap", type=int, default=d.n_bootstrap, help="bootstrap resamples (%(default)s)")
    p.add_argument(
        "--test-fold",
        type=int,
        default=None,
        help="rotate the folds: this fold is scored, --val-fold validates, the rest train "
        "(default: the data's own split; PTB-XL 10). Pretrain with --set exclude_folds=[K] to keep "
        "the rotated test fold unseen",
    )
    p.add_argument(
        "--val-fold",
        type=int,
        default=None,
        help="with --test-fold: the fold that chooses the probe's L2, the learning rate and the early-stopping "
        "step (default: the fold before the test fold). A study pooling several test folds validates on a "
        "fold none of them is (studies use 9 with test folds 10, 8, 7, 6)",
    )
    p.add_argument(
        "--collect-only",
        action="store_true",
        help="compute nothing: write the outputs from the finished cells in --out (e.g. after several "
        "partial runs into one folder) and say how many are missing",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def check_form(fractions: object, seeds: object) -> None:
    """Refuse seeds and fractions outside :data:`aclecg.constraints.SWEEP_PARAMS` (``fractions`` as the CLI's
    comma-separated text or a list), naming the option; ConfigError."""
    from aclecg.errors import ConfigError

    if isinstance(fractions, str):
        try:
            fractions = [float(f) for f in fractions.split(",") if f.strip()]
        except ValueError:
            raise ConfigError(f"--fractions must be comma-separated numbers, got {fractions!r}") from None
    validate("sweep", SWEEP_PARAMS, {"seeds": seeds, "fractions": fractions})


def run(args: argparse.Namespace) -> int:
    from aclecg.errors import ConfigError
    from aclecg.evaluation import EvalConfig, run_sweep

    check_form(args.fractions, args.seeds)

    try:
        lr_grid = tuple(float(v) for v in args.lr_grid.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--lr-grid must be comma-separated numbers, got {args.lr_grid!r}") from None
    config = EvalConfig(
        max_steps=args.max_steps,
        eval_every=args.eval_every,
        dense_every=args.dense_every,
        dense_until=args.dense_until,
        patience=args.patience,
        lr_grid=lr_grid,
        lr_selection=args.lr_selection,
        val_cap=args.val_cap,
        batch_size=args.batch_size,
        n_bootstrap=args.bootstrap,
        device=args.device,
    )
    from aclecg.commands.encoder_args import factory_source

    own = factory_source(args)
    result = run_sweep(
        [*args.checkpoint, *([own] if own is not None else [])],
        args.data,
        args.label_set,
        args.protocol,
        args.fractions,
        args.seeds,
        args.arms,
        args.out,
        config=config,
        encoder_config=args.encoder,
        show_progress=not args.no_progress,
        test_fold=args.test_fold,
        lr_from=args.lr_from,
        collect_only=args.collect_only,
        val_fold=args.val_fold,
    )
    summ = result.summary
    macro = summ[summ["metric"].isin(["macro_auroc", "macro_auprc"])] if not summ.empty else summ
    if not macro.empty:
        table = macro.pivot_table(index=["arm", "fraction"], columns="metric", values="mean").round(4)
        print(table.to_string())
    missing = f", {result.n_missing} missing (not computed: --collect-only)" if result.n_missing else ""
    print(f"{result.n_computed} cells computed, {result.n_cached} reused{missing}; results in {result.out_dir}")
    return 0
