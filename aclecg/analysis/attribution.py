"""Region attribution by occlusion: how much each anatomical lead region (and each lead) carries a class score.

For one record, a frozen encoder and a linear probe on its embeddings, every region of a :class:`~aclecg.leads.
RegionMap` (and every single lead) is occluded in turn over the whole window, the occluded copies are embedded
in one batched forward pass, and the probe scores them. The *drop* of a class score is ``score(original) -
score(occluded)``: positive when the hidden leads supported the class. Occlusion uses the fill semantics of the
Physio-AUG cardiac-cycle mask (:class:`aclecg.augment.CardiacCycleMask`): ``"zero"`` sets the leads to 0,
``"median"`` to each lead's own median over the record (the lower median, as ``torch.median``).

Occlusion answers "what does this model lose without these leads", not "where is the disease": leads are
correlated (neighbouring precordial leads see the same wavefront) and four limb leads are linear combinations
of I and II (III = II - I, aVF = (II + III) / 2), so a model can recover an occluded limb lead from the others.
``docs/evaluation.md`` discusses what the territory check below can and cannot show.

:func:`territory_match` scores attribution against anatomy: for myocardial-infarction records whose PTB-XL
statements give one territory (inferior: IMI, ILMI, IPMI, IPLMI; anterior/septal: AMI, ASMI, ALMI), how often
the region with the largest drop of the MI score lies in that territory, with a bootstrap CI and two chance
levels (a uniformly random region; the model's own region choices with the territories shuffled).

>>> import numpy as np
>>> drops = np.array([[0.1, 0.0, 0.0, 0.5], [0.4, 0.1, 0.0, 0.0]])   # 2 records x 4 regions
>>> res = territory_match(drops, ("septal", "anterior", "lateral", "inferior"), ["inferior", "anterior"])
>>> res.match, res.n_records
(1.0, 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from aclecg.errors import ConfigError, DataError
from aclecg.leads import RegionMap, canonical_lead, default_region_map

__all__ = [
    "FILLS",
    "TERRITORIES",
    "TERRITORY_CODES",
    "Attribution",
    "LinearProbe",
    "TerritoryResult",
    "attribute",
    "occlude",
    "occlusion_units",
    "territory_match",
    "territory_of",
]

FILLS = ("zero", "median")
#: PTB-XL SCP statements of each MI territory, and the regions of the default map that belong to it.
TERRITORY_CODES: dict[str, frozenset[str]] = {
    "inferior": frozenset({"IMI", "ILMI", "IPMI", "IPLMI"}),
    "anterior": frozenset({"AMI", "ASMI", "ALMI"}),
}
TERRITORIES: dict[str, tuple[str, ...]] = {"inferior": ("inferior",), "anterior": ("septal", "anterior")}
#: Records scored per forward pass (each brings 1 + regions + leads windows).
RECORDS_PER_BATCH = 8


@dataclass(frozen=True)
class LinearProbe:
    """A fitted linear probe: ``scores = link((emb - mean) / std @ weight + bias)`` (sigmoid or softmax)."""

    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    classes: tuple[str, ...]
    protocol: str = "multilabel"

    def __post_init__(self) -> None:
        e, c = np.shape(self.weight)
        if np.shape(self.bias) != (c,) or np.shape(self.mean) != (e,) or np.shape(self.std) != (e,):
            raise DataError(
                f"probe arrays disagree: weight {np.shape(self.weight)}, bias {np.shape(self.bias)}, "
                f"mean {np.shape(self.mean)}, std {np.shape(self.std)}"
            )
        if len(self.classes) != c:
            raise DataError(f"probe has {c} outputs but {len(self.classes)} class names")
        if self.protocol not in ("multilabel", "singlelabel"):
            raise ConfigError(f"probe protocol must be 'multilabel' or 'singlelabel'; got {self.protocol!r}")

    @classmethod
    def from_result(cls, result: Any, classes: Sequence[str], protocol: str) -> LinearProbe:
        """The model a :func:`aclecg.evaluation.linear_probe` call selected."""
        if result.weight is None:
            raise DataError("the probe result carries no fitted weights")
        return cls(result.weight, result.bias, result.mean, result.std, tuple(classes), protocol)

    def scores(self, embeddings: Any) -> np.ndarray:
        """Class scores ``(N, C)`` of embeddings ``(N, E)``."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise DataError(f"embeddings must be (N, {len(self.mean)}); got shape {x.shape}")
        logits = torch.from_numpy(((x - self.mean) / self.std) @ self.weight + self.bias)
        out = torch.sigmoid(logits) if self.protocol == "multilabel" else torch.softmax(logits, dim=1)
        return out.numpy()

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "weight": self.weight,
            "bias": self.bias,
            "mean": self.mean,
            "std": self.std,
            "classes": np.asarray(self.classes),
            "protocol": np.asarray(self.protocol),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> LinearProbe:
        return cls(
            np.asarray(arrays["weight"], np.float64),
            np.asarray(arrays["bias"], np.float64),
            np.asarray(arrays["mean"], np.float64),
            np.asarray(arrays["std"], np.float64),
            tuple(str(c) for c in np.asarray(arrays["classes"]).tolist()),
            str(np.asarray(arrays["protocol"])),
        )


