"""A study's encoders: one pretraining task per method x test fold, and the optional embedding task.

The pretraining configuration of method ``NAME`` for test fold ``K`` is its config file (``checkpoints/NAME/
config.json``) with the study's epochs, pretraining data and overrides, and, for a rotation (``K`` not the official
fold), fold ``K`` left out of pretraining with the study's seed for ``K`` (``exclude_splits=[]``,
``exclude_folds=[K]``, ``seed=...``: what ``checkpoints/pretrain_all.sh`` did). Its task key is that configuration
with the pretraining data replaced by their fingerprints.

A committed encoder (``checkpoints/NAME/`` for the official split, ``checkpoints/rotations/testK/NAME/`` for a
rotation) is reused when its ``config.sha256`` names this task's configuration and the study changes nothing else
(the official split: the config file's sha256; a rotation: :func:`effective_sha256` of its own effective
configuration, folds and seed included, so an encoder of another rotation is never taken for it) and its recorded
provenance, where it has one, left the test fold out;
otherwise the run (``runs/ship-NAME`` or ``runs/rotK-NAME``) is trained or resumed, and a rotation's encoder (or an
official one whose store is empty) is committed with its loss curve (``metrics.jsonl``). Either way the encoder
lands in ``runs/eval-testK/NAME/encoder.pt`` (so the sweeps' arm labels are the method names) with ``task.json``
beside it, written last: the task is finished when that file holds its key. A repeat (``NAME@seedS``, the study's
``[pretrain.repeats]``) is the same configuration with its own seed, run and stored like a rotation's
(``runs/rotK-NAME@seedS``, ``checkpoints/rotations/testK/NAME@seedS/``) on every fold, the official one included.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aclecg import atomicio
from aclecg.errors import AclEcgError, ConfigError
from aclecg.evaluation.config import digest
from aclecg.studyplan.spec import MethodSpec, Study

__all__ = [
    "EmbedJob",
    "PretrainJob",
    "effective_sha256",
    "embed_job",
    "pretrain_job",
    "run_embed",
    "run_pretrain",
    "store_digest",
]

MARKER = "task.json"


class TrainingStopped(AclEcgError):
    """A pretraining task's run stopped before its last step (its checkpoint is kept for the next run)."""


@dataclass(frozen=True)
class PretrainJob:
    """Everything a worker needs to produce one encoder (picklable)."""

    name: str
    fold: int
    config: Mapping[str, Any]  # the effective PretrainConfig as a dict
    run_dir: Path
    eval_dir: Path
    store_dir: Path | None  # the committed encoder's folder (reused, or written for a rotation)
    config_file: Path
    standard: bool  # the study changes nothing but the rotation's folds and seed: a committed encoder counts
    official: bool  # the official split's first run (committed with its model card by `study ship`)
    key: Mapping[str, Any]

    @property
    def digest(self) -> str:
        return digest(self.key)

    @property
    def encoder(self) -> Path:
        return self.eval_dir / "encoder.pt"


@dataclass(frozen=True)
class EmbedJob:
    """Embed every record of the downstream data with one encoder, into the embeddings cache."""

    encoder: Path
    data: Any  # a prepared folder, bundled:NAME, or an in-memory dataset
    cache_dir: Path | None
    device: str
    batch_size: int
    marker: Path
    key: Mapping[str, Any]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def effective_sha256(config: Mapping[str, Any]) -> str:
    """The sha256 of a resolved pretraining configuration (canonical JSON): what a rotation's store records.

    Taken over the configuration's :func:`~aclecg.training.config.legacy_form`, so the digests recorded for stores
    made from files written before 2026-12-05 still match."""
    from aclecg.training.config import legacy_form

    return digest(legacy_form(dict(config)))  # the same canonical JSON digest as every cell key


def store_digest(job: PretrainJob) -> str:
    """What ``config.sha256`` beside a committed encoder must hold for it to stand for ``job``."""
    return _sha256(job.config_file) if job.official else effective_sha256(job.config)


