"""A sweep's cells as plain data: the pure cell plan and the cell store.

:func:`plan_cells` turns a sweep's inputs (:class:`SweepPlan`: the checkpoints' metadata, the data fingerprint, the
label set and protocol, fractions, seeds, arms, the evaluation config and the folds) into the ordered list of
:class:`CellSpec` - each with the key that identifies its result and the cell id its files are named by. It reads
no file and runs nothing, so a study can list, shard and estimate cells before any of them is computed.

A trained arm with ``lr_selection="first_seed"`` searches the learning-rate grid only on the first seed of each
(arm, fraction); the later seeds reuse its choice, and the chosen rate is part of their key. Such a cell therefore
depends on the first seed's cell: until that rate is known (``chosen_lr``) its spec has ``key=None`` and names the
cell it waits for in ``after``.

:class:`CellStore` reads a finished cell back (when both files are readable) and writes one atomically (predictions
first, the ``.json`` last: its presence marks the cell as finished); a second, committed store (e.g.
``checkpoints/cells/<sweep>``) can supply cells the sweep folder lacks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aclecg import atomicio
from aclecg.evaluation.arms import ARM_KINDS, is_arm_name, is_trained, reference_arms
from aclecg.evaluation.config import EvalConfig, digest
from aclecg.evaluation.fractions import default_val_fold
from aclecg.evaluation.outputs import cell_readable

__all__ = [
    "Arm",
    "CellSpec",
    "CellStore",
    "EncoderInfo",
    "SweepPlan",
    "cell_id",
    "cell_spec",
    "plan_cells",
    "safe_name",
    "sweep_arms",
    "unique_labels",
]

LrChoices = Mapping[tuple[str, float], float]


@dataclass(frozen=True)
class EncoderInfo:
    """What a plan needs of a checkpoint (no weights): its arm label, weights key (sha256), method, path and the
    architecture (``encoder_config``, ``leads``) that the reference arms copy."""

    label: str
    key: str
    method: str | None = None
    path: str | None = None
    encoder_config: Mapping[str, Any] = field(default_factory=dict)
    leads: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepPlan:
    """A sweep's inputs. ``ref_config`` is the reference arms' encoder config (``EncoderConfig.to_dict()``);
    ``precision`` the device's precision tag (empty on a CPU); ``borrowed`` the learning rates chosen by another
    sweep (``--lr-from``), ``{(arm, fraction): lr}``."""

    label_set: str
    protocol: str
    classes: tuple[str, ...]
    fingerprint: str
    fractions: tuple[float, ...]
    seeds: tuple[int, ...]
    arm_kinds: tuple[str, ...]
    encoders: tuple[EncoderInfo, ...]
    ref_config: Mapping[str, Any]
    config: EvalConfig
    test_fold: int | None = None
    val_fold: int | None = None
    precision: str = ""
    borrowed: LrChoices = field(default_factory=dict)
    n_val: int | None = None  # validation records: the trained arms' validation cap enters keys only past it


@dataclass(frozen=True)
class Arm:
    """One arm of a sweep: ``name`` as results show it (e.g. ``acl_ecg:linear_probe``), its kind and checkpoint."""

    name: str
    kind: str
    encoder: EncoderInfo | None = None


@dataclass(frozen=True)
class CellSpec:
    """One (arm, fraction, seed) cell. ``key`` (and ``cell_id``) are ``None`` while the cell waits for the learning
    rate its first seed chooses; ``after`` is then ``(arm, fraction, first seed)``. ``continues`` is the id of the
    same search without ``lr_extend``, whose finished cell the extended search continues (:mod:`aclecg.lrsearch`)."""

    arm: Arm
    fraction: float
    seed: int
    lr_grid: tuple[float, ...]
    key: dict[str, Any] | None
    cell_id: str | None
    after: tuple[str, float, int] | None = None
    continues: str | None = None

    @property
    def trained(self) -> bool:
        return is_trained(self.arm.kind)

    @property
    def chooses_lr(self) -> bool:
        """Whether this cell searches a learning-rate grid whose choice later seeds reuse."""
        return self.trained and self.after is None and len(self.lr_grid) > 1


def unique_labels(encoders: Sequence[EncoderInfo]) -> list[EncoderInfo]:
    """The encoders with unique arm labels: a repeated label, or one that is an arm's name, gets its key's prefix."""
    seen: dict[str, int] = {}
    for e in encoders:
        seen[e.label] = seen.get(e.label, 0) + 1
    out = []
    for e in encoders:
        label = f"{e.label}-{e.key[:8]}" if seen[e.label] > 1 or is_arm_name(e.label) else e.label
        out.append(EncoderInfo(label, e.key, e.method, e.path, e.encoder_config, e.leads))
    return out


def sweep_arms(plan: SweepPlan) -> list[Arm]:
    """The arms in results order: every checkpoint's probe / fine-tune, then the reference arms."""
    per_checkpoint = [a.name for _, a in ARM_KINDS.items() if a.per_checkpoint and a.name in plan.arm_kinds]
    arms = [Arm(f"{e.label}:{kind}", kind, e) for e in plan.encoders for kind in per_checkpoint]
    arms += [Arm(a.name, a.name) for a in reference_arms() if a.name in plan.arm_kinds]
    return arms


