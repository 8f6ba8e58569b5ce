"""Prepare in one pass: the signals are written once (disk and memory are the output's size, not twice it), the
header is a valid NPY header, and the command line uses the available cores by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aclecg.cli import main
from aclecg.data import prepare_dataset
from tests.helpers import hostile
from tests.test_cli_resources import _mount_tmpfs, _unmount


def _challenge_input(tmp_path: Path, n: int) -> Path:
    root = tmp_path / "challenge"
    for i in range(1, n + 1):
        hostile.challenge_record(root, f"A{i:04d}", f"A{i:04d}")
    return root


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_the_signals_file_is_a_valid_npy_with_every_window(tmp_path):
    root = _challenge_input(tmp_path, 4)
    prepare_dataset(root, tmp_path / "o", "challenge", progress=False)
    signals = np.load(tmp_path / "o" / "signals.npy", mmap_mode="r")
    rows = sum(1 for _ in open(tmp_path / "o" / "records.csv")) - 1
    assert signals.dtype == np.dtype("<f4") and signals.shape == (rows, 12, 1000) and rows >= 4
    assert np.isfinite(signals).all() and float(np.abs(signals).max()) > 0
    header = (tmp_path / "o" / "signals.npy").read_bytes()[:128]
    assert header.startswith(b"\x93NUMPY\x01\x00") and header.endswith(b"\n")


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
def test_prepare_fits_on_a_disk_with_room_for_one_copy_of_its_output(tmp_path):
    """The old writer streamed a raw file and then copied it into signals.npy: twice the signals on disk at the
    end. On a tmpfs with room for the output plus 40 % of the signals, that ran out of space."""
    root = _challenge_input(tmp_path, 10)
    reference = tmp_path / "reference"
    prepare_dataset(root, reference, "challenge", progress=False)
    signals = (reference / "signals.npy").stat().st_size
    room = tmp_path / "room"
    room.mkdir()
    _mount_tmpfs(room, f"size={_size(reference) + int(0.4 * signals) + 64 * 1024}")
    try:
        out = room / "o"
        code = main(["prepare", "--format", "challenge", "--input", str(root), "--output", str(out), "--quiet"])
        assert code == 0
        assert np.array_equal(np.load(out / "signals.npy"), np.load(reference / "signals.npy"))
    finally:
        _unmount(room)


def test_the_command_line_uses_the_available_cores_by_default(tmp_path, monkeypatch):
    import aclecg.data.prepare as prepare

    sizes = hostile.in_process_pools(monkeypatch, prepare)
    monkeypatch.setattr(prepare, "usable_cpus", lambda: 3)
    monkeypatch.setattr(prepare, "MIN_ITEMS_PER_POOL", 0)
    root = _challenge_input(tmp_path, 3)
    command = ["prepare", "--format", "challenge", "--input", str(root), "--quiet", "--output"]
    assert main([*command, str(tmp_path / "o")]) == 0
    assert sizes == [3]
    assert main([*command, str(tmp_path / "p"), "--workers", "0"]) == 0
    assert sizes == [3]  # --workers 0: in this process


@pytest.mark.parametrize("n", [3])
def test_a_few_records_are_prepared_in_this_process(tmp_path, monkeypatch, n):
    import aclecg.data.prepare as prepare

    monkeypatch.setattr(prepare, "get_context", lambda method: pytest.fail("a pool was started for 3 records"))
    prepare_dataset(_challenge_input(tmp_path, n), tmp_path / "o", "challenge", workers=8, progress=False)
