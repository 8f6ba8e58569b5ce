"""Checkpoint files: atomic, checksummed, weights-only."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from aclecg import atomicio
from aclecg import checkpoint as ckpt
from aclecg.errors import CheckpointError
from aclecg.models import ECGEncoder, EncoderConfig
from tests.helpers import e20

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
    weight = max(encoder.state_dict().values(), key=lambda t: t.numel())
    at = bytes(data).find(weight.numpy().tobytes())
    assert at > 0
    data[at + 3] ^= 0xFF  # a bit of a stored weight
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


# ------------------------------------------------------------------------- empty, unreadable, stale sidecars
def test_an_empty_or_unreadable_file_is_one_error_naming_it(tmp_path):
    """A 0-byte file used to raise IndexError (the first line of torch's empty message) on every path."""
    empty = tmp_path / "encoder.pt"
    empty.write_bytes(b"")
    for reader in (ckpt.load_checkpoint, ckpt.load_encoder, ckpt.provenance):
        with pytest.raises(CheckpointError, match=rf"{empty} is empty \(0 bytes\)"):
            reader(empty)
    (tmp_path / "encoder.pt.sha256").write_text(f"{ckpt.sha256_bytes(b'')}  encoder.pt\n")  # even "verified"
    with pytest.raises(CheckpointError, match="is empty"):
        ckpt.load_checkpoint(empty)
    folder = tmp_path / "folder.pt"
    folder.mkdir()
    with pytest.raises(CheckpointError, match=rf"{folder} is not a file"):
        ckpt.load_checkpoint(folder)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match=rf"cannot load checkpoint {garbage}: \w+"):
        ckpt.load_checkpoint(garbage)