def safe_name(name: str) -> str:
    """An arm name as it appears in file names (anything but letters, digits, ``_``, ``.``, ``-`` becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def cell_id(arm: str, fraction: float, seed: int, key: Mapping[str, Any]) -> str:
    """The name of a cell's files: readable arm, fraction and seed, then the key's digest."""
    return f"{safe_name(arm)}__f{fraction:g}__s{seed}__{digest(key)[:12]}"


def _key(plan: SweepPlan, arm: Arm, fraction: float, seed: int, settings: dict[str, Any]) -> dict[str, Any]:
    weights = arm.encoder.key if arm.encoder else f"{arm.kind}:{dict(plan.ref_config)}:{seed}"
    key: dict[str, Any] = {
        "arm": arm.name,
        "kind": arm.kind,
        "weights": weights,
        "fraction": fraction,
        "seed": seed,
        "label_set": plan.label_set,
        "protocol": plan.protocol,
        "data": plan.fingerprint,
        "classes": list(plan.classes),
        "settings": settings,
        "version": 2 if is_trained(arm.kind) else 1,
    }
    if plan.test_fold is not None:  # only then, so the keys of official-split cells stay as they were
        key["test_fold"] = int(plan.test_fold)
        if plan.val_fold is not None and plan.val_fold != default_val_fold(int(plan.test_fold)):
            key["val_fold"] = int(plan.val_fold)  # likewise: only a non-default validation fold enters the key
    if plan.precision:  # GPU results never mix with CPU float32 cells (whose keys stay as they were)
        key["precision"] = plan.precision
    return key


def cell_spec(plan: SweepPlan, arm: Arm, fraction: float, seed: int, chosen_lr: LrChoices | None = None) -> CellSpec:
    """The spec of one cell; a later seed of a ``first_seed`` trained arm is resolved once ``chosen_lr`` holds
    its first seed's rate (else its key is ``None``)."""
    cfg = plan.config
    settings = cfg.key_for(arm.kind, plan.n_val)
    lr_grid = tuple(cfg.lr_grid)
    after = None
    if is_trained(arm.kind) and (arm.name, fraction) in plan.borrowed:
        lr_grid = (float(plan.borrowed[(arm.name, fraction)]),)
        settings = {**settings, "lr": lr_grid[0], "lr_chosen_in": "another sweep's validation"}
    elif is_trained(arm.kind) and cfg.lr_selection == "first_seed" and seed != plan.seeds[0]:
        # the learning rate validated best for the first seed of this arm and fraction is reused
        after = (arm.name, fraction, plan.seeds[0])
        lr = (chosen_lr or {}).get((arm.name, fraction))
        if lr is None:
            return CellSpec(arm, fraction, seed, lr_grid, None, None, after)
        lr_grid = (float(lr),)
        settings = {**settings, "lr": lr_grid[0], "lr_chosen_on_seed": plan.seeds[0]}
    continues = None
    if "lr" in settings:  # one given rate: nothing is searched, so lr_extend cannot change the cell
        settings.pop("lr_extend", None)
    elif "lr_extend" in settings and len(lr_grid) > 1:
        plain = _key(plan, arm, fraction, seed, {k: v for k, v in settings.items() if k != "lr_extend"})
        continues = cell_id(arm.name, fraction, seed, plain)
    key = _key(plan, arm, fraction, seed, settings)
    return CellSpec(arm, fraction, seed, lr_grid, key, cell_id(arm.name, fraction, seed, key), after, continues)


