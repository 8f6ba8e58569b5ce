"""Checkpoints: atomic writes, checksums, safe loading, and loading an encoder without guessing.

A checkpoint is a ``torch.save`` of plain containers (dicts, lists, tuples) of tensors, numbers and strings, so it
always loads with ``torch.load(..., weights_only=True)``: nothing in it can run code.

Integrity is checked on every load, twice where possible:

* the payload carries ``integrity``: a SHA-256 over its own content (every key, value, tensor dtype, shape and
  byte), recomputed on load. A flipped bit in a weight, or a sidecar regenerated over a damaged file, is caught;
* beside the file, ``<file>.sha256`` holds the file's checksum.

A file whose checksum disagrees with its sidecar loads only if its embedded digest vouches for its content (a
damaged or stale sidecar must not cost an intact checkpoint); a file with neither check (not written by aclecg, or
written before the embedded digest existed and stripped of its sidecar) is refused: unverified weights are never
loaded. An empty, unreadable or truncated file is one :class:`~aclecg.errors.CheckpointError` naming it.

Every checkpoint pretraining writes carries its provenance (data fingerprint, excluded splits and folds, seed,
steps and epochs run): :func:`provenance` reads it, as ``None`` fields for checkpoints written before it existed,
and :func:`check_excluded_fold` refuses an encoder that saw the fold it would be tested on.

>>> from aclecg.checkpoint import load_encoder            # doctest: +SKIP
>>> encoder, meta = load_encoder("checkpoints/acl_ecg/encoder.pt")  # doctest: +SKIP
>>> meta["method"], meta["fs"], meta["leads"][:3]          # doctest: +SKIP
('acl_ecg', 100, ['I', 'II', 'III'])
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from aclecg import atomicio, contract
from aclecg.errors import CheckpointError, ConfigError, DataError

if TYPE_CHECKING:
    from aclecg.models import ECGEncoder

FORMAT_VERSION = 1

#: Keys that describe what a checkpoint contains; evaluation and the app read these.
META_KEYS = (
    "format_version",
    "method",
    "hparams",
    "encoder_config",
    "leads",
    "fs",
    "n_samples",
    "data_fingerprint",
    "augmentation",
    "epoch",
    "step",
    "contract",
)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


INTEGRITY_ALGORITHM = "sha256-content-v1"


def _feed(digest: hashlib._Hash, value: Any) -> None:
    """Feed a canonical, type-tagged encoding of ``value`` (nested containers of tensors and scalars)."""
    if torch.is_tensor(value):
        t = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{t.dtype}{tuple(value.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"S{type(value).__name__}:{value!r};".encode())


def content_digest(payload: dict[str, Any]) -> str:
    """SHA-256 of a payload's content, leaving out its own ``integrity`` and the loader's ``checkpoint_sha256``."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k not in ("integrity", "checkpoint_sha256")})
    return digest.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> str:
    """Atomically save ``payload`` and its ``.sha256`` sidecar; returns the checksum.

    The payload must be loadable with ``weights_only=True``; this is checked before anything is written, so a
    checkpoint that could not be loaded safely is never produced.
    """
    payload = {**payload, "integrity": {"algorithm": INTEGRITY_ALGORITHM, "sha256": content_digest(payload)}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # a programming error: something unsafe slipped into the payload
        raise CheckpointError(f"refusing to write {path}: payload is not weights-only loadable ({exc})") from exc
    digest = sha256_bytes(data)
    path = Path(path)
    # The sidecar goes first: a crash between the two writes leaves a mismatch, which reads as "corrupted"
    # rather than as a valid file with a stale checksum.
    atomicio.write_bytes(path.with_name(path.name + ".sha256"), f"{digest}  {path.name}\n".encode())
    atomicio.write_bytes(path, data)
    return digest


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name (torch raises empty ones)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _file_digest(path: Path) -> str:
    """The file's sha256; a missing, empty or unreadable file is one :class:`CheckpointError` naming it."""
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    try:
        if path.stat().st_size == 0:
            raise CheckpointError(f"checkpoint {path} is empty (0 bytes): it was never completely written")
        return sha256_file(path)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None


def sidecar_digest(path: str | Path) -> str | None:
    """The checksum ``<file>.sha256`` records (``""`` when empty or unreadable), ``None`` when there is none."""
    path = Path(path)
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        return None
    try:
        words = sidecar.read_text(errors="replace").split()
    except OSError:
        return ""
    return words[0] if words else ""


def verify_checkpoint(path: str | Path) -> str:
    """Return the file's checksum; raise ``CheckpointError`` if it is missing, empty, unreadable or disagrees
    with its sidecar (:func:`load_checkpoint` then still accepts a file whose embedded digest vouches for it)."""
    path = Path(path)
    digest = _file_digest(path)
    expected = sidecar_digest(path)
    if expected is not None and expected != digest:
        raise _sidecar_mismatch(path, digest, expected)
    return digest


def _sidecar_mismatch(path: Path, digest: str, expected: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is corrupted: sha256 {digest[:12]}… does not match {path.name}.sha256 ({expected[:12]}…)"
    )


def _embedded_digest_ok(payload: dict[str, Any], path: Path) -> bool:
    """True if the payload carries a digest that matches its content, False if it carries none; raises if its
    digest disagrees or is of an unknown kind."""
    integrity = payload.get("integrity")
    if integrity is None:
        return False
    if isinstance(integrity, dict) and integrity.get("algorithm") == INTEGRITY_ALGORITHM:
        if content_digest(payload) != integrity.get("sha256"):
            raise CheckpointError(f"checkpoint {path} is corrupted: its content does not match the digest it carries")
        return True
    raise CheckpointError(f"checkpoint {path} carries an unknown integrity record {integrity!r}")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``) after checking its integrity; never without a check.

    The embedded digest is checked whenever the file carries one; the sidecar must match unless the embedded
    digest vouches for the content (then the sidecar, not the file, is what is damaged or stale).
    """
    path = Path(path)
    digest = _file_digest(path)
    expected = sidecar_digest(path)
    sidecar_ok = expected is not None and expected == digest
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        if expected is not None and not sidecar_ok:
            raise _sidecar_mismatch(path, digest, expected) from None
        raise CheckpointError(f"cannot load checkpoint {path}: {first_line(exc)}") from None
    if not isinstance(payload, dict) or "encoder_config" not in payload or "encoder" not in payload:
        raise CheckpointError(f"{path} is not an aclecg checkpoint (no encoder_config/encoder entries)")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {payload['format_version']}; this aclecg reads "
            f"up to {FORMAT_VERSION}: upgrade aclecg"
        )
    if not _embedded_digest_ok(payload, path):
        if expected is None:
            raise CheckpointError(
                f"checkpoint {path} cannot be verified: it carries no digest and has no "
                f"{path.name}.sha256 beside it; refusing to load unverified weights"
            )
        if not sidecar_ok:
            raise _sidecar_mismatch(path, digest, expected)
    payload["checkpoint_sha256"] = digest
    return payload


def contract_of(payload: dict[str, Any], where: str = "checkpoint") -> contract.Contract | None:
    """The preprocessing contract a checkpoint records; one written before it existed reads as the contract its
    rate, window and leads imply (the current pipeline's; said once per file), ``None`` when it lacks even those."""
    fallback = None
    if all(payload.get(k) is not None for k in ("fs", "n_samples", "leads")):
        try:
            fallback = contract.implied(payload["fs"], payload["n_samples"], payload["leads"])
        except (TypeError, ValueError, ConfigError) as exc:
            raise CheckpointError(f"{where}: bad fs/n_samples/leads ({exc})") from None
    recorded = payload.get("contract")
    if recorded is None and fallback is None:
        return None
    key = str(payload.get("checkpoint_sha256") or where)
    try:
        return contract.of_record(recorded, fallback, where, key) if fallback else contract.Contract.from_dict(recorded)
    except ConfigError as exc:
        raise CheckpointError(f"{where}: {exc}") from None


def checkpoint_meta(payload: dict[str, Any], where: str = "checkpoint") -> dict[str, Any]:
    """The descriptive part of a loaded checkpoint (no tensors); ``contract`` is the recorded or implied one."""
    meta = {key: payload.get(key) for key in META_KEYS}
    meta["checkpoint_sha256"] = payload.get("checkpoint_sha256")
    meta["provenance"] = provenance_of(payload)
    found = contract_of(payload, where)
    meta["contract"] = found.to_dict() if found is not None else None
    return meta


#: What :func:`provenance` reports; a field a checkpoint does not record reads ``None``.
PROVENANCE_KEYS = (
    "data_fingerprint",
    "data",
    "exclude_splits",
    "exclude_folds",
    "seed",
    "steps",
    "epochs",
    "n_records",
)


def provenance_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The provenance of a loaded checkpoint: its ``provenance`` record, else what older files hold elsewhere
    (the top-level data fingerprint, step and epoch; a step checkpoint's stored configuration), else ``None``."""
    recorded = payload.get("provenance")
    recorded = dict(recorded) if isinstance(recorded, dict) else {}
    config: dict[str, Any] = {}
    if isinstance(payload.get("config"), str):
        try:
            loaded = json.loads(payload["config"])
            config = loaded if isinstance(loaded, dict) else {}
        except json.JSONDecodeError:
            config = {}
    fallback = {
        "data_fingerprint": payload.get("data_fingerprint"),
        "data": config.get("data"),
        "exclude_splits": config.get("exclude_splits"),
        "exclude_folds": config.get("exclude_folds"),
        "seed": config.get("seed"),
        "steps": payload.get("step"),
        "epochs": payload.get("epoch"),
        "n_records": None,
    }
    return {key: recorded[key] if recorded.get(key) is not None else fallback[key] for key in PROVENANCE_KEYS}


def provenance(path: str | Path) -> dict[str, Any]:
    """The provenance of the checkpoint at ``path`` (verified and loaded safely): data fingerprint, the datasets,
    the excluded splits and folds, the seed, the steps and epochs run and the number of training records.
    Checkpoints written before this record existed read as ``None`` for what they do not hold."""
    return provenance_of(load_checkpoint(path))


#: The fold of the official split's test records (PTB-XL's strat_fold 10; the generated folds follow it).
OFFICIAL_TEST_FOLD = 10


def excluded_fold_problem(prov: dict[str, Any], fold: int | None) -> str | None:
    """Why an encoder with provenance ``prov`` must not be tested on ``fold`` (``None``: the data's own test
    split), or ``None`` when it was kept out of pretraining or the provenance does not say."""
    splits, folds = prov.get("exclude_splits"), prov.get("exclude_folds")
    if splits is None and folds is None:
        return None
    splits, folds = list(splits or []), [int(f) for f in folds or []]
    target = OFFICIAL_TEST_FOLD if fold is None else int(fold)
    if target in folds or ("test" in splits and target == OFFICIAL_TEST_FOLD):
        return None
    return (
        f"it was pretrained on fold {target} (it excluded splits {splits} and folds {folds}), "
        f"so fold {target} is not unseen; pretrain with --set exclude_folds=[{target}] for this test fold"
    )


def check_excluded_fold(path: str | Path, fold: int | None) -> dict[str, Any]:
    """Raise :class:`DataError` if the checkpoint at ``path`` records that it was pretrained on ``fold`` (the
    test fold about to be scored; ``None`` or 10 for the official split, whose test split is fold 10). Unknown
    provenance (older checkpoints) passes. Returns the provenance."""
    prov = provenance(path)
    problem = excluded_fold_problem(prov, fold)
    if problem:
        raise DataError(f"checkpoint {path} cannot be tested on fold {fold or OFFICIAL_TEST_FOLD}: {problem}")
    return prov


#: Key prefixes wrappers add to a state dict: DistributedDataParallel/DataParallel, ``torch.compile``.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def unwrapped_state(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` without the prefix a DDP-wrapped (``module.``) or compiled (``_orig_mod.``) model's state dict puts
    before every key, repeatedly (a compiled DDP model has both); other state dicts are returned as they are."""
    while state:
        prefix = next((p for p in WRAPPER_PREFIXES if all(str(k).startswith(p) for k in state)), None)
        if prefix is None:
            break
        state = {str(k)[len(prefix) :]: v for k, v in state.items()}
    return state


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> tuple[ECGEncoder, dict[str, Any]]:
    """Build the online encoder stored in a checkpoint and load its weights; returns ``(encoder, meta)``.

    The encoder is returned in eval mode. ``meta`` holds method, encoder_config, leads, fs, n_samples,
    data_fingerprint and checkpoint_sha256.
    """
    from aclecg.models import ECGEncoder, EncoderConfig  # local import: models depend on nothing here

    payload = load_checkpoint(path)
    try:
        config = EncoderConfig.from_dict(payload["encoder_config"])
        encoder = ECGEncoder(config)
        encoder.load_state_dict(unwrapped_state(payload["encoder"]))
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: encoder weights do not match its configuration ({exc})") from exc
    encoder.to(device).eval()
    return encoder, checkpoint_meta(payload, f"checkpoint {path}")


def list_checkpoints(root: str | Path, recursive: bool = True) -> list[Path]:
    """Every exported encoder under ``root``, newest first: at any depth, or only ``root/*/encoder.pt``."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in (root.rglob("encoder.pt") if recursive else root.glob("*/encoder.pt")) if p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


#: The shipped checkpoint offered first (the app's default pick).
DEFAULT_CHECKPOINT = "acl_ecg"


def discover_checkpoints(shipped: str | Path, runs: str | Path, encoders: str | Path | None = None) -> dict[str, Path]:
    """Every encoder a user can pick: ``"<name> (shipped)"`` and ``"<run> (run)"`` -> ``encoder.pt``, and
    ``"<name> (yours)"`` -> ``encoders/NAME.encoder.json`` for encoders registered with ``aclecg encoders add``.

    Shipped ones are ``shipped/NAME/encoder.pt`` (not the rotation encoders deeper down), by name with
    :data:`DEFAULT_CHECKPOINT` first; then finished runs' exported encoders at any depth, newest first. A run's
    intermediate training checkpoints (``<run>/checkpoints/``) are not encoders and are left out.
    """
    out: dict[str, Path] = {}
    found = list_checkpoints(shipped, recursive=False)
    found.sort(key=lambda p: (p.parent.name != DEFAULT_CHECKPOINT, p.parent.name))
    for path in found:
        out[f"{path.parent.name} (shipped)"] = path
    for path in list_checkpoints(runs, recursive=True):
        if path.parent.name != "checkpoints":
            out.setdefault(f"{path.parent.name} (run)", path)
    if encoders is not None:
        from aclecg.paths import registered_encoders

        for name, path in registered_encoders(encoders).items():
            out.setdefault(f"{name} (yours)", path)
    return out