def _effective(study: Study, method: MethodSpec, fold: int, extra: bool) -> dict[str, Any]:
    """The method's pretraining config for a test fold; ``extra=False``: without the study's own changes."""
    from aclecg.training.config import PretrainConfig

    try:
        base = PretrainConfig.from_file(method.config).to_dict()
    except ConfigError as exc:
        raise ConfigError(f"{study.path}: pretrain method {method.name}: {exc}") from None
    cfg = dict(base)
    if extra:
        if study.epochs is not None:
            cfg["epochs"] = study.epochs
        if study.pretrain_data is not None:
            cfg["data"] = list(study.pretrain_data)
        cfg.update(method.overrides)
    if fold != study.official_fold:
        cfg.update(exclude_splits=[], exclude_folds=[fold], seed=study.pretrain_seeds[fold])
    elif extra:
        cfg["seed"] = study.pretrain_seeds[fold]
    if method.seed is not None:  # a repeat: the run of its own seed
        cfg["seed"] = method.seed
    try:
        return PretrainConfig.from_dict(cfg).to_dict()
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{study.path}: pretrain method {method.name} (test fold {fold}): {exc}") from None


def pretrain_job(study: Study, method: MethodSpec, fold: int, fingerprint_of: Callable[[str], str]) -> PretrainJob:
    """The pretraining task of ``method`` for test fold ``fold`` (see the module docstring)."""
    if not method.config.is_file():
        raise ConfigError(f"{study.path}: pretrain method {method.name}: config file {method.config} does not exist")
    config = _effective(study, method, fold, extra=True)
    standard = config == _effective(study, method, fold, extra=False)
    official = fold == study.official_fold and method.seed is None  # a repeat is stored like a rotation's run
    run_dir = study.runs / (f"ship-{method.name}" if official else f"rot{fold}-{method.name}")
    store = (
        study.checkpoints / method.name if official else study.checkpoints / "rotations" / f"test{fold}" / method.name
    )
    key = {
        "task": "pretrain",
        "method": method.name,
        "test_fold": fold,
        "config": {**config, "data": [fingerprint_of(str(d)) for d in config["data"]]},
    }
    return PretrainJob(
        name=method.name,
        fold=fold,
        config=config,
        run_dir=run_dir,
        eval_dir=study.runs / f"eval-test{fold}" / method.name,
        store_dir=store,
        config_file=method.config,
        standard=standard,
        official=official,
        key=key,
    )


def read_marker(path: Path) -> dict[str, Any] | None:
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return out if isinstance(out, dict) else None


def pretrain_done(job: PretrainJob) -> bool:
    marker = read_marker(job.eval_dir / MARKER)
    return job.encoder.is_file() and marker is not None and marker.get("digest") == job.digest


def committed_store(job: PretrainJob) -> Path | None:
    """The committed encoder folder when it may stand for this task's run (the rule of results_all.sh)."""
    store = job.store_dir
    if not job.standard or store is None or not (store / "encoder.pt").is_file():
        return None
    try:
        recorded = (store / "config.sha256").read_text().split()[0]
    except (OSError, IndexError):
        return None
    if recorded != store_digest(job):
        return None
    from aclecg.checkpoint import check_excluded_fold

    check_excluded_fold(store / "encoder.pt", job.fold)  # refuses an encoder that records it saw this fold
    return store


def _copy_encoder(src: Path, dest: Path) -> None:
    for name in ("encoder.pt.sha256", "encoder.pt"):  # the checksum first: a reader never sees weights without it
        if (src / name).is_file():
            atomicio.write_bytes(dest / name, (src / name).read_bytes())


def _commits(job: PretrainJob) -> bool:
    """Whether a trained run's encoder goes to the committed store: a rotation's always, an official one only into
    an empty store (a shipped encoder is replaced by ``study ship``, with its model card)."""
    store = job.store_dir
    if not job.standard or store is None:
        return False
    return not job.official or not (store / "encoder.pt").is_file()


