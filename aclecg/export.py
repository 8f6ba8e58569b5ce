"""Encoders that travel: a checkpoint's encoder as an ONNX or TorchScript file, its preprocessing contract inside.

The exported graph maps ``signals`` ``(N, leads, samples)`` float32 (the leads in the contract's order, windows
preprocessed as the contract says) to ``embedding`` ``(N, E)`` float32, with a dynamic batch size. Its metadata
(ONNX ``metadata_props``; TorchScript ``_extra_files``) holds :data:`METADATA_KEYS`: the contract as JSON, the
leads, the sampling rate, the window, the method and the checkpoint's sha256, so a runtime without aclecg knows what
to feed it (docs/interop.md shows one).

>>> from aclecg.export import export_encoder, read_contract          # doctest: +SKIP
>>> export_encoder("checkpoints/acl_ecg/encoder.pt", "onnx", "acl_ecg.onnx")  # doctest: +SKIP
>>> read_contract("acl_ecg.onnx").fs                                  # doctest: +SKIP
100.0
"""

from __future__ import annotations

import io
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aclecg import atomicio
from aclecg.constraints import EXPORT_FORMATS
from aclecg.contract import Contract
from aclecg.errors import ConfigError, DataError

__all__ = ["CONTRACT_FILE", "FORMATS", "EmbeddingModule", "export_encoder", "export_metadata", "read_contract"]

#: The formats :func:`export_encoder` writes.
FORMATS: tuple[str, ...] = EXPORT_FORMATS
#: The contract's key in ONNX ``metadata_props`` and its file name among TorchScript's ``_extra_files``.
CONTRACT_KEY, CONTRACT_FILE = "aclecg.contract", "aclecg_contract.json"
#: Every metadata key an export carries (TorchScript: ``aclecg_<key>.json`` files hold the same values).
METADATA_KEYS = ("contract", "leads", "fs", "n_samples", "method", "checkpoint_sha256", "input", "output")
#: ONNX opset the exports target (onnxruntime 1.17 and later run it).
OPSET = 18


class EmbeddingModule(nn.Module):
    """An encoder seen from outside: ``forward(signals) -> embedding`` (an :class:`~aclecg.models.ECGEncoder`'s
    ``EncoderOutput.embedding``, or the tensor a plain module returns)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, signals: Tensor) -> Tensor:
        out = self.encoder(signals)
        return out if isinstance(out, Tensor) else out.embedding


def export_metadata(meta: dict[str, Any], contract: Contract, embedding_dim: int) -> dict[str, str]:
    """The metadata an export carries, as strings (``aclecg.<key>``)."""
    values = {
        "contract": json.dumps(contract.to_dict()),
        "leads": ",".join(contract.leads),
        "fs": f"{contract.fs:g}",
        "n_samples": str(contract.n_samples),
        "method": str(meta.get("method")),
        "checkpoint_sha256": str(meta.get("checkpoint_sha256")),
        "input": f"signals float32 (N, {len(contract.leads)}, {contract.n_samples})",
        "output": f"embedding float32 (N, {embedding_dim})",
    }
    return {f"aclecg.{key}": values[key] for key in METADATA_KEYS}


def _onnx_bytes(module: nn.Module, example: Tensor, metadata: dict[str, str]) -> bytes:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter needs it; say so before it fails deep inside)
    except ImportError as exc:
        raise ConfigError(
            f"ONNX export needs the onnx and onnxscript packages ({exc}); pip install onnx onnxscript"
        ) from None
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=["signals"],
            output_names=["embedding"],
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            verbose=False,
        )
    if program is None:  # pragma: no cover - only the legacy exporter returns None
        raise ConfigError("the ONNX exporter returned no program")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        program.save(path, external_data=False)
        model = onnx.load(str(path))
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = "aclecg encoder: signals (N, leads, samples) float32 -> embedding (N, E) float32"
    return model.SerializeToString()


def _torchscript_bytes(module: nn.Module, example: Tensor, metadata: dict[str, str]) -> bytes:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings: the trace is checked after export
        traced = torch.jit.trace(module, (example,), check_trace=False)
        files = {CONTRACT_FILE: metadata[f"aclecg.{'contract'}"]}
        files.update({f"{key.replace('.', '_')}.txt": value for key, value in metadata.items()})
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files=files)
    return buffer.getvalue()


def export_module(
    module: nn.Module, meta: dict[str, Any], contract: Contract, fmt: str, out: str | Path
) -> dict[str, Any]:
    """Export ``module`` (``(N, leads, samples) -> embedding``) as ``fmt`` to ``out`` (atomically); returns what was
    written: the path, the format, the embedding size and the metadata."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    wrapped = EmbeddingModule(module).eval()
    example = torch.zeros(2, len(contract.leads), contract.n_samples)
    with torch.no_grad():
        dim = int(wrapped(example).shape[-1])
    metadata = export_metadata(meta, contract, dim)
    data = (_onnx_bytes if fmt == "onnx" else _torchscript_bytes)(wrapped, example, metadata)
    out = Path(out)
    atomicio.write_bytes(out, data)
    return {"path": out, "format": fmt, "embedding_dim": dim, "metadata": metadata}


def export_encoder(checkpoint: str | Path, fmt: str, out: str | Path) -> dict[str, Any]:
    """Export the encoder of ``checkpoint`` (verified and loaded safely; a DDP or compiled model's prefixed state
    dict is unwrapped) as ``fmt`` (``onnx`` or ``torchscript``) to ``out``, its contract in the metadata."""
    from aclecg.checkpoint import load_encoder

    encoder, meta = load_encoder(checkpoint)
    contract = Contract.from_dict(meta["contract"], f"checkpoint {checkpoint}")
    return export_module(encoder, meta, contract, fmt, out)


def read_contract(path: str | Path) -> Contract:
    """The contract an exported file carries (``.onnx``: its metadata; otherwise a TorchScript archive)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such exported encoder")
    if path.suffix.lower() == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        text = props.get(CONTRACT_KEY)
    else:
        files: dict[str, Any] = {CONTRACT_FILE: ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load is deprecated; still the reader
            torch.jit.load(str(path), map_location="cpu", _extra_files=files)
        text = files[CONTRACT_FILE] or None
    if not text:
        raise DataError(f"{path}: carries no aclecg contract")
    return Contract.from_dict(json.loads(text), str(path))
