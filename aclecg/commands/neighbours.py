"""``python -m aclecg neighbours``: the records of a prepared dataset most similar to a record or an upload."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from aclecg.evaluation import EncoderSource

EXAMPLES = """examples:
  # the 5 records of the bundled PTB-XL data most similar to record 17 (the record itself is left out)
  python -m aclecg neighbours --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl \\
      --record 17

  # the 10 records most similar to your own ECG (WFDB .hea + .dat/.mat, a folder of them, or a .zip)
  python -m aclecg neighbours --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl \\
      --upload my_ecg/A0001.hea -k 10

  # label-agreement precision@1/5/10: test records (fold 10) queried against the train folds (1-8), per
  # checkpoint, plus random-init, raw-signal and chance rows; writes the CSV and a markdown table next to it
  python -m aclecg neighbours --evaluate --data .cache/prepared/ptbxl \\
      --checkpoint checkpoints/acl_ecg/encoder.pt --checkpoint checkpoints/simclr/encoder.pt \\
      --out docs/results/neighbours.csv

Similarity is the cosine of the encoder's embeddings after standardising each feature over the dataset
(exact search, see aclecg.analysis.neighbours).
An upload is preprocessed like `prepare` and its first window is embedded.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from aclecg.commands.encoder_args import add_factory_args

    p = sub.add_parser(
        "neighbours",
        help="the most similar records of a dataset (cosine of embeddings)",
        description="Find the k records of a prepared dataset whose embeddings are most similar to a record "
        "of that dataset or to an uploaded WFDB record, and print their ids, similarities and labels.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--checkpoint",
        default=[],
        action="append",
        help="checkpoint file of the encoder (with --evaluate: repeat it for every checkpoint to score)",
    )
    add_factory_args(p)
    p.add_argument("--data", required=True, help="prepared dataset directory to search")
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--record", help="record_id of a record in --data (its first window is the query)")
    query.add_argument("--upload", help="a WFDB .hea (with its signal file next to it), a folder of them, or a .zip")
    query.add_argument(
        "--evaluate",
        action="store_true",
        help="score every --checkpoint (plus random-init, raw-signal and chance rows) by label-agreement "
        "precision@k of test records queried against the train folds",
    )
    p.add_argument("-k", type=int, default=None, help="how many neighbours (default 5; with --evaluate 1,5,10)")
    p.add_argument("--ks", default="1,5,10", help="with --evaluate: comma-separated k values (default 1,5,10)")
    p.add_argument(
        "--label-set", default="superdiagnostic", help="with --evaluate: label set (default superdiagnostic)"
    )
    p.add_argument("--seed", type=int, default=0, help="with --evaluate: random-init and bootstrap seed (default 0)")
    p.add_argument(
        "--out",
        default=None,
        help="with --evaluate: CSV to write (atomically); a markdown table goes next to it as <stem>.md",
    )
    p.add_argument("--cache-dir", default=None, help="embedding cache folder (default <cache root>/embeddings)")
    p.set_defaults(func=run)


def _embed_upload(source: EncoderSource, dataset: Any, target: Path) -> tuple[np.ndarray, str]:
    import numpy as np
    import torch

    from aclecg import upload
    from aclecg.evaluation import check_compatible

    record = upload.read_upload_path(target, fs=float(dataset.fs), seconds=float(dataset.n_samples) / float(dataset.fs))
    lead_idx = check_compatible(source.meta, dataset, source.path or source.label)
    window = np.ascontiguousarray(record.windows[:1][:, lead_idx], dtype=np.float32)
    source.encoder.eval()
    with torch.no_grad():
        emb = source.encoder(torch.from_numpy(window)).embedding.float().numpy()
    return emb, record.record_id


def _evaluate(args: argparse.Namespace) -> int:
    from aclecg import atomicio, evaluation
    from aclecg.analysis import neighbours_eval
    from aclecg.commands.encoder_args import encoder_sources
    from aclecg.errors import ConfigError
    from aclecg.results.report_sections import neighbours_section

    try:
        ks = [int(x) for x in str(args.ks).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--ks must be comma-separated integers; got {args.ks!r}") from None
    if args.k is not None:
        ks = [args.k]
    dataset = evaluation.open_dataset(args.data)
    loaded = encoder_sources(args)
    sources: list[tuple[str, Any]] = [(s.label, s) for s in loaded]
    sources += [
        ("random_init", evaluation.random_init_like(loaded, dataset, args.seed)),
        (neighbours_eval.RAW_SIGNAL, None),
    ]
    table = neighbours_eval.evaluate_retrieval(
        sources, dataset, label_set=args.label_set, k=ks, seed=args.seed, cache_dir=args.cache_dir
    )
    with_ci = table.assign(ci=[f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(table["ci_low"], table["ci_high"])])
    print(with_ci[["name", "k", "precision", "ci", "n_queries", "n_index"]].to_string(index=False, float_format="%.3f"))
    if args.out:
        out = Path(args.out)
        atomicio.write_text(out, table.to_csv(index=False))
        atomicio.write_text(out.with_suffix(".md"), "\n".join(neighbours_section(out)) + "\n")
        print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from aclecg import evaluation
    from aclecg.analysis import neighbours
    from aclecg.commands.encoder_args import encoder_sources
    from aclecg.data.labels import record_row
    from aclecg.errors import ConfigError

    if not args.checkpoint and not args.encoder_factory:
        raise ConfigError("give a --checkpoint (or --encoder-factory) to search with")
    if args.evaluate:
        return _evaluate(args)
    if len(args.checkpoint) + bool(args.encoder_factory) > 1:
        raise ConfigError("give one --checkpoint to search with (several only with --evaluate)")
    args.k = 5 if args.k is None else args.k
    if args.k < 1:
        raise ConfigError(f"-k must be at least 1; got {args.k}")
    dataset = evaluation.open_dataset(args.data)
    source = encoder_sources(args)[0]
    index = neighbours.cached_index(source, dataset, cache_dir=args.cache_dir)
    records = dataset.records.reset_index(drop=True)
    label_set = next(iter(dataset.label_sets), None)
    if args.record is not None:
        row = record_row(records, args.record, args.data)
        vectors = np.asarray(evaluation.cached_embeddings(source, dataset, cache_dir=args.cache_dir)[0][row : row + 1])
        exclude = [row]
        title = f"record {args.record}"
    else:
        vectors, record_id = _embed_upload(source, dataset, Path(args.upload))
        exclude = None
        title = f"upload {record_id}"
    limit = len(index) - (1 if exclude else 0)
    if args.k > limit:
        raise ConfigError(f"-k {args.k} is more than the {limit} records that can be returned")
    found = neighbours.similar_records(
        index, records, vectors[0], k=args.k, exclude_row=exclude[0] if exclude else None, label_set=label_set
    )
    print(f"{args.k} nearest records to {title} in {Path(args.data).name} (cosine similarity):")
    print(f"{'rank':>4}  {'record_id':<14} {'similarity':>10}  {label_set or 'labels'}")
    for hit in found.itertuples(index=False):
        labels = getattr(hit, "labels", "") or "-"
        print(f"{hit.rank:>4}  {hit.record_id:<14} {hit.similarity:>10.4f}  {labels}")
    return 0
