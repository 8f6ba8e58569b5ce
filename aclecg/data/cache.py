"""``PreparedDataset``: read access to a folder written by ``prepare`` (see docs/architecture.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from aclecg import contract
from aclecg.constraints import PROTOCOLS
from aclecg.data.labels import split_labels
from aclecg.errors import AclEcgError, DataError
from aclecg.leads import LEADS

REQUIRED_FILES: tuple[str, ...] = ("manifest.json", "signals.npy", "records.csv", "rpeaks.npy", "rpeak_offsets.npy")
MANIFEST_KEYS: tuple[str, ...] = (
    "format_version",
    "dataset",
    "format",
    "fs",
    "seconds",
    "n_samples",
    "leads",
    "label_sets",
    "preprocessing",
    "counts",
    "skipped",
    "fingerprint",
)


def _load_manifest(path: Path) -> dict:
    file = path / "manifest.json"
    try:
        manifest = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{file}: unreadable manifest ({exc})") from None
    missing = [k for k in MANIFEST_KEYS if k not in manifest] if isinstance(manifest, dict) else list(MANIFEST_KEYS)
    if missing:
        raise DataError(f"{file}: not a prepared-dataset manifest (missing {', '.join(missing)})")
    return manifest


class PreparedDataset:
    """A prepared dataset folder: memory-mapped signals, per-row metadata, ragged R-peaks and labels.

    Opening checks that every file is present and that their shapes agree with each other and with the
    manifest; otherwise :class:`DataError` names the folder and what is wrong.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_dir():
            raise DataError(f"{path}: prepared dataset folder does not exist")
        missing = [f for f in REQUIRED_FILES if not (self.path / f).is_file()]
        if missing:
            raise DataError(
                f"{self.path}: not a prepared dataset (missing {', '.join(missing)}); "
                f"create one with `python -m aclecg prepare`"
            )
        self.manifest: dict = _load_manifest(self.path)
        try:
            self.signals: np.ndarray = np.load(self.path / "signals.npy", mmap_mode="r")
            self._rpeaks = np.load(self.path / "rpeaks.npy", mmap_mode="r")
            self._offsets = np.asarray(np.load(self.path / "rpeak_offsets.npy"), dtype=np.int64)
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.path}: unreadable array file ({exc})") from None
        try:
            self.records: pd.DataFrame = pd.read_csv(
                self.path / "records.csv",
                keep_default_na=False,
                na_values={"age": [""]},
                dtype={
                    "record_id": str,
                    "patient_id": str,
                    "source": str,
                    "sex": str,
                    **{f"labels_{n}": str for n in self.manifest["label_sets"]},
                },
            )
        except Exception as exc:
            raise DataError(f"{self.path / 'records.csv'}: unreadable ({exc})") from None
        self._validate()
        self._label_cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, list[str]]] = {}

    def _validate(self) -> None:
        n, t = len(self.records), int(self.manifest["n_samples"])
        where = self.path
        if self.signals.ndim != 3 or self.signals.shape[1:] != (len(LEADS), t) or self.signals.dtype != np.float32:
            raise DataError(
                f"{where}: signals.npy has shape {self.signals.shape} {self.signals.dtype}, "
                f"expected (N, 12, {t}) float32"
            )
        if self.signals.shape[0] != n:
            raise DataError(f"{where}: signals.npy has {self.signals.shape[0]} rows but records.csv {n}")
        if self._offsets.shape != (n + 1,) or self._offsets[-1] != self._rpeaks.shape[0]:
            raise DataError(f"{where}: rpeak_offsets.npy does not match records.csv / rpeaks.npy")
        need = {"record_id", "patient_id", "fold", "split", "source"} | {f"labels_{s}" for s in self.label_sets}
        if not need <= set(self.records.columns):
            raise DataError(f"{where}: records.csv lacks columns {', '.join(sorted(need - set(self.records.columns)))}")
        if tuple(self.manifest["leads"]) != LEADS:
            raise DataError(f"{where}: leads {self.manifest['leads']} are not the canonical order")

    # --- metadata -------------------------------------------------------------------------------------
    @property
    def fs(self) -> float:
        return float(self.manifest["fs"])

    @property
    def n_samples(self) -> int:
        return int(self.manifest["n_samples"])

    @property
    def leads(self) -> tuple[str, ...]:
        return tuple(self.manifest["leads"])

    @cached_property
    def contract(self) -> contract.Contract:
        """The preprocessing contract the manifest records; a dataset prepared before it existed reads as the one
        its preprocessing parameters imply (said once, :class:`~aclecg.contract.ContractWarning`)."""
        recorded = self.manifest.get("preprocessing")
        pre: dict = recorded if isinstance(recorded, dict) else {}
        band = pre.get("band_hz", contract.DEFAULT_BAND_HZ)
        try:
            fallback = contract.implied(
                self.fs, self.n_samples, self.leads, (float(band[0]), float(band[1])), int(pre.get("filter_order", 2))
            )
        except (TypeError, ValueError, IndexError, AclEcgError) as exc:
            raise DataError(f"{self.path / 'manifest.json'}: unreadable preprocessing parameters ({exc})") from None
        where = f"prepared dataset {self.path}"
        try:
            return contract.of_record(self.manifest.get("contract"), fallback, where, str(self.path))
        except AclEcgError as exc:
            raise DataError(str(exc)) from None

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    @property
    def name(self) -> str:
        return str(self.manifest["dataset"])

    @property
    def label_sets(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.manifest["label_sets"].items()}

    def __len__(self) -> int:
        return int(self.signals.shape[0])

    def __repr__(self) -> str:
        return f"PreparedDataset({str(self.path)!r}, n={len(self)}, fs={self.fs:g}, T={self.n_samples})"

    @cached_property
    def folds(self) -> np.ndarray:
        return self.records["fold"].to_numpy(dtype=np.int64)

    def split_indices(self, split: str) -> np.ndarray:
        """Row indices of ``split`` (``train``, ``val`` or ``test``)."""
        if split not in ("train", "val", "test"):
            raise DataError(f"unknown split {split!r}; expected train, val or test")
        return np.flatnonzero(self.records["split"].to_numpy() == split)

    # --- R-peaks --------------------------------------------------------------------------------------
    def rpeaks(self, i: int) -> np.ndarray:
        """R-peak sample positions of row ``i`` (int64, within the row)."""
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"row {i} out of range for {len(self)} rows")
        i %= len(self)
        return np.asarray(self._rpeaks[self._offsets[i] : self._offsets[i + 1]], dtype=np.int64)

    def rpeaks_padded(self, indices: Sequence[int] | np.ndarray, max_peaks: int = 32) -> np.ndarray:
        """``(B, max_peaks)`` int64 R-peak positions of rows ``indices``, padded with -1 (extra peaks dropped)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        start, stop = self._offsets[idx], self._offsets[idx + 1]
        k = np.arange(max_peaks)[None, :]
        pos = start[:, None] + k
        valid = pos < stop[:, None]
        flat = np.asarray(self._rpeaks)
        gathered = flat[np.clip(pos, 0, max(flat.size - 1, 0))] if flat.size else np.zeros(pos.shape, np.int32)
        return np.where(valid, gathered, -1).astype(np.int64)

    # --- batches --------------------------------------------------------------------------------------
    def batch(self, indices: Sequence[int] | np.ndarray, max_peaks: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Signals ``(B, 12, T)`` float32 (a copy in RAM) and padded R-peaks ``(B, max_peaks)`` for ``indices``.

        Rows are read from the memmap in ascending order (sequential disk access) and returned in the order
        asked for.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        order = np.argsort(idx, kind="stable")
        out = np.empty((idx.size, len(LEADS), self.n_samples), dtype=np.float32)
        out[order] = self.signals[idx[order]]
        return out, self.rpeaks_padded(idx, max_peaks)

    # --- labels ---------------------------------------------------------------------------------------
    def labels(
        self, label_set: str, protocol: str = "multilabel", drop_empty_classes: bool = False
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Rows usable under ``protocol`` and their multi-hot targets.

        ``multilabel`` keeps rows with at least one label in ``label_set``; ``singlelabel`` keeps rows with
        exactly one (the protocol of the ACL-ECG authors' earlier work, for a softmax head). Returns
        ``(keep_idx, Y (n_keep, C) float32, classes)``. With ``drop_empty_classes`` classes without any
        positive among the kept rows are removed.
        """
        if label_set not in self.label_sets:
            raise DataError(f"{self.path}: unknown label set {label_set!r}; available: {', '.join(self.label_sets)}")
        if protocol not in PROTOCOLS:
            raise DataError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        key = (label_set, protocol)
        if key not in self._label_cache:
            classes = self.label_sets[label_set]
            column = {c: j for j, c in enumerate(classes)}
            y = np.zeros((len(self), len(classes)), dtype=np.float32)
            for i, text in enumerate(self.records[f"labels_{label_set}"].to_numpy()):
                for lab in split_labels(text):
                    if lab not in column:
                        raise DataError(
                            f"{self.path / 'records.csv'}: row {i} has label {lab!r} outside label set {label_set}"
                        )
                    y[i, column[lab]] = 1.0
            n_pos = y.sum(1)
            keep = np.flatnonzero(n_pos >= 1) if protocol == "multilabel" else np.flatnonzero(n_pos == 1)
            self._label_cache[key] = (keep, y[keep], list(classes))
        keep, y, classes = self._label_cache[key]
        if drop_empty_classes:
            present = y.sum(0) > 0
            return keep.copy(), y[:, present].copy(), [c for c, p in zip(classes, present) if p]
        return keep.copy(), y.copy(), list(classes)

    # --- integrity ------------------------------------------------------------------------------------
    def compute_fingerprint(self, chunk_rows: int = 4096) -> str:
        """Recompute the sha256 over the signal bytes and ``records.csv`` (compare with :attr:`fingerprint`)."""
        sha = hashlib.sha256()
        for start in range(0, len(self), chunk_rows):
            sha.update(np.ascontiguousarray(self.signals[start : start + chunk_rows], dtype="<f4").tobytes())
        sha.update((self.path / "records.csv").read_bytes())
        return sha.hexdigest()

    def verify(self) -> None:
        """Raise :class:`DataError` when the files no longer match the manifest's fingerprint."""
        if self.compute_fingerprint() != self.fingerprint:
            raise DataError(f"{self.path}: fingerprint mismatch (files changed after prepare); prepare it again")


def is_prepared(path: str | Path) -> bool:
    """True when ``path`` holds every file of a prepared dataset and a parseable manifest."""
    path = Path(path)
    if not all((path / f).is_file() for f in REQUIRED_FILES):
        return False
    try:
        _load_manifest(path)
    except DataError:
        return False
    return True


def available_datasets(root: str | Path) -> list[Path]:
    """Prepared datasets at ``root`` or in its sub-folders (two levels deep), sorted; hidden folders ignored."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return []
    found = [root] if is_prepared(root) else []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if is_prepared(child):
            found.append(child)
        else:
            found.extend(
                g for g in sorted(child.iterdir()) if g.is_dir() and not g.name.startswith(".") and is_prepared(g)
            )
    return [p.resolve() for p in found]
