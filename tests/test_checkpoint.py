"""Checkpoint files: atomic, checksummed, weights-only."""

from __future__ import annotations

import pickle

import pytest
import torch

from aclecg import atomicio
from aclecg import checkpoint as ckpt
from aclecg.errors import CheckpointError
from aclecg.models import ECGEncoder, EncoderConfig

TINY = {"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8}


def _payload(encoder: ECGEncoder) -> dict:
    return {
        "format_version": ckpt.FORMAT_VERSION,
        "method": "simclr",
        "hparams": {"temperature": 0.1},
        "encoder_config": encoder.config.to_dict(),
        "leads": list(encoder.config.leads),
        "fs": 100,
        "n_samples": 1000,
        "data_fingerprint": "abc",
        "encoder": encoder.state_dict(),
    }


def test_round_trip_restores_encoder_and_meta(tmp_path):
    torch.manual_seed(0)
    encoder = ECGEncoder(EncoderConfig.from_dict(TINY))
    path = tmp_path / "enc.pt"
    digest = ckpt.save_checkpoint(path, _payload(encoder))
    assert (tmp_path / "enc.pt.sha256").read_text().split()[0] == digest == ckpt.sha256_file(path)
    loaded, meta = ckpt.load_encoder(path)
    assert meta["method"] == "simclr" and meta["fs"] == 100 and meta["checkpoint_sha256"] == digest
    x = torch.randn(2, 12, 200)
    encoder.eval()
    torch.testing.assert_close(loaded(x).embedding, encoder(x).embedding)
    assert not loaded.training


def test_corrupted_file_is_detected(tmp_path):
    encoder = ECGEncoder(EncoderConfig.from_dict(TINY))
    path = tmp_path / "enc.pt"
    ckpt.save_checkpoint(path, _payload(encoder))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        ckpt.load_checkpoint(path)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"encoder_config": {}, "encoder": {}, "x": _Evil()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="cannot load"):
        ckpt.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="weights-only"):
        ckpt.save_checkpoint(tmp_path / "never.pt", {"encoder_config": {}, "encoder": {}, "x": _Evil()})
    assert not (tmp_path / "never.pt").exists()


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not an aclecg checkpoint"):
        ckpt.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    atomicio.write_bytes(path, b"old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(atomicio.os, "replace", boom)
    with pytest.raises(OSError):
        atomicio.write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temporary file left behind


def _flip_a_weight(path, payload_key="encoder"):
    """Change one weight inside a saved checkpoint and save it again *without* its integrity being updated."""
    payload = torch.load(path, weights_only=True)
    name = next(iter(payload[payload_key]))
    payload[payload_key][name].view(-1)[0] += 1.0
    torch.save(payload, path)


def test_flipped_weight_without_sidecar_is_refused(tmp_path):
    encoder = ECGEncoder(EncoderConfig.from_dict(TINY))
    path = tmp_path / "enc.pt"
    ckpt.save_checkpoint(path, _payload(encoder))
    (tmp_path / "enc.pt.sha256").unlink()
    ckpt.load_checkpoint(path)  # intact: the embedded digest alone verifies it
    _flip_a_weight(path)
    with pytest.raises(CheckpointError, match="content does not match"):
        ckpt.load_checkpoint(path)


def test_a_regenerated_sidecar_does_not_hide_corruption(tmp_path):
    encoder = ECGEncoder(EncoderConfig.from_dict(TINY))
    path = tmp_path / "enc.pt"
    ckpt.save_checkpoint(path, _payload(encoder))
    _flip_a_weight(path)
    (tmp_path / "enc.pt.sha256").write_text(f"{ckpt.sha256_file(path)}  enc.pt\n")
    with pytest.raises(CheckpointError, match="content does not match"):
        ckpt.load_encoder(path)


def test_unverifiable_checkpoint_is_refused(tmp_path):
    encoder = ECGEncoder(EncoderConfig.from_dict(TINY))
    path = tmp_path / "old.pt"
    torch.save(_payload(encoder), path)  # no digest inside, no sidecar (as a stripped pre-2026-12 file)
    with pytest.raises(CheckpointError, match="cannot be verified"):
        ckpt.load_checkpoint(path)
    (tmp_path / "old.pt.sha256").write_text(f"{ckpt.sha256_file(path)}  old.pt\n")
    assert ckpt.load_checkpoint(path)["method"] == "simclr"  # the shipped checkpoints' case: sidecar only


def test_content_digest_sees_every_kind_of_value():
    base = {"a": torch.zeros(3), "b": [1, 2.5, "x"], "c": {"d": None}}
    d0 = ckpt.content_digest(base)
    assert ckpt.content_digest({**base, "integrity": {"sha256": "zzz"}}) == d0
    for changed in (
        {**base, "a": torch.zeros(3, dtype=torch.float64)},
        {**base, "a": torch.zeros(1, 3)},
        {**base, "b": [1, 2.5, "y"]},
        {**base, "b": (1, 2.5, "x")},
        {**base, "c": {"d": 0}},
    ):
        assert ckpt.content_digest(changed) != d0


def test_list_checkpoints_shallow_skips_nested_rotation_encoders(tmp_path):
    """checkpoints/NAME/encoder.pt are the shipped ones; checkpoints/rotations/testK/NAME/ must not shadow them."""
    from aclecg.checkpoint import list_checkpoints

    for rel in ("acl_ecg/encoder.pt", "rotations/test9/acl_ecg/encoder.pt"):
        (tmp_path / rel).parent.mkdir(parents=True)
        (tmp_path / rel).write_bytes(b"x")
    assert list_checkpoints(tmp_path, recursive=False) == [tmp_path / "acl_ecg" / "encoder.pt"]
    assert len(list_checkpoints(tmp_path)) == 2