def occlusion_units(
    leads: Sequence[str], region_map: RegionMap | None = None, with_leads: bool = True
) -> tuple[list[str], list[str], np.ndarray]:
    """``(names, kinds, masks (P, L) bool)``: one row per region present in ``leads``, then one per lead."""
    rmap = region_map or default_region_map()
    names, kinds, rows = [], [], []
    for region, idx in rmap.indices(leads).items():
        row = np.zeros(len(leads), dtype=bool)
        row[idx] = True
        names.append(region)
        kinds.append("region")
        rows.append(row)
    if with_leads:
        for i, lead in enumerate(leads):
            row = np.zeros(len(leads), dtype=bool)
            row[i] = True
            names.append(canonical_lead(lead))
            kinds.append("lead")
            rows.append(row)
    return names, kinds, np.stack(rows) if rows else np.zeros((0, len(leads)), dtype=bool)


def occlude(x: torch.Tensor, masks: torch.Tensor, fill: str = "zero") -> torch.Tensor:
    """Copies ``(N, P, L, T)`` of windows ``x (N, L, T)``, copy ``p`` with leads ``masks[p]`` filled."""
    if fill not in FILLS:
        raise ConfigError(f"fill must be one of {', '.join(FILLS)}; got {fill!r}")
    if x.ndim != 3 or masks.ndim != 2 or masks.shape[1] != x.shape[1]:
        raise DataError(f"windows must be (N, L, T) and masks (P, L); got {tuple(x.shape)} and {tuple(masks.shape)}")
    value = torch.zeros_like(x) if fill == "zero" else torch.median(x, dim=-1, keepdim=True).values.expand_as(x)
    m = masks.to(torch.bool)[None, :, :, None]
    return torch.where(m, value[:, None], x[:, None])


@dataclass(frozen=True)
class Attribution:
    """Scores of the original windows ``base (N, C)`` and of every occluded copy ``occluded (N, P, C)``."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    classes: tuple[str, ...]
    base: np.ndarray
    occluded: np.ndarray
    fill: str

    @property
    def drops(self) -> np.ndarray:
        """``base - occluded`` per record, unit and class ``(N, P, C)``: positive when the unit supported it."""
        return self.base[:, None, :] - self.occluded

    def region_drops(self, class_name: str) -> tuple[tuple[str, ...], np.ndarray]:
        """``(region names, drops (N, R))`` of one class."""
        if class_name not in self.classes:
            raise DataError(f"class {class_name!r} is not one of the probe's classes {list(self.classes)}")
        cols = [i for i, k in enumerate(self.kinds) if k == "region"]
        c = self.classes.index(class_name)
        return tuple(self.names[i] for i in cols), self.drops[:, cols, c]

    def table(self, record: int = 0) -> pd.DataFrame:
        """One record's attribution as a long table: unit, kind, class, score, occluded_score, drop."""
        n_units, n_classes = len(self.names), len(self.classes)
        return pd.DataFrame(
            {
                "unit": np.repeat(self.names, n_classes),
                "kind": np.repeat(self.kinds, n_classes),
                "class": np.tile(self.classes, n_units),
                "score": np.tile(self.base[record], n_units),
                "occluded_score": self.occluded[record].reshape(-1),
                "drop": self.drops[record].reshape(-1),
            }
        )


