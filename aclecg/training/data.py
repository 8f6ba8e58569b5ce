"""The data a pretraining run reads: several prepared datasets as one, in global batches, in a seeded order.

:class:`PretrainData` joins the memory-mapped caches of one or more prepared datasets (same sampling rate and window
length), keeps the records outside the excluded splits and folds, and reads a global batch of signals and R-peaks
for any list of indices. :func:`epoch_permutation` is the sample order of an epoch, a pure function of the seed and
the epoch, so a resumed run needs no stored order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from aclecg import checkpoint as ckpt
from aclecg import contract
from aclecg.errors import ConfigError

__all__ = ["PretrainData", "epoch_permutation", "resolve_data_path"]


class PretrainData:
    """The union of several prepared datasets, read from their memory-mapped caches in global batches."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        leads: Sequence[str],
        exclude_splits: Sequence[str] = ("test",),
        exclude_folds: Sequence[int] = (),
    ):
        from aclecg.data import PreparedDataset

        if not paths:
            raise ConfigError("no data given: pass at least one prepared dataset (--data DIR)")
        self.datasets = [PreparedDataset(resolve_data_path(p)) for p in paths]
        self.exclude_folds = [int(f) for f in exclude_folds]
        first = self.datasets[0]
        for ds in self.datasets[1:]:
            if (ds.fs, ds.n_samples) != (first.fs, first.n_samples):
                raise ConfigError(
                    f"{ds.path} has fs={ds.fs}, T={ds.n_samples} but {first.path} has fs={first.fs}, "
                    f"T={first.n_samples}; prepare them with the same --fs and --seconds"
                )
            line = contract.mismatch(first.contract, ds.contract, f"{ds.path} (against {first.path})")
            if line:
                raise ConfigError(f"{line}; prepare them the same way to pretrain on both")
        self.fs, self.n_samples = first.fs, first.n_samples
        self.leads = list(leads)
        #: What the encoder will have been trained on: the data's contract on the encoder's leads.
        self.contract = replace(first.contract, leads=tuple(self.leads))
        self.lead_idx: list[list[int]] = []
        for ds in self.datasets:
            missing = [lead for lead in self.leads if lead not in ds.leads]
            if missing:
                raise ConfigError(f"{ds.path} lacks leads {missing}")
            self.lead_idx.append([list(ds.leads).index(lead) for lead in self.leads])
        owner, local = [], []
        for k, ds in enumerate(self.datasets):
            if "split" in ds.records:
                split = ds.records["split"].astype(str).to_numpy()
            else:
                split = np.array(["train"] * len(ds))
            drop = np.isin(split, list(exclude_splits))
            if self.exclude_folds and "fold" in ds.records:
                drop |= np.isin(ds.records["fold"].to_numpy(), self.exclude_folds)
            keep = np.flatnonzero(~drop)
            owner.append(np.full(len(keep), k, dtype=np.int64))
            local.append(keep.astype(np.int64))
        self.owner = np.concatenate(owner)
        self.local = np.concatenate(local)
        if len(self.owner) == 0:
            raise ConfigError(
                f"no records left for pretraining after excluding splits {list(exclude_splits)} and "
                f"folds {self.exclude_folds}"
            )
        self.fingerprint = ckpt.sha256_bytes("|".join(ds.fingerprint for ds in self.datasets).encode())

    def __len__(self) -> int:
        return len(self.owner)

    def batch(self, index: np.ndarray, max_peaks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Signals ``(B, L, T)`` float32 and R-peaks ``(B, K)`` int64 (-1 padded) for global indices."""
        x = np.empty((len(index), len(self.leads), self.n_samples), dtype=np.float32)
        peaks = np.full((len(index), max_peaks), -1, dtype=np.int64)
        owners = self.owner[index]
        for k, ds in enumerate(self.datasets):
            rows = np.flatnonzero(owners == k)
            if len(rows) == 0:
                continue
            local = self.local[index[rows]]
            order = np.argsort(local)  # ascending reads are kinder to the page cache
            sig = ds.signals[local[order]][:, self.lead_idx[k]]
            x[rows[order]] = sig
            peaks[rows] = ds.rpeaks_padded(local, max_peaks=max_peaks)
        return torch.from_numpy(x), torch.from_numpy(peaks)


def resolve_data_path(path: str | Path) -> Path:
    """A prepared dataset directory; ``bundled:NAME`` names a bundled dataset (prepared on first use)."""
    text = str(path)
    if text.startswith("bundled:"):
        from aclecg.data import ensure_bundled

        name = text.split(":", 1)[1]
        bundled = ensure_bundled()
        if name not in bundled:
            raise ConfigError(f"unknown bundled dataset {name!r}; bundled: {sorted(bundled)}")
        return Path(bundled[name])
    return Path(path)


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of one epoch; a pure function of (seed, epoch) so resume needs no stored order."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen).numpy()
