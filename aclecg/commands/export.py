"""``python -m aclecg export``: a checkpoint's encoder as an ONNX or TorchScript file, its contract inside."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  # the default encoder as ONNX (needs: pip install onnx onnxscript; onnxruntime to verify the file)
  python -m aclecg export --checkpoint checkpoints/acl_ecg/encoder.pt --format onnx --out acl_ecg.onnx

  # as TorchScript (torch.jit.load runs it without aclecg)
  python -m aclecg export --checkpoint runs/acl-small/encoder.pt --format torchscript --out acl_small.pt

The file maps signals (N, leads, samples) float32 to embeddings (N, E) float32, the batch size dynamic. Its
metadata (ONNX metadata_props; TorchScript _extra_files) holds the preprocessing contract: sampling rate, window,
band-pass, normalisation, units, lead order and preprocessing version. See docs/interop.md.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from aclecg.constraints import EXPORT_FORMATS as FORMATS

    p = sub.add_parser(
        "export",
        help="write a checkpoint's encoder as ONNX or TorchScript, with its preprocessing contract",
        description="Export the encoder of a checkpoint (input (N, leads, samples) float32 -> embeddings) as an "
        "ONNX or TorchScript file carrying the preprocessing contract in its metadata. With onnxruntime "
        "installed, the ONNX file is run once and compared with PyTorch.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint file (encoder.pt, best.pt, ...)")
    p.add_argument("--format", required=True, choices=FORMATS, help="onnx or torchscript")
    p.add_argument("--out", required=True, help="file to write (replaced atomically)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np
    import torch

    from aclecg.checkpoint import load_encoder
    from aclecg.export import EmbeddingModule, export_encoder, read_contract

    written = export_encoder(args.checkpoint, args.format, args.out)
    contract = read_contract(written["path"])
    print(
        f"wrote {written['path']} ({args.format}): signals (N, {len(contract.leads)}, {contract.n_samples}) "
        f"float32 -> embedding (N, {written['embedding_dim']})"
    )
    print(f"contract: {contract.describe()}")
    x = np.random.default_rng(0).standard_normal((2, len(contract.leads), contract.n_samples)).astype(np.float32)
    encoder, _ = load_encoder(args.checkpoint)
    with torch.no_grad():
        expected = EmbeddingModule(encoder).eval()(torch.from_numpy(x)).numpy()
    if args.format == "onnx":
        try:
            import onnxruntime
        except ImportError:
            print("not verified: onnxruntime is not installed")
            return 0
        session = onnxruntime.InferenceSession(str(written["path"]), providers=["CPUExecutionProvider"])
        got = session.run(None, {"signals": x})[0]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load is deprecated; still the reader
            loaded = torch.jit.load(str(written["path"]), map_location="cpu")
        got = loaded(torch.from_numpy(x)).detach().numpy()
    print(f"verified against PyTorch: max |difference| {float(np.abs(got - expected).max()):.2e}")
    return 0