def _copy_curve(src: Path, dest: Path) -> None:
    """The run's loss curve beside a committed encoder (the Pretraining page and the model cards read it)."""
    if (src / "metrics.jsonl").is_file():
        atomicio.write_bytes(dest / "metrics.jsonl", (src / "metrics.jsonl").read_bytes())


def _train(job: PretrainJob, progress: bool) -> None:
    """Train or resume the run in ``job.run_dir`` (a finished run of the same configuration is kept)."""
    from aclecg.training import pretrain
    from aclecg.training.config import PretrainConfig

    config = PretrainConfig.from_dict(dict(job.config))
    stored = job.run_dir / "config.json"
    if stored.is_file():
        previous = PretrainConfig.from_file(stored).to_dict()
        if previous != config.to_dict():
            raise ConfigError(
                f"{job.run_dir} holds a run of another configuration than the study's {job.name} (test fold "
                f"{job.fold}); move it away to train the study's"
            )
        if (job.run_dir / "encoder.pt").is_file():
            return
    pretrain(config, job.run_dir, resume=stored.is_file(), progress=progress)
    if not (job.run_dir / "encoder.pt").is_file():  # stopped (a signal, a cancel) and saved to resume from
        raise TrainingStopped(
            f"{job.name} (test fold {job.fold}) stopped before its last step; its checkpoint is kept in "
            f"{job.run_dir} and running the study again resumes it from there"
        )


def run_pretrain(job: PretrainJob, progress: bool = False) -> dict[str, Any]:
    """Produce the task's encoder in ``job.eval_dir`` (reused, resumed or trained) and mark the task finished."""
    started = time.perf_counter()
    store = None if (job.run_dir / "encoder.pt").is_file() else committed_store(job)
    if store is not None:
        source, origin = store, "committed"
    else:
        _train(job, progress)
        source, origin = job.run_dir, "run"
        if _commits(job) and job.store_dir is not None:  # _commits says the store exists; mypy cannot see it
            _copy_encoder(job.run_dir, job.store_dir)
            _copy_curve(job.run_dir, job.store_dir)
            atomicio.write_text(job.store_dir / "config.sha256", store_digest(job) + "\n")
    _copy_encoder(source, job.eval_dir)
    seconds = round(time.perf_counter() - started, 2)
    marker = {"digest": job.digest, "key": job.key, "source": str(source), "origin": origin, "seconds": seconds}
    atomicio.write_json(job.eval_dir / MARKER, marker)
    return {"origin": origin, "seconds": seconds, "sha256": _sha256(job.encoder)}


def embed_job(pre: PretrainJob, data: Any, fingerprint: str, study: Study, device: str, precision: str) -> EmbedJob:
    """The embedding task of one encoder on the downstream data (its marker sits beside the encoder)."""
    cfg = study.evaluation
    key = {"task": "embed", "encoder": pre.digest, "data": fingerprint, "precision": precision}
    marker = pre.eval_dir / f"embedded-{digest(key)[:12]}.json"
    return EmbedJob(pre.encoder, data, None, device, cfg.embed_batch_size, marker, key)


def embed_done(job: EmbedJob, encoder_sha: str | None) -> bool:
    marker = read_marker(job.marker)
    return marker is not None and encoder_sha is not None and marker.get("sha256") == encoder_sha


def run_embed(job: EmbedJob, open_data: Callable[[Any], Any]) -> dict[str, Any]:
    """Compute (or find) the encoder's embeddings of the downstream data in the embeddings cache."""
    from aclecg.evaluation.embeddings import cached_embeddings
    from aclecg.evaluation.sources import load_source

    started = time.perf_counter()
    src = load_source(job.encoder, device="cpu")
    cached_embeddings(src, open_data(job.data), job.cache_dir, job.batch_size, job.device)
    seconds = round(time.perf_counter() - started, 2)
    atomicio.write_json(job.marker, {"key": job.key, "sha256": src.key, "seconds": seconds})
    return {"seconds": seconds}
