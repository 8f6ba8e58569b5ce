"""``python -m aclecg umap``: a 2-D map (fast UMAP or umap-learn, :mod:`aclecg.analysis.embed2d`) of embeddings,
as CSV/HTML."""

from __future__ import annotations

import argparse
from pathlib import Path

from aclecg.constraints import UMAP_METHODS, UMAP_METRICS

KNN_MODES = ("auto", "exact", "approximate")  # aclecg.analysis.embed2d.KNN_MODES (not imported: --help stays fast)

EXAMPLES = """examples:
  # map the embeddings of a checkpoint on the bundled PTB-XL data, coloured by superclass
  python -m aclecg umap --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl \\
      --out ptbxl_map.csv --html ptbxl_map.html --colour labels_superdiagnostic

  # map an embedding matrix saved with `python -m aclecg embed --out emb.npy`
  python -m aclecg umap --embeddings emb.npy --out map.csv

  # the same layout as the app (maps are cached on disk by content; --cache-dir to choose where)
  python -m aclecg umap --checkpoint runs/acl-small/encoder.pt --data .cache/prepared/ptbxl --out map.csv \\
      --neighbors 15 --min-dist 0.1 --seed 0

  # umap-learn's own UMAP on the same features and parameters (for a figure in a paper)
  python -m aclecg umap --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl --out map.csv \
      --method umap-learn

  # the map the app draws of a large dataset: at most 20,000 records, a fixed sample stratified by dataset
  python -m aclecg umap --checkpoint checkpoints/acl_ecg/encoder.pt --data /data/prepared/ptbxl-full \
      --out map.csv --max-points 20000

--method fast (default) is a vectorised torch re-implementation of UMAP (McInnes et al., 2018): kNN on PCA-50
features (exact up to 5,000 points, an approximate inverted-file search above; --knn to choose), fuzzy simplicial
set, spectral initialisation and negative-sampling SGD; no numba, so no compile wait. --method umap-learn runs
umap-learn's UMAP on the same features (its first fit in a process compiles numba kernels, ~15-18 s). Both print
the map's trustworthiness at k = 10 (an approximate search also the share of the exact neighbours it found); see
docs/app.md for when to use which.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from aclecg.commands.encoder_args import add_factory_args

    p = sub.add_parser(
        "umap",
        help="2-D map of embeddings (fast UMAP) as CSV/HTML",
        description="Compute a 2-D UMAP-style map of record embeddings (from a checkpoint and a "
        "prepared dataset, or from a .npy matrix) and write the coordinates as CSV "
        "(with the records' metadata when a dataset is given) and optionally an "
        "interactive HTML scatter plot.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint file; needs --data")
    src.add_argument("--embeddings", help=".npy file of shape (records, features)")
    add_factory_args(p, src)
    p.add_argument("--data", help="prepared dataset directory (with --checkpoint; adds metadata to the CSV)")
    p.add_argument("--out", required=True, help="output CSV (columns x, y and the record metadata)")
    p.add_argument("--html", help="also write an interactive plotly HTML scatter here")
    p.add_argument(
        "--colour",
        default="dataset",
        help="records.csv column colouring the HTML plot (e.g. labels_superdiagnostic, sex, fold)",
    )
    p.add_argument("--neighbors", type=int, default=15, help="n_neighbors (default 15)")
    p.add_argument("--min-dist", type=float, default=0.1, help="min_dist (default 0.1)")
    p.add_argument("--metric", choices=UMAP_METRICS, default="euclidean")
    p.add_argument("--epochs", type=int, default=None, help="SGD epochs (default 200 below 10k points, else 100)")
    p.add_argument(
        "--knn",
        choices=KNN_MODES,
        default="auto",
        help="fast method's neighbour search: auto (exact up to 5,000 points, approximate above), exact, approximate",
    )
    p.add_argument(
        "--max-points",
        type=int,
        default=None,
        help="map at most this many records, a fixed sample stratified by dataset (the app uses 20000); "
        "the CSV then holds the sampled records only",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--method",
        choices=UMAP_METHODS,
        default="fast",
        help="fast (this package's torch layout, default) or umap-learn (umap-learn's UMAP)",
    )
    p.add_argument("--cache-dir", default=None, help="on-disk cache of maps (default <repo>/.cache/umap)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from aclecg.analysis import embed2d
    from aclecg.errors import ConfigError, DataError

    table = None
    if args.checkpoint or args.encoder_factory:
        if not args.data:
            raise ConfigError("--checkpoint and --encoder-factory need --data (the prepared dataset to embed)")
        from aclecg import evaluation
        from aclecg.commands.encoder_args import encoder_sources

        dataset = evaluation.open_dataset(args.data)
        emb, _ = evaluation.cached_embeddings(encoder_sources(args)[0], dataset, show_progress=True)
        table = dataset.records.copy()
        table.insert(0, "dataset", Path(args.data).name)
    else:
        path = Path(args.embeddings)
        if not path.is_file():
            raise DataError(f"{path}: embeddings file does not exist")
        try:
            emb = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"{path}: not a .npy array ({exc})") from None
    if args.max_points is not None and np.ndim(emb) == 2:
        from aclecg.analysis import record_map

        if args.max_points < 1:
            raise ConfigError(f"--max-points must be at least 1; got {args.max_points}")
        inp = record_map.map_input([emb], args.max_points, seed=args.seed)
        emb = inp.embeddings
        # the sampled records keep their metadata (or, for a bare matrix, their row numbers)
        table = table.iloc[inp.rows] if table is not None else pd.DataFrame({"row": inp.rows})
    cfg = embed2d.UMAPConfig(
        n_neighbors=args.neighbors,
        min_dist=args.min_dist,
        metric=args.metric,
        n_epochs=args.epochs,
        seed=args.seed,
        method=args.method,
    )
    from aclecg.paths import umap_cache_dir

    cache = Path(args.cache_dir) if args.cache_dir else umap_cache_dir()
    fitted = embed2d.cached_map(emb, cache, cfg, knn=args.knn)
    coords = pd.DataFrame(fitted.coords, columns=["x", "y"])
    out = pd.concat([coords, table.reset_index(drop=True)], axis=1) if table is not None else coords
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    search = ""
    if fitted.knn == "approximate" and fitted.knn_recall is not None:
        search = f"; approximate neighbours: {fitted.knn_recall:.3f} of the exact ones on a sample"
    print(
        f"{args.method} map of {len(out)} points written to {args.out} "
        f"(trustworthiness at k = {embed2d.TRUST_K}: {fitted.trustworthiness:.4f}{search})"
    )
    if args.html:
        from aclecg import viz

        meta = out if table is not None else out.assign(dataset="embeddings")
        hover = [c for c in ("record_id", "labels_superdiagnostic", "labels_snomed", "age", "sex") if c in meta]
        fig = viz.embedding_scatter(fitted.coords, meta, args.colour, hover, title=Path(args.out).stem)
        fig.write_html(args.html, include_plotlyjs=True)
        print(f"interactive plot written to {args.html}")
    return 0
