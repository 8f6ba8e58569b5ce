"""Your own encoder in the study: any PyTorch module mapping ``(N, leads, samples)`` to embeddings ``(N, E)``.

It is named on the command line as ``MODULE:FACTORY`` (``--encoder-factory``; the factory is called with no
arguments and returns the module, weights loaded) together with a contract file (``--encoder-contract``, JSON or
TOML holding :class:`~aclecg.contract.Contract`'s fields) that says what windows it expects. It then enters the
linear-probe arm of sweeps, embeddings, maps and neighbours like a checkpoint, checked against the data the same way.

The factory is user code, imported and run because the user asked for it on the command line: nothing here is ever
reached from a browser-supplied string. To show such an encoder in the app, its operator registers it once from the
command line (``aclecg encoders add NAME --encoder-factory ... --encoder-contract ...``): that writes
``NAME.encoder.json`` (the factory and the contract) into :func:`aclecg.paths.encoders_root`, a folder the app only
reads, and every place that takes a checkpoint path (the pages' pickers, ``--checkpoint``) takes that file too.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import time
from pathlib import Path
from typing import Any

import tomllib
import torch
from torch import Tensor, nn

from aclecg.contract import Contract
from aclecg.errors import ConfigError
from aclecg.evaluation.sources import EncoderSource
from aclecg.models import EncoderOutput
from aclecg.paths import ENCODER_SUFFIX, registration_name

__all__ = [
    "FactoryEncoder",
    "load_contract_file",
    "load_factory_source",
    "load_registered_source",
    "register_encoder",
    "registration_file",
]

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: A registration is a few hundred bytes; anything far larger is not one.
MAX_REGISTRATION_BYTES = 64 * 1024


def load_contract_file(path: str | Path) -> Contract:
    """The contract in a JSON (``.json``) or TOML (``.toml``) file; one ``ConfigError`` line naming it otherwise."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"--encoder-contract {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--encoder-contract {path}: not valid {path.suffix.lstrip('.') or 'JSON'} ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("contract"), dict):
        data = data["contract"]  # a TOML [contract] table, or {"contract": {...}}
    return Contract.from_dict(data, f"--encoder-contract {path}")


class FactoryEncoder(nn.Module):
    """A user's module seen as an aclecg encoder: ``forward`` returns :class:`~aclecg.models.EncoderOutput` whose
    ``embedding`` is the module's output (``lead_features`` holds it as one 'lead': no per-lead features)."""

    def __init__(self, module: nn.Module, leads: tuple[str, ...], embedding_dim: int) -> None:
        super().__init__()
        self.module = module
        self.leads = leads
        self.embedding_dim = embedding_dim

    def forward(self, x: Tensor) -> EncoderOutput:
        out = self.module(x)
        emb = out if isinstance(out, Tensor) else out.embedding
        return EncoderOutput(emb[:, None, :], emb)


