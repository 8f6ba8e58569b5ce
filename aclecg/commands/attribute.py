"""``python -m aclecg attribute``: which lead region (and lead) carries a record's class scores, by occlusion."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EXAMPLES = """examples:
  # how much each region and each lead of PTB-XL record 9 carries every class score of a probe on ACL-ECG
  python -m aclecg attribute --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl \\
      --record 9

  # the same for your own ECG (WFDB .hea + .dat/.mat, a folder of them, or a .zip), median fill, CSV out
  python -m aclecg attribute --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl \\
      --upload my_ecg/A0001.hea --fill median --out my_ecg_attribution.csv

  # your own encoder (any module mapping (N, leads, samples) to embeddings): occlusion needs nothing else
  PYTHONPATH=. python -m aclecg attribute --encoder-factory mypkg.encoders:build --encoder-contract c.json \
      --data .cache/prepared/ptbxl --record 9

  # fit and cache the probe the app's "Explain by region" uses, ahead of time
  python -m aclecg attribute --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl --fit-probe

  # the anatomy check: on the MI records with one territory, how often the region whose occlusion lowers the
  # MI score most lies in that territory (out-of-fold probes; random-init is added); CSV + markdown table
  python -m aclecg attribute --territory --data .cache/prepared/ptbxl \\
      --checkpoint checkpoints/acl_ecg/encoder.pt --checkpoint checkpoints/simclr/encoder.pt \\
      --checkpoint checkpoints/lcd/encoder.pt --fill zero --fill median --out docs/results/attribution.csv

The probe is the linear probe of the sweeps (train records fitted, L2 chosen on val), cached beside the
embeddings. A drop is score(original) - score(occluded): positive when the hidden leads supported the class.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from aclecg.commands.encoder_args import add_factory_args

    p = sub.add_parser(
        "attribute",
        help="region / lead occlusion attribution of a probe's class scores",
        description="Occlude each anatomical lead region (septal, anterior, lateral, inferior) and each lead of "
        "a record, and print how every class score of a linear probe on the checkpoint's embeddings changes; "
        "or, with --territory, check the MI attribution against the PTB-XL infarct territory.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", action="append", help="encoder checkpoint (repeat it with --territory)")
    add_factory_args(p)
    p.add_argument("--data", required=True, help="prepared dataset directory (its train/val records fit the probe)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--record", help="record_id of a record in --data")
    what.add_argument("--upload", help="a WFDB .hea (signal file next to it), a folder of them, or a .zip")
    what.add_argument(
        "--territory", action="store_true", help="territory match of the MI score on the single-territory MI records"
    )
    what.add_argument(
        "--fit-probe",
        action="store_true",
        help="only fit and cache the probe (`make app` does this, so the app's first explanation waits for nothing)",
    )
    p.add_argument(
        "--fill", action="append", choices=("zero", "median"), help="occlusion fill (default zero; repeatable)"
    )
    p.add_argument("--label-set", default="superdiagnostic", help="the probe's label set (default superdiagnostic)")
    p.add_argument("--class", dest="class_name", default=None, help="print only this class (e.g. MI)")
    p.add_argument("--seed", type=int, default=0, help="with --territory: random-init and bootstrap seed")
    p.add_argument("--out", default=None, help="CSV to write atomically (with --territory, a .md table beside it)")
    p.add_argument("--cache-dir", default=None, help="embedding and probe cache (default <cache root>/embeddings)")
    p.set_defaults(func=run)


def _territory(args: argparse.Namespace, dataset: Any) -> int:
    from aclecg import atomicio, evaluation
    from aclecg.analysis.attribution_eval import territory_study
    from aclecg.commands.encoder_args import encoder_sources
    from aclecg.results.report_sections import attribution_section

    loaded = encoder_sources(args)
    sources = [(s.label, s) for s in loaded] + [
        ("random_init", evaluation.random_init_like(loaded, dataset, args.seed))
    ]
    table = territory_study(
        sources,
        dataset,
        label_set=args.label_set,
        fills=tuple(args.fill or ("zero",)),
        seed=args.seed,
        cache_dir=args.cache_dir,
        show_progress=True,
    )
    shown = table.assign(ci=[f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(table["ci_low"], table["ci_high"])])
    cols = ["name", "fill", "match", "ci", "chance_uniform", "chance_permuted", "p_permutation", "n_records"]
    print(shown[cols].to_string(index=False, float_format="%.3f"))
    if args.out:
        out = Path(args.out)
        atomicio.write_text(out, table.to_csv(index=False))
        atomicio.write_text(out.with_suffix(".md"), "\n".join(attribution_section(out)) + "\n")
        print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from aclecg import atomicio, evaluation, upload
    from aclecg.analysis.attribution_eval import cached_probe, explain
    from aclecg.commands.encoder_args import encoder_sources
    from aclecg.data.labels import record_row
    from aclecg.errors import ConfigError

    if not args.checkpoint and not args.encoder_factory:
        raise ConfigError("give an encoder: --checkpoint FILE or --encoder-factory MODULE:FACTORY")
    dataset = evaluation.open_dataset(args.data)
    if args.territory:
        return _territory(args, dataset)
    sources = encoder_sources(args)
    if len(sources) > 1:
        raise ConfigError("give one encoder (several only with --territory)")
    fills = args.fill or ["zero"]
    if len(fills) > 1:
        raise ConfigError("give one --fill for a single record (several only with --territory)")
    source = sources[0]
    probe = cached_probe(source, dataset, args.label_set, cache_dir=args.cache_dir)
    if args.fit_probe:
        print(f"probe of {source.label} on {args.data} ({args.label_set}: {', '.join(probe.classes)}) is cached")
        return 0
    if args.record is not None:
        row = record_row(dataset.records, args.record, args.data)
        windows, title = np.asarray(dataset.signals[row : row + 1]), f"record {args.record}"
    else:
        seconds = float(dataset.n_samples) / float(dataset.fs)
        record = upload.read_upload_path(args.upload, fs=float(dataset.fs), seconds=seconds)
        windows, title = record.windows[:1], f"upload {record.record_id}"
    attr = explain(source, probe, windows, dataset.leads, dataset.fs, fill=fills[0])
    table = attr.table(0)
    if args.class_name is not None:
        if args.class_name not in attr.classes:
            raise ConfigError(f"--class {args.class_name!r} is not one of {', '.join(attr.classes)}")
        table = table[table["class"] == args.class_name]
    print(f"{title}: class scores and their drop when each region / lead is occluded ({fills[0]} fill)")
    wide = table.pivot_table(index=["kind", "unit"], columns="class", values="drop", sort=False)
    print("score " + "  ".join(f"{c}={s:.3f}" for c, s in zip(attr.classes, attr.base[0])))
    print(wide.to_string(float_format="%+.3f"))
    if args.out:
        atomicio.write_text(Path(args.out), table.to_csv(index=False))
        print(f"wrote {args.out}")
    return 0
