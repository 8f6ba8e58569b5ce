"""``python -m aclecg regions``: the Lead regions page's heatmap of region-embedding similarity (SVG or HTML)."""

from __future__ import annotations

import argparse
import html

EXAMPLES = """examples:
  # 128 PTB-XL records (seed 0) through ACL-ECG's encoder, features centred, the default four-region map
  python -m aclecg regions --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl \\
      --out regions_acl.html

  # only print the matrix (and cache the sample's lead features, as `make app` does for the page's first visit)
  python -m aclecg regions --checkpoint checkpoints/acl_ecg/encoder.pt --data .cache/prepared/ptbxl

  # another grouping (JSON: region name -> leads), raw cosines
  python -m aclecg regions --checkpoint checkpoints/simclr/encoder.pt --data .cache/prepared/ptbxl \\
      --region-map my_regions.json --no-centre --out regions_simclr.svg
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regions",
        help="heatmap of how similar a checkpoint's region embeddings are (the Lead regions page)",
        description="Encode a fixed random sample of records, average each region's lead features into a region "
        "embedding and write the mean cosine similarity between regions as an interactive heatmap (HTML); "
        "prints the matrix and the mean within- and across-region lead similarity.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="encoder checkpoint")
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument(
        "--out",
        default=None,
        help="the heatmap's file: SVG if it ends in .svg, else a self-contained HTML page (without it, only printed)",
    )
    p.add_argument("--records", type=int, default=128, help="records sampled (default 128, as the page)")
    p.add_argument("--seed", type=int, default=0, help="seed of the record sample (default 0, as the page)")
    p.add_argument("--region-map", default=None, help="JSON file: region name -> list of leads (default: standard)")
    p.add_argument("--no-centre", action="store_true", help="raw cosines (default: each lead's mean removed first)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import pandas as pd

    from aclecg import atomicio, evaluation, viz
    from aclecg.analysis.similarity import sample_region_similarity
    from aclecg.errors import ConfigError
    from aclecg.leads import RegionMap, default_region_map

    if args.records < 1:
        raise ConfigError(f"--records must be at least 1, got {args.records}")
    rmap = default_region_map()
    if args.region_map:
        try:
            rmap = RegionMap.from_dict(json.loads(Path(args.region_map).read_text()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--region-map {args.region_map}: {exc}") from None
    source = evaluation.load_source(args.checkpoint)
    dataset = evaluation.open_dataset(args.data)
    sim, names, summary = sample_region_similarity(
        source, dataset, rmap, args.records, centre=not args.no_centre, seed=args.seed
    )
    if args.out:
        title = f"mean cosine similarity of region embeddings ({source.label}, {Path(args.data).name})"
        svg = viz.similarity_heatmap(sim, names, title)
        page = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        atomicio.write_text(args.out, svg if args.out.lower().endswith(".svg") else f"{page}<body>{svg}</body></html>")
    print(pd.DataFrame(sim, index=names, columns=names).to_string(float_format="%.3f"))
    print(
        f"within-region lead similarity {summary['within']:.3f}, across-region {summary['across']:.3f} "
        f"({int(summary['records'])} records)" + (f"; heatmap written to {args.out}" if args.out else "")
    )
    return 0