def plan_cells(plan: SweepPlan, chosen_lr: LrChoices | None = None) -> list[CellSpec]:
    """Every cell of the sweep in run order: by fraction, then seed (so a first seed precedes the seeds that reuse
    its learning rate), then arm."""
    arms = sweep_arms(plan)
    return [cell_spec(plan, arm, f, s, chosen_lr) for f in plan.fractions for s in plan.seeds for arm in arms]


class CellStore:
    """The finished cells of one sweep folder (``<folder>/cells``), with an optional committed store to restore
    cells from (``restore_from``) and, with ``save_trained``, to copy finished trained cells into."""

    def __init__(self, folder: str | Path, restore_from: str | Path | None = None, save_trained: bool = False):
        self.folder = Path(folder) / "cells"
        self.committed = Path(restore_from) if restore_from is not None else None
        self.save_trained = save_trained and self.committed is not None

    def paths(self, cell: str) -> tuple[Path, Path]:
        return self.folder / f"{cell}.json", self.folder / f"{cell}.npz"

    def has(self, cell: str) -> bool:
        """Whether both files exist here or in the committed store (readability is checked by :meth:`read`)."""
        if all(p.is_file() for p in self.paths(cell)):
            return True
        return self.committed is not None and all((self.committed / p.name).is_file() for p in self.paths(cell))

    def read(self, cell: str) -> dict[str, Any] | None:
        """The finished cell's record, or ``None`` (missing or unreadable: to be computed)."""
        meta, pred = self.paths(cell)
        if not (meta.is_file() and pred.is_file()) and self.committed is not None:
            self._restore(cell)
        if meta.is_file() and pred.is_file() and cell_readable(meta, pred):
            record: dict[str, Any] = json.loads(meta.read_text())
            return record
        return None

    def _restore(self, cell: str) -> None:
        assert self.committed is not None
        meta, pred = self.paths(cell)
        src_meta, src_pred = self.committed / meta.name, self.committed / pred.name
        if src_meta.is_file() and src_pred.is_file():
            atomicio.write_bytes(pred, src_pred.read_bytes())
            atomicio.write_bytes(meta, src_meta.read_bytes())

    def prior(self, spec: CellSpec) -> dict[str, Any] | None:
        """The finished cell whose search ``spec`` continues (``spec.continues``): its id, details and the arrays
        that tie its predictions to their records; ``None`` when there is none (the search then starts afresh)."""
        cell = spec.continues
        record = self.read(cell) if cell is not None else None
        if cell is None or record is None:
            return None
        with np.load(self.paths(cell)[1], allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in ("y_score", "test_index", "train_index")}
        return {"cell": cell, "details": record["details"], **arrays}

    def write(self, cell: str, record: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Write a finished cell atomically: predictions, then its record (whose presence marks it finished)."""
        meta, pred = self.paths(cell)
        atomicio.write_npz(pred, **arrays)
        atomicio.write_json(meta, record)
        if self.save_trained and is_trained(record.get("arm_kind")):
            assert self.committed is not None
            self.committed.mkdir(parents=True, exist_ok=True)
            for path in (pred, meta):  # the same order: a copied record always has its predictions
                if not (self.committed / path.name).exists():
                    atomicio.write_bytes(self.committed / path.name, path.read_bytes())

    def listing(self) -> set[str]:
        """Ids of the cells whose two files are here or in the committed store (a quick look, no file opened)."""
        out: set[str] = set()
        for folder in (self.folder, self.committed):
            if folder is not None and folder.is_dir():
                names = {p.name for p in folder.iterdir()}
                out |= {n[:-5] for n in names if n.endswith(".json") and n[:-5] + ".npz" in names}
        return out


def chosen_lr_of(record: Mapping[str, Any]) -> float:
    """The learning rate a finished trained cell used (its first seed's choice, for the later seeds)."""
    return float(record["details"]["lr"])