@torch.no_grad()
def attribute(
    encoder: torch.nn.Module,
    probe: LinearProbe,
    windows: Any,
    leads: Sequence[str],
    region_map: RegionMap | None = None,
    fill: str = "zero",
    with_leads: bool = True,
) -> Attribution:
    """Occlusion attribution of windows ``(N, len(leads), T)`` already in the encoder's lead order.

    Each record's original window and its ``P`` occluded copies go through the encoder in one batch (a few
    records per forward pass), so the cost is ``N (1 + P)`` windows of inference.
    """
    x = torch.as_tensor(np.asarray(windows, dtype=np.float32))
    if x.ndim != 3 or x.shape[1] != len(leads):
        raise DataError(f"windows must be (N, {len(leads)}, T) in the encoder's lead order; got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise DataError("windows hold NaN or inf values")
    names, kinds, masks = occlusion_units(leads, region_map, with_leads)
    if not names:
        raise DataError(f"no region of the map has a lead among {list(leads)}")
    mask_t = torch.from_numpy(masks)
    was_training = encoder.training
    encoder.eval()
    base, occluded = [], []
    try:
        for start in range(0, x.shape[0], RECORDS_PER_BATCH):
            chunk = x[start : start + RECORDS_PER_BATCH]
            copies = occlude(chunk, mask_t, fill)  # (n, P, L, T)
            batch = torch.cat([chunk[:, None], copies], dim=1).reshape(-1, *chunk.shape[1:])
            emb = encoder(batch).embedding.float().numpy()
            scores = probe.scores(emb).reshape(chunk.shape[0], 1 + len(names), -1)
            base.append(scores[:, 0])
            occluded.append(scores[:, 1:])
    finally:
        encoder.train(was_training)
    return Attribution(tuple(names), tuple(kinds), probe.classes, np.concatenate(base), np.concatenate(occluded), fill)


def territory_of(codes: str | Sequence[str]) -> str | None:
    """The MI territory of a record's PTB-XL statements: ``"inferior"``, ``"anterior"`` or ``None``.

    ``None`` when the record has no MI statement of either territory, or statements of both.
    """
    from aclecg.data.labels import split_labels

    found = set(split_labels(codes)) if isinstance(codes, str) else {str(c) for c in codes}
    hits = [name for name, members in TERRITORY_CODES.items() if found & members]
    return hits[0] if len(hits) == 1 else None


@dataclass(frozen=True)
class TerritoryResult:
    """How often the region of largest drop lies in the record's MI territory, with its chance levels.

    ``chance_uniform``: a region drawn uniformly at random. ``chance_permuted``: the model's own choices with
    the territories shuffled across records (mean over permutations), with the one-sided permutation
    ``p_permutation`` of matching at least as often.
    """

    match: float
    ci_low: float
    ci_high: float
    chance_uniform: float
    chance_permuted: float
    p_permutation: float
    n_records: int
    n_inferior: int
    n_anterior: int
    top_regions: dict[str, int]


def territory_match(
    drops: Any,
    region_names: Sequence[str],
    territories: Sequence[str],
    territory_regions: Mapping[str, Sequence[str]] = TERRITORIES,
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
) -> TerritoryResult:
    """Score MI-score drops ``(N, R)`` (regions in ``region_names`` order) against each record's territory."""
    d = np.asarray(drops, dtype=np.float64)
    terr = [str(t) for t in territories]
    if d.ndim != 2 or d.shape[1] != len(region_names) or d.shape[0] != len(terr):
        raise DataError(f"drops must be (records={len(terr)}, regions={len(region_names)}); got shape {d.shape}")
    if d.shape[0] == 0:
        raise DataError("territory match needs at least one record")
    unknown = sorted(set(terr) - set(territory_regions))
    if unknown:
        raise DataError(f"unknown territories {unknown}; expected {sorted(territory_regions)}")
    names = [str(r) for r in region_names]
    missing = sorted({r for regs in territory_regions.values() for r in regs} - set(names))
    if missing:
        raise DataError(f"territory regions {missing} are not among the attributed regions {names}")
    # allowed[t, r]: region r lies in territory t
    kinds = sorted(territory_regions)
    allowed = np.array([[r in territory_regions[t] for r in names] for t in kinds])
    t_idx = np.array([kinds.index(t) for t in terr])
    top = d.argmax(axis=1)
    hits = allowed[t_idx, top].astype(np.float64)
    rng = np.random.default_rng(seed)
    boots = hits[rng.integers(0, len(hits), size=(n_boot, len(hits)))].mean(axis=1)
    low, high = np.percentile(boots, [2.5, 97.5])
    perms = np.array([allowed[rng.permutation(t_idx), top].mean() for _ in range(n_perm)])
    observed = float(hits.mean())
    return TerritoryResult(
        match=observed,
        ci_low=float(low),
        ci_high=float(high),
        chance_uniform=float(allowed[t_idx].mean()),
        chance_permuted=float(perms.mean()),
        p_permutation=float((1 + (perms >= observed - 1e-12).sum()) / (1 + n_perm)),
        n_records=len(hits),
        n_inferior=int(sum(t == "inferior" for t in terr)),
        n_anterior=int(sum(t == "anterior" for t in terr)),
        top_regions={names[i]: int((top == i).sum()) for i in range(len(names))},
    )
