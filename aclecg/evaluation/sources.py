"""Encoders to evaluate: a checkpoint's encoder or a seeded random initialisation, checked against the data.

An :class:`EncoderSource` carries the encoder, its metadata (leads, sampling rate, window length, method) and a
``key`` that identifies its weights for the embedding cache and the sweep cells' keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from aclecg import contract
from aclecg.contract import Contract
from aclecg.errors import CheckpointError
from aclecg.evaluation.config import digest
from aclecg.paths import registration_name

if TYPE_CHECKING:
    from aclecg.models import ECGEncoder

__all__ = [
    "EncoderSource",
    "check_compatible",
    "data_contract",
    "load_source",
    "made_for",
    "random_init_like",
    "random_init_source",
]


@dataclass
class EncoderSource:
    """An encoder to evaluate: from a checkpoint or a seeded random initialisation.

    ``key`` identifies its weights (the checkpoint's sha256, or a digest of config + seed) for caches.
    """

    label: str
    encoder: ECGEncoder
    meta: dict[str, Any]
    key: str
    path: str | None = None

    @property
    def leads(self) -> tuple[str, ...]:
        return tuple(self.meta["leads"])


def _checkpoint_label(path: Path) -> str:
    """A readable arm label: the run folder for ``encoder.pt``/``best.pt``/``last.pt``, else the file stem."""
    if path.stem in ("encoder", "best", "last", "final") and path.parent.name:
        parent = path.parent.parent.name if path.parent.name == "checkpoints" else path.parent.name
        return parent or path.stem
    return path.stem


def load_source(path: str | Path, device: str | torch.device = "cpu") -> EncoderSource:
    """Load a checkpoint's encoder with :func:`aclecg.checkpoint.load_encoder` (checksum verified), or the encoder a
    registration file names (``NAME.encoder.json``, :mod:`aclecg.evaluation.custom`)."""
    from aclecg.checkpoint import load_encoder

    path = Path(path)
    if registration_name(path) is not None:
        from aclecg.evaluation.custom import load_registered_source

        return load_registered_source(path, device)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    encoder, meta = load_encoder(path, device=device)
    missing = [k for k in ("encoder_config", "leads", "fs", "n_samples") if meta.get(k) is None]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}: cannot check it against the data")
    sha = meta.get("checkpoint_sha256") or ""
    return EncoderSource(_checkpoint_label(path), encoder, dict(meta), str(sha), str(path))


def random_init_source(
    encoder_config: Mapping[str, Any] | str,
    seed: int,
    leads: Sequence[str],
    fs: float,
    n_samples: int,
    data_contract: Contract | None = None,
) -> EncoderSource:
    """A seeded randomly initialised encoder (``random_init`` arm); global RNG state is left untouched.

    It is made for the data it is evaluated on: ``data_contract`` (that data's contract) is its own, with its leads.
    """
    from aclecg.models import build_encoder, resolve_encoder_config

    cfg = resolve_encoder_config(encoder_config, leads=list(leads))
    encoder = build_encoder(cfg, seed=int(seed)).eval()
    meta = {
        "method": "random_init",
        "encoder_config": cfg.to_dict(),
        "leads": list(cfg.leads),
        "fs": fs,
        "n_samples": n_samples,
        "data_fingerprint": None,
        "checkpoint_sha256": None,
        "seed": int(seed),
        "contract": made_for(data_contract, cfg.leads),
    }
    key = "random_init-" + digest({"config": cfg.to_dict(), "seed": int(seed)})[:40]
    return EncoderSource("random_init", encoder, meta, key, None)


def random_init_like(sources: Sequence[EncoderSource], dataset: Any, seed: int) -> EncoderSource:
    """The ``random_init`` reference of an evaluation: the ACL-ECG checkpoint's architecture (else the first one's)."""
    if not sources:
        raise CheckpointError("random_init_like needs at least one checkpoint to copy the architecture of")
    own = [s for s in sources if s.meta.get("encoder_config")]  # a --encoder-factory module has no aclecg config
    if not own:
        leads = [str(x) for x in dataset.leads]
        return random_init_source("small", seed, leads, dataset.fs, dataset.n_samples, data_contract(dataset))
    ref = next((s for s in own if s.meta.get("method") == "acl_ecg"), own[0])
    return random_init_source(
        dict(ref.meta["encoder_config"]), seed, list(ref.leads), dataset.fs, dataset.n_samples, data_contract(dataset)
    )


def data_contract(dataset: Any) -> Contract | None:
    """The dataset's own contract (a prepared dataset's), or ``None`` (in-memory data: implied where needed)."""
    own = getattr(dataset, "contract", None)
    return own if isinstance(own, Contract) else None


def made_for(data: Contract | None, leads: Sequence[str]) -> dict[str, Any] | None:
    """The contract of an encoder built for data with contract ``data`` on ``leads`` (``None`` when unknown)."""
    return replace(data, leads=tuple(str(x) for x in leads)).to_dict() if data is not None else None


def contract_pair(meta: Mapping[str, Any], dataset: Any) -> tuple[Contract, Contract]:
    """The encoder's contract (recorded in ``meta``, else implied by its leads, rate and window) and the data's
    (its ``contract`` when it has one, else implied by its leads, rate and window)."""
    recorded = meta.get("contract")
    if recorded is not None:
        trained = recorded if isinstance(recorded, Contract) else Contract.from_dict(recorded, "encoder contract")
    else:
        trained = contract.implied(float(meta["fs"]), int(meta["n_samples"]), [str(x) for x in meta["leads"]])
    own = data_contract(dataset)
    if own is not None:
        data = own
    else:
        data = contract.implied(float(dataset.fs), int(dataset.n_samples), [str(x) for x in dataset.leads])
    return trained, data


def check_compatible(meta: Mapping[str, Any], dataset: Any, name: str = "checkpoint") -> list[int]:
    """Check an encoder against a prepared dataset; return the data's channel index of each encoder lead.

    The whole preprocessing contract is compared (:mod:`aclecg.contract`): the encoder's leads must all be in the
    dataset (it may use a subset, e.g. the 8 independent leads); the sampling rate, window length, band-pass,
    filter, normalisation and units must be equal. Otherwise one ``CheckpointError`` line names every difference
    with both values (a different preprocessing version alone is a warning).
    """
    trained, data = contract_pair(meta, dataset)
    contract.check(trained, data, str(name))
    data_leads = [str(x) for x in dataset.leads]
    ck_leads = [str(x) for x in meta["leads"]]
    missing = [lead for lead in ck_leads if lead not in data_leads]
    if missing:  # the contract names its leads; meta's are what the encoder's input is ordered by
        raise CheckpointError(
            f"{name} expects leads {ck_leads} but the prepared data has {data_leads} (missing {missing})"
        )
    return [data_leads.index(lead) for lead in ck_leads]