def _call_factory(spec: str) -> nn.Module:
    if not _SPEC.match(spec):
        raise ConfigError(f"--encoder-factory must be MODULE:FACTORY (e.g. mypkg.encoders:build), got {spec!r}")
    module_name, factory_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"--encoder-factory {spec}: cannot import {module_name} ({exc}); it must be importable: installed, or "
            f"in a folder on PYTHONPATH (e.g. PYTHONPATH=. when it lies in the working folder)"
        ) from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ConfigError(f"--encoder-factory {spec}: {module_name} has no callable {factory_name}")
    try:
        built = factory()
    except Exception as exc:  # the user's code: whatever it raises is reported in one line, not as a traceback
        raise ConfigError(f"--encoder-factory {spec}: {factory_name}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(built, nn.Module):
        raise ConfigError(f"--encoder-factory {spec}: {factory_name}() returned {type(built).__name__}, not a module")
    return built


def _probe_shape(module: nn.Module, contract: Contract, spec: str) -> int:
    """Run the module once on zeros ``(2, leads, samples)``; the embedding size, or a ``ConfigError`` naming what
    came out instead."""
    x = torch.zeros(2, len(contract.leads), contract.n_samples)
    try:
        with torch.no_grad():
            out = module(x)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise ConfigError(
            f"--encoder-factory {spec}: fails on input {tuple(x.shape)} ({type(exc).__name__}: {first})"
        ) from None
    out = out if isinstance(out, Tensor) else getattr(out, "embedding", out)
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != 2 or out.shape[1] < 1:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ConfigError(
            f"--encoder-factory {spec}: maps {tuple(x.shape)} to {shape}; expected embeddings (2, E) "
            "(one vector per window)"
        )
    if not out.dtype.is_floating_point or not bool(torch.isfinite(out).all()):
        raise ConfigError(f"--encoder-factory {spec}: its embeddings are not finite floating-point numbers")
    return int(out.shape[1])


def _weights_key(module: nn.Module, spec: str, contract: Contract) -> str:
    """A key that changes with the factory, the contract and every parameter and buffer (the embedding cache's)."""
    digest = hashlib.sha256(json.dumps([spec, contract.to_dict()], sort_keys=True).encode())
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return "factory-" + digest.hexdigest()[:40]


def load_factory_source(spec: str, contract_file: str | Path, device: str | torch.device = "cpu") -> EncoderSource:
    """Build ``MODULE:FACTORY``'s encoder (CLI only: this runs the user's code), check that it maps the contract's
    windows to ``(N, E)`` embeddings, and wrap it as an :class:`EncoderSource` checked against data like a
    checkpoint (its ``contract`` is the file's)."""
    contract = load_contract_file(contract_file)
    module = _call_factory(spec).eval()
    dim = _probe_shape(module, contract, spec)
    key = _weights_key(module, spec, contract)
    encoder = FactoryEncoder(module, contract.leads, dim).to(device).eval()
    meta: dict[str, Any] = {
        "method": spec,
        "encoder_config": {},
        "leads": list(contract.leads),
        "fs": contract.fs,
        "n_samples": contract.n_samples,
        "data_fingerprint": None,
        "checkpoint_sha256": None,
        "contract": contract.to_dict(),
        "factory": spec,
        "embedding_dim": dim,
    }
    label = spec.split(":")[1]
    return EncoderSource(label, encoder, meta, key, None)  # type: ignore[arg-type]  # any module, not ECGEncoder


def registration_file(name: str, root: str | Path) -> Path:
    """``root/NAME.encoder.json`` for a valid encoder name (a ``ConfigError`` line for any other name)."""
    if not _NAME.match(name):
        raise ConfigError(f"encoder name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with one")
    return Path(root) / f"{name}{ENCODER_SUFFIX}"


def register_encoder(name: str, spec: str, contract_file: str | Path, root: str | Path) -> Path:
    """Check ``spec`` once (it is built and run on zeros) and write ``root/NAME.encoder.json`` atomically."""
    from aclecg import atomicio

    path = registration_file(name, root)
    source = load_factory_source(spec, contract_file)
    record = {"factory": spec, "contract": source.meta["contract"], "embedding_dim": source.meta["embedding_dim"]}
    record["registered"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomicio.write_text(path, json.dumps(record, indent=1) + "\n")
    return path


def load_registered_source(path: str | Path, device: str | torch.device = "cpu") -> EncoderSource:
    """The encoder a registration file names, labelled by its name (one ``ConfigError`` line if the file is not one)."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size > MAX_REGISTRATION_BYTES:
            raise ConfigError(f"{path} is not a registered encoder (missing, not a file, or over 64 KiB)")
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable registered encoder ({exc})") from None
    spec = data.get("factory") if isinstance(data, dict) else None
    if not isinstance(spec, str):
        raise ConfigError(f"{path}: a registered encoder needs a 'factory' (MODULE:FACTORY)")
    source = load_factory_source(spec, path, device)
    source.label = registration_name(path) or path.stem
    source.path = str(path)
    return source
