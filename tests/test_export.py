"""``aclecg export``: the encoder as ONNX (run with onnxruntime) and TorchScript, the contract in its metadata, for the
default encoder and a DDP-trained one; and the docs/interop.md example, run as written.

The ONNX tests are slow (torch's exporter takes 1-4 s per model); the TorchScript ones are fast."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from aclecg.checkpoint import load_checkpoint, load_encoder, save_checkpoint
from aclecg.cli import main
from aclecg.contract import Contract, implied
from aclecg.export import EmbeddingModule, export_encoder, read_contract
from aclecg.leads import LEADS

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "checkpoints" / "acl_ecg" / "encoder.pt"
TINY = {"stem_width": 4, "widths": [8, 8], "blocks": [1, 1], "kernel_size": 3, "feature_dim": 4, "stem": "strided"}
FS, N = 50.0, 250


@pytest.fixture(scope="module")
def ddp_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Checkpoints of an encoder trained one step under DistributedDataParallel (one gloo process): as the engine
    saves it (the wrapped method's encoder, sync batch norm) and as a DDP-wrapped model's state dict (``module.``)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from aclecg.models import build_encoder
    from aclecg.parallel import convert_sync_batchnorm

    root = tmp_path_factory.mktemp("ddp")
    dist.init_process_group("gloo", init_method=f"file://{root / 'pg'}", rank=0, world_size=1)
    try:
        encoder = convert_sync_batchnorm(build_encoder({**TINY, "leads": list(LEADS)}, seed=3), False)
        model = DistributedDataParallel(encoder)
        optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
        model.train()
        loss = model(torch.randn(8, 12, N)).embedding.pow(2).mean()
        loss.backward()
        optimiser.step()
        states = {"engine": model.module.state_dict(), "wrapped": model.state_dict()}
    finally:
        dist.destroy_process_group()
    assert all(k.startswith("module.") for k in states["wrapped"])
    out = {}
    for name, state in states.items():
        payload = {
            "format_version": 1,
            "method": "toy_ddp",
            "hparams": {},
            "encoder_config": build_encoder({**TINY, "leads": list(LEADS)}).config.to_dict(),
            "leads": list(LEADS),
            "fs": FS,
            "n_samples": N,
            "data_fingerprint": "x",
            "encoder": {k: v.detach().clone() for k, v in state.items()},
            "contract": implied(FS, N).to_dict(),
        }
        out[name] = root / name / "encoder.pt"
        out[name].parent.mkdir()
        save_checkpoint(out[name], payload)
    return out


def _reference(checkpoint: Path, x: np.ndarray) -> np.ndarray:
    encoder, _ = load_encoder(checkpoint)
    with torch.no_grad():
        return EmbeddingModule(encoder).eval()(torch.from_numpy(x)).numpy()


def _signals(contract: Contract, n: int = 3) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, len(contract.leads), contract.n_samples)).astype(np.float32)


def test_ddp_checkpoints_load_and_export_as_torchscript_with_the_contract(ddp_checkpoints, tmp_path):
    engine, _ = load_encoder(ddp_checkpoints["engine"])
    wrapped, _ = load_encoder(ddp_checkpoints["wrapped"])  # module.-prefixed keys are unwrapped
    for key, value in engine.state_dict().items():
        assert torch.equal(value, wrapped.state_dict()[key]), key
    out = tmp_path / "enc.ts"
    written = export_encoder(ddp_checkpoints["wrapped"], "torchscript", out)
    assert written["embedding_dim"] == 12 * TINY["feature_dim"]
    assert read_contract(out) == implied(FS, N)
    files = {"aclecg_contract.json": "", "aclecg_leads.txt": ""}
    loaded = torch.jit.load(str(out), _extra_files=files)
    files = {k: v.decode() if isinstance(v, bytes) else v for k, v in files.items()}
    assert json.loads(files["aclecg_contract.json"])["band_hz"] == [0.5, 22.5] and files[
        "aclecg_leads.txt"
    ] == ",".join(LEADS)
    x = _signals(implied(FS, N), n=5)  # another batch size than the trace's
    got = loaded(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, _reference(ddp_checkpoints["engine"], x), atol=1e-4)


def test_export_command_writes_verifies_and_prints_the_contract(ddp_checkpoints, tmp_path, capsys):
    out = tmp_path / "enc.ts"
    args = ["export", "--checkpoint", str(ddp_checkpoints["engine"]), "--format", "torchscript", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"contract: 50 Hz, {N}-sample (5 s) windows of 12 leads" in printed and "0.5-22.5 Hz band-passed" in printed
    assert float(re.search(r"max \|difference\| (\S+)", printed).group(1)) < 1e-4
    assert main(["export", "--checkpoint", str(tmp_path / "none.pt"), "--format", "onnx", "--out", str(out)]) == 2
    assert "none.pt does not exist" in capsys.readouterr().err


@pytest.mark.slow  # tracing the 12-lead 1000-sample encoder takes 1.5-3 s on a shared CPU
def test_default_encoder_exports_as_torchscript_like_pytorch(tmp_path):
    out = tmp_path / "acl.ts"
    export_encoder(DEFAULT, "torchscript", out)
    assert read_contract(out) == implied(100, 1000, LEADS)  # the shipped checkpoint's implied contract
    x = _signals(read_contract(out), n=2)
    got = torch.jit.load(str(out))(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, _reference(DEFAULT, x), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["default", "engine", "wrapped"])
def test_onnx_export_runs_in_onnxruntime_like_pytorch(which, ddp_checkpoints, tmp_path):
    import onnxruntime

    checkpoint = DEFAULT if which == "default" else ddp_checkpoints[which]
    out = tmp_path / "enc.onnx"
    export_encoder(checkpoint, "onnx", out)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    contract = Contract.from_dict(json.loads(meta["aclecg.contract"]))
    assert (
        contract
        == read_contract(out)
        == Contract.from_dict(load_checkpoint(checkpoint).get("contract") or implied(100, 1000).to_dict())
    )
    assert meta["aclecg.leads"] == ",".join(LEADS) and meta["aclecg.n_samples"] == str(contract.n_samples)
    for n in (1, 4):  # the batch size is dynamic
        x = _signals(contract, n)
        got = session.run(None, {"signals": x})[0]
        np.testing.assert_allclose(got, _reference(checkpoint, x), atol=1e-4)


def _doc_example() -> str:
    text = (REPO / "docs" / "interop.md").read_text()
    block = text.split("<!-- example:start -->", 1)[1].split("<!-- example:end -->", 1)[0]
    code = block.split("```python", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 25  # a short example
    return code


@pytest.mark.slow
def test_the_interop_doc_example_runs_and_matches_pytorch(tmp_path, monkeypatch, capsys):
    code = _doc_example()
    imports = re.findall(r"^(?:from|import) (\S+)", code, flags=re.M)
    assert [m for m in imports if m.startswith("aclecg")] == ["aclecg.data.preprocess"]
    model = tmp_path / "acl_ecg.onnx"
    export_encoder(DEFAULT, "onnx", model)
    assert 'MODEL = "acl_ecg.onnx"' in code
    monkeypatch.chdir(REPO)  # RECORD is a path in the repository
    namespace: dict = {}
    exec(
        compile(code.replace('MODEL = "acl_ecg.onnx"', f"MODEL = {str(model)!r}"), "docs/interop.md", "exec"), namespace
    )
    windows, embeddings = namespace["windows"], namespace["embeddings"]
    assert windows.shape == (1, 12, 1000) and embeddings.shape == (1, 768)
    assert capsys.readouterr().out.strip() == "(1, 768)"
    np.testing.assert_allclose(embeddings, _reference(DEFAULT, windows), atol=1e-4)


def test_the_interop_doc_example_is_there_and_short():
    code = _doc_example()
    compile(code, "docs/interop.md", "exec")
    assert "aclecg.contract" in code and "custom_metadata_map" in code
