"""``python -m aclecg augment``: show what an augmentation pipeline does to one record."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aclecg.constraints import AUGMENTATION_PRESETS
from aclecg.errors import ConfigError, DataError
from aclecg.leads import LEADS

if TYPE_CHECKING:
    import torch

EPILOG = """examples:
  python -m aclecg augment --synthetic --spec physio --seed 0
  python -m aclecg augment --data data/prepared/ptbxl --index 12 --spec standard --views 2 --save out/aug
  python -m aclecg augment --synthetic --spec '[{"name": "cardiac_cycle_mask", "scope": "inferior"}]'
  python -m aclecg augment --data DIR --spec my_pipeline.json

--spec is a preset (%s), a JSON list of {"name": ..., **params} steps, or a .json file holding one.
Prints the resolved spec and, for each view, every step's parameters as JSON; --save also writes
original.npy, view<i>.npy (leads x samples, float32), rpeaks.npy and info.json.""".replace(
    "%s", ", ".join(AUGMENTATION_PRESETS)
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "augment",
        help="render an augmentation of one prepared record",
        description="Apply an augmentation pipeline (Physio-AUG, the standard baseline, or a custom list) to one "
        "record and report what each step did.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="prepared dataset folder (written by `prepare`)")
    source.add_argument("--synthetic", action="store_true", help="use a built-in synthetic 12-lead record")
    parser.add_argument("--index", type=int, default=0, help="record (window) index in the dataset (default 0)")
    parser.add_argument("--spec", default="physio", help="preset name, JSON list of steps, or .json file")
    parser.add_argument("--views", type=int, default=2, help="number of augmented views (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the torch.Generator (default 0)")
    parser.add_argument("--save", type=Path, help="folder to write the signals as .npy and the info as JSON")
    parser.set_defaults(func=run)


def _parse_spec(text: str) -> Any:
    if text in AUGMENTATION_PRESETS:
        return text
    path = Path(text)
    if text.endswith(".json"):
        if not path.is_file():
            raise ConfigError(f"--spec: file {text} not found")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--spec: {text} is not valid JSON ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ConfigError(
            f"--spec: {text!r} is neither a preset ({', '.join(AUGMENTATION_PRESETS)}) nor JSON"
        ) from None


def _load_record(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, float, list[str], str]:
    import numpy as np
    import torch

    from aclecg.augment import make_synthetic_batch

    if args.synthetic:
        x, rp = make_synthetic_batch(1, generator=torch.Generator().manual_seed(args.seed))
        return x, rp, 100.0, list(LEADS), "synthetic"
    from aclecg.data import PreparedDataset

    ds = PreparedDataset(args.data)
    if not 0 <= args.index < len(ds):
        raise DataError(f"--index {args.index} is out of range for {args.data} ({len(ds)} records)")
    x = torch.from_numpy(np.array(ds.signals[args.index : args.index + 1], dtype=np.float32))
    rp = torch.from_numpy(np.asarray(ds.rpeaks_padded([args.index], max_peaks=64))).long()
    return x, rp, float(ds.fs), list(ds.leads), f"{args.data}[{args.index}]"


def _plain(value: Any) -> Any:
    """Sample 0 of a per-sample tensor as plain JSON data."""
    import torch

    if isinstance(value, torch.Tensor):
        return value[0].tolist() if value.ndim else value.item()
    return value


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from aclecg.augment import build_augmentation

    if args.views < 1 or args.views > 16:
        raise ConfigError(f"--views must be in [1, 16], got {args.views}")
    x, rp, fs, leads, source = _load_record(args)
    aug = build_augmentation(_parse_spec(args.spec), fs=fs, leads=leads)
    gen = torch.Generator().manual_seed(args.seed)
    views, infos = [], []
    for _ in range(args.views):
        y, info = aug.forward_with_info(x, rp, generator=gen)
        views.append(y[0].numpy())
        infos.append({step: {k: _plain(v) for k, v in part.items()} for step, part in info.items()})
        for part in infos[-1].values():  # drop the -1 padding of the R-peak lists
            part["rpeaks"] = [r for r in part["rpeaks"] if r >= 0]
    valid = rp[0][rp[0] >= 0].tolist()
    report = {"source": source, "fs": fs, "leads": leads, "spec": aug.config(), "rpeaks": valid, "views": infos}
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        np.save(args.save / "original.npy", x[0].numpy())
        np.save(args.save / "rpeaks.npy", np.asarray(valid, dtype=np.int64))
        for i, view in enumerate(views, start=1):
            np.save(args.save / f"view{i}.npy", view.astype(np.float32))
        (args.save / "info.json").write_text(json.dumps(report, indent=1))
        report["saved_to"] = str(args.save)
    print(json.dumps(report))
    return 0