@pytest.mark.parametrize(
    "command",
    [
        ["embed", "--data", "{data}"],
        ["umap", "--data", "{data}", "--out", "{tmp}/map.csv", "--cache-dir", "{tmp}/cache"],
        ["neighbours", "--data", "{data}", "--record", "1"],
        ["attribute", "--data", "{data}", "--record", "1", "--cache-dir", "{tmp}/cache"],
        ["sweep", "--data", "{data}", "--label-set", "superdiagnostic", "--out", "{tmp}/sweep", "--seeds", "1"],
    ],
    ids=lambda c: c[0],
)
def test_an_empty_checkpoint_is_one_line_and_exit_2_on_every_command(command, bundled_prepared, tmp_path, capsys):
    from aclecg.cli import main

    empty = tmp_path / "encoder.pt"
    empty.write_bytes(b"")
    argv = [a.format(data=bundled_prepared, tmp=tmp_path) for a in command] + ["--checkpoint", str(empty)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: checkpoint {empty} is empty (0 bytes): it was never completely written", err


def test_an_unreadable_file_is_one_error_naming_it(tmp_path, monkeypatch):
    path = tmp_path / "encoder.pt"
    path.write_bytes(b"x")

    def denied(p):  # root reads every file, so the refusal is simulated where the file is read
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr(ckpt, "sha256_file", denied)
    with pytest.raises(CheckpointError, match=rf"^cannot read checkpoint {path}: Permission denied$"):
        ckpt.load_checkpoint(path)


def test_an_exception_without_a_message_still_gives_a_line(tmp_path, monkeypatch):
    path = tmp_path / "enc.pt"
    ckpt.save_checkpoint(path, _payload(ECGEncoder(EncoderConfig.from_dict(TINY))))

    def empty_error(*args, **kwargs):
        raise RuntimeError("")

    monkeypatch.setattr(ckpt.torch, "load", empty_error)
    with pytest.raises(CheckpointError, match=rf"cannot load checkpoint {path}: RuntimeError$"):
        ckpt.load_checkpoint(path)


@pytest.mark.parametrize("sidecar", ["0" * 64 + "  enc.pt\n", "", "garbage"])
def test_a_damaged_sidecar_does_not_cost_an_intact_file(tmp_path, sidecar):
    """The embedded digest vouches for the content when only the sidecar is wrong; the file is not touched."""
    path = tmp_path / "enc.pt"
    ckpt.save_checkpoint(path, _payload(ECGEncoder(EncoderConfig.from_dict(TINY))))
    before = path.read_bytes()
    (tmp_path / "enc.pt.sha256").write_text(sidecar)
    with pytest.raises(CheckpointError, match="does not match enc.pt.sha256"):
        ckpt.verify_checkpoint(path)  # the file-level check alone still reports the mismatch
    assert ckpt.load_checkpoint(path)["method"] == "simclr"
    assert ckpt.load_encoder(path)[1]["checkpoint_sha256"] == ckpt.sha256_file(path)
    assert path.read_bytes() == before


def test_a_damaged_sidecar_over_damaged_content_is_still_refused(tmp_path):
    encoder = ECGEncoder(EncoderConfig.from_dict(TINY))
    path = tmp_path / "enc.pt"
    ckpt.save_checkpoint(path, _payload(encoder))
    _flip_a_weight(path)
    (tmp_path / "enc.pt.sha256").write_text("0" * 64)
    with pytest.raises(CheckpointError, match="content does not match"):
        ckpt.load_checkpoint(path)
    old = tmp_path / "old.pt"  # no embedded digest: the sidecar is the only check, and it must match
    torch.save(_payload(encoder), old)
    (tmp_path / "old.pt.sha256").write_text("0" * 64 + "  old.pt\n")
    with pytest.raises(CheckpointError, match="corrupted: sha256"):
        ckpt.load_checkpoint(old)
    truncated = tmp_path / "cut.pt"
    ckpt.save_checkpoint(truncated, _payload(encoder))
    truncated.write_bytes(truncated.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupted: sha256"):
        ckpt.load_checkpoint(truncated)


# ------------------------------------------------------------------------------------------------ provenance
SHIPPED_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = sorted(SHIPPED_ROOT.glob("**/encoder.pt"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.parent.relative_to(SHIPPED_ROOT)))
def test_the_shipped_checkpoints_load_and_their_provenance_fits_where_they_are(path):
    """Checkpoints trained before provenance was recorded read it as unknown (nothing is refused); the newer ones
    (rotation 6, the budget-sensitivity runs) record it, and a rotation's encoder left its own test fold out."""
    encoder, meta = ckpt.load_encoder(path)
    prov = meta["provenance"]
    assert set(prov) == set(ckpt.PROVENANCE_KEYS)
    assert prov["data_fingerprint"] == meta["data_fingerprint"] and prov["steps"] == meta["step"] > 0
    where = path.parent.relative_to(SHIPPED_ROOT).parts
    # checkpoints/[STUDY/]rotations/testK/NAME is rotation K's; any other folder is the official split's
    fold = int(where[where.index("rotations") + 1].removeprefix("test")) if "rotations" in where else 10
    if prov["seed"] is None:  # older: unknown, the study cannot tell
        assert prov["exclude_folds"] is None and prov["exclude_splits"] is None
        assert ckpt.excluded_fold_problem(prov, 9) is None
    else:
        assert ckpt.excluded_fold_problem(prov, fold) is None  # its own test fold was left out
        assert ckpt.excluded_fold_problem(prov, 9) is not None  # fold 9 validates: it was pretrained on it


def test_provenance_of_a_shipped_checkpoint_by_path():
    path = e20.CHECKPOINTS / "acl_ecg" / "encoder.pt"  # written before checkpoints recorded their seed
    assert ckpt.provenance(path) == ckpt.load_encoder(path)[1]["provenance"]
    assert ckpt.check_excluded_fold(path, 9)["seed"] is None


def _with_provenance(tmp_path, name, **prov) -> Path:
    path = tmp_path / name
    payload = _payload(ECGEncoder(EncoderConfig.from_dict(TINY)))
    payload["provenance"] = {"data_fingerprint": "abc", "seed": 1, "steps": 8, "epochs": 2.0, **prov}
    ckpt.save_checkpoint(path, payload)
    return path


def test_check_excluded_fold_refuses_an_encoder_that_saw_the_test_fold(tmp_path):
    from aclecg.errors import DataError

    official = _with_provenance(tmp_path, "official.pt", exclude_splits=["test"], exclude_folds=[])
    assert ckpt.provenance(official)["seed"] == 1 and ckpt.provenance(official)["epochs"] == 2.0
    ckpt.check_excluded_fold(official, None)
    ckpt.check_excluded_fold(official, 10)
    with pytest.raises(DataError, match=rf"{official} cannot be tested on fold 9: it was pretrained on fold 9"):
        ckpt.check_excluded_fold(official, 9)
    rotated = _with_provenance(tmp_path, "rotated.pt", exclude_splits=[], exclude_folds=[9])
    ckpt.check_excluded_fold(rotated, 9)
    for fold in (8, 10, None):
        with pytest.raises(DataError, match="exclude_folds"):
            ckpt.check_excluded_fold(rotated, fold)
