"""Hostile dataset files (built in tests/helpers/hostile.py): each is refused by name, in under 5 s and 500 MB, without
crashing, hanging or opening anything outside the input folder; prepare cleans up after SIGTERM, a killed run, a
read-only or full disk."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from aclecg.cli import main
from aclecg.data import BUNDLED_RAW_DIR, ChallengeReader, PtbXlReader, Record, Skipped, prepare_dataset
from aclecg.data.cpsc2018 import Cpsc2018Reader
from aclecg.errors import DataError
from tests.helpers import hostile

FAST_S, SMALL_MB = 5.0, 500.0

# ------------------------------------------------------------------------------------------------ helpers

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def _opened_during(fn, *args):
    """(result, every path opened by Python code while ``fn(*args)`` ran)."""
    global _OPENED
    _OPENED = []
    try:
        return fn(*args), list(_OPENED)
    finally:
        _OPENED = None


def _outcomes(reader) -> dict[str, Record | Skipped]:
    """Record stem -> Record or Skipped, for every record a reader yields."""
    out: dict[str, Record | Skipped] = {}
    for result in reader:
        out[Path(result.file if isinstance(result, Skipped) else result.source).stem] = result
    return out


def _reasons(root: Path, fmt: str) -> dict[str, str]:
    """Record stem -> skip reason ("" when kept) of reading ``root`` as ``fmt`` (run in the child)."""
    reader = {"challenge": ChallengeReader, "cpsc2018": Cpsc2018Reader, "ptbxl": PtbXlReader}[fmt](root)
    return {k: (v.reason if isinstance(v, Skipped) else "") for k, v in _outcomes(reader).items()}


def _isolated_ok(fn, *args, timeout: float = 20.0):
    out = hostile.run_isolated(fn, *args, timeout=timeout)
    assert out.status == "ok", out
    assert out.seconds < FAST_S and out.extra_mb < SMALL_MB, out
    return out.value


def _cpsc_folder(root: Path, mats: dict[str, object]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{name},1,,\n" for name in mats)
    (root / "REFERENCE.csv").write_text("Recording,First_label,Second_label,Third_label\n" + rows)
    for name, build in mats.items():
        if callable(build):
            build(root / f"{name}.mat")
    return root


def _good_cpsc(path: Path) -> Path:
    rng = np.random.default_rng(0)
    scipy.io.savemat(
        path, {"ECG": {"sex": "Female", "age": np.array([[61.0]]), "data": rng.normal(size=(12, 5000)) * 0.1}}
    )
    return path


# ------------------------------------------------------------------------------------------- MATLAB files


def test_a_reserved_data_type_is_a_named_skip_not_a_crash(tmp_path):
    """A 224-byte file (a compressed matrix whose data have the reserved type 10) segfaulted scipy.io.loadmat; a cell
    array is refused by name too. Read in a child process, which must not crash."""
    mats = {"A0001": _good_cpsc, "A0002": hostile.reserved_type_mat, "A0003": hostile.cell_ecg_mat}
    reasons = _isolated_ok(_reasons, _cpsc_folder(tmp_path / "cpsc", mats), "cpsc2018")
    assert reasons["A0001"] == ""
    assert "reserved or unknown data type 10; refused" in reasons["A0002"]
    assert "variable ECG is a cell array" in reasons["A0003"]


def test_zlib_bombs_are_refused_in_bounded_time_and_memory(tmp_path):
    """A 1.2 MB compressed element inflating to 1.26 GB took 1.5 GB and 11 s before it was refused; one that lies about
    its size inflated past it. Now: refused in under 5 s and 500 MB (measured in the child)."""
    mats = {"A0001": hostile.zlib_bomb_mat, "A0002": lambda p: hostile.zlib_bomb_mat(p, chunks=40, lie=True)}
    reasons = _isolated_ok(_reasons, _cpsc_folder(tmp_path / "cpsc", mats), "cpsc2018")
    assert "declares 1258291264 bytes, over the 97048576-byte limit" in reasons["A0001"]
    assert "decompresses to more than the" in reasons["A0002"]


def test_challenge_mat_that_wfdb_cannot_read_is_never_given_to_loadmat(tmp_path):
    """The Challenge reader explained a failed read with loadmat: the reserved-type file crashed it there, and a
    bomb whose header asks for more samples than the file holds was inflated there."""
    root = tmp_path / "challenge"
    hostile.challenge_record(root, "GOOD")
    hostile.challenge_record(root, "RESERVED")
    hostile.reserved_type_mat(root / "RESERVED.mat")
    hea = hostile.challenge_record(root, "BOMB")
    hostile.zlib_bomb_mat(root / "BOMB.mat")
    hea.write_text(hea.read_text().replace("BOMB 12 500 7500", "BOMB 12 500 75000"))
    reasons = _isolated_ok(_reasons, root, "challenge")
    assert reasons["GOOD"] == ""
    assert "cannot read the record" in reasons["RESERVED"]
    assert "cannot read the record" in reasons["BOMB"]


def _loadmat_values(path: Path) -> dict:
    return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}


def _same(mine, ref) -> None:
    if isinstance(mine, dict):
        assert set(mine) == set(ref.dtype.names)
        for key in mine:
            _same(mine[key], ref[0, 0][key])
    elif isinstance(mine, str):
        assert mine == (str(ref[0]) if ref.size else "")
    else:
        assert (mine.dtype, mine.shape, mine.tobytes()) == (ref.dtype, ref.shape, ref.tobytes())


def test_matfile_equals_loadmat_on_the_bundled_records():
    from aclecg.data.matfile import parse_mat

    files = sorted((BUNDLED_RAW_DIR / "challenge-2021").rglob("*.mat"))
    assert len(files) == 20
    for path in files:  # MAT-4 int16 'val' matrices
        mine, ref = parse_mat(path.read_bytes(), path.name), _loadmat_values(path)
        assert set(mine) == set(ref) == {"val"}
        _same(mine["val"], ref["val"])


def test_matfile_equals_loadmat_on_the_cpsc_release(shared_data):
    """The original CPSC 2018 files: compressed MAT-5 struct ECG (char sex, uint8-stored age, int16-stored data)."""
    from aclecg.data.matfile import parse_mat

    files = sorted((shared_data / "cpsc2018").glob("*.mat"))
    assert files
    for path in files:
        mine, ref = parse_mat(path.read_bytes(), path.name), _loadmat_values(path)
        assert set(mine) == set(ref) == {"ECG"}
        _same(mine["ECG"], ref["ECG"])


@pytest.mark.parametrize(
    ("content", "options", "fragment"),
    [
        ({"val": np.ones((2, 3)) * (1 + 1j)}, {}, "variable val holds complex numbers"),
        ({"val": np.zeros((2, 2, 2))}, {}, "variable val has 3 dimensions"),
        ({"val": np.array(["ab", "cd"])}, {}, "char array of 2 rows"),
        ({"val": np.array([True, False])}, {}, "variable val is a logical array"),
        ({"val": np.array(["x"], dtype=object)}, {}, "variable val is a cell array"),
        ({"ECG": {"inner": {"data": 1.0}}}, {}, "nested struct"),
        ({"val": "text"}, {"format": "4"}, "is text, not a full matrix"),
        ({"val": np.ones((2, 2)) * (1 + 1j)}, {"format": "4"}, "MAT-4 matrix holds complex numbers"),
    ],
)
def test_matfile_refuses_layouts_it_does_not_read(content, options, fragment):
    from aclecg.data.matfile import parse_mat

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, content, **options)
    with pytest.raises(DataError, match=fragment):
        parse_mat(buffer.getvalue(), "x.mat")


def test_matfile_checks_declared_sizes_before_allocating():
    import scipy.sparse

    from aclecg.data.matfile import parse_mat

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"val": np.ones((12, 100))})
    data = buffer.getvalue()
    with pytest.raises(DataError, match="declares .* bytes but only"):
        parse_mat(data[: len(data) // 2], "cut.mat")
    with pytest.raises(DataError, match="MATLAB 7.3"):
        parse_mat(data[:124] + b"\x00\x02IM" + data[128:], "v73.mat")
    with pytest.raises(DataError, match="not a readable MATLAB file"):
        parse_mat(b"MATLAB?" * 40, "text.mat")
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"sp": scipy.sparse.eye(3).tocsc()})
    with pytest.raises(DataError, match="variable sp is a sparse array"):
        parse_mat(buffer.getvalue(), "sparse.mat")
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"val": np.ones((2, 2))}, format="4")
    grown = bytearray(buffer.getvalue())
    grown[4:8] = (2**30).to_bytes(4, "little")  # 2**30 rows declared in a 60-byte file
    with pytest.raises(DataError, match="declares 17179869184 bytes but the file ends"):
        parse_mat(bytes(grown), "rows.mat")


# ------------------------------------------------------------------------------ FIFOs, devices, links out


def test_fifos_and_devices_are_refused_without_blocking(tmp_path):
    """A FIFO signal file or header blocked prepare forever; /dev/zero (linked or a device node) read forever."""
    root = tmp_path / "challenge"
    hostile.challenge_record(root, "GOOD")
    hostile.fifo_record(root, "FIFOMAT", ".mat")
    hostile.fifo_record(root, "FIFOHEA", ".hea")
    hostile.device_record(root, "DEVZERO")
    node = hostile.mknod_record(root, "CHARDEV")
    reasons = _isolated_ok(_reasons, root, "challenge", timeout=15)
    assert reasons["GOOD"] == ""
    assert "signal file FIFOMAT.mat is a FIFO (named pipe), not a regular file; refused" in reasons["FIFOMAT"]
    assert "header file FIFOHEA.hea is a FIFO (named pipe)" in reasons["FIFOHEA"]
    assert "signal file DEVZERO.mat links outside the record's folder; refused" in reasons["DEVZERO"]
    if node is not None:
        assert "signal file CHARDEV.mat is a character device" in reasons["CHARDEV"]


def test_fifo_label_tables_and_cpsc_files_are_refused(tmp_path):
    cpsc = _cpsc_folder(tmp_path / "cpsc", {"A0001": _good_cpsc, "A0002": None, "A0003": None})
    os.mkfifo(cpsc / "A0002.mat")
    (cpsc / "A0003.mat").symlink_to("/dev/zero")
    reasons = _isolated_ok(_reasons, cpsc, "cpsc2018", timeout=15)
    assert reasons["A0001"] == ""
    assert "MATLAB file A0002.mat is a FIFO" in reasons["A0002"]
    assert "links outside the input folder" in reasons["A0003"]
    os.unlink(cpsc / "REFERENCE.csv")
    os.mkfifo(cpsc / "REFERENCE.csv")
    out = hostile.run_isolated(_reasons, cpsc, "cpsc2018", timeout=15)
    assert out.status == "raised" and "label table REFERENCE.csv is a FIFO" in out.value, out
    ptbxl = tmp_path / "ptbxl"
    ptbxl.mkdir()
    shutil.copy(BUNDLED_RAW_DIR / "ptb-xl" / "scp_statements.csv", ptbxl)
    os.mkfifo(ptbxl / "ptbxl_database.csv")
    out = hostile.run_isolated(_reasons, ptbxl, "ptbxl", timeout=15)
    assert out.status == "raised" and "label table ptbxl_database.csv is a FIFO" in out.value, out


def test_prepare_names_a_fifo_and_finishes(tmp_path, capsys):
    root = tmp_path / "challenge"
    hostile.challenge_record(root, "GOOD")
    hostile.fifo_record(root, "FIFOMAT")

    def run() -> tuple[int, dict]:
        code = main(
            ["prepare", "--format", "challenge", "--input", str(root), "--output", str(tmp_path / "o"), "--quiet"]
        )
        return code, json.loads((tmp_path / "o" / "manifest.json").read_text())

    code, manifest = _isolated_ok(run, timeout=30)
    assert code == 0 and manifest["counts"]["records_kept"] == 1
    assert manifest["skipped"][0]["file"] == "FIFOMAT" and "FIFO" in manifest["skipped"][0]["reason"]


def test_multisegment_records_linking_outside_are_refused_and_never_opened(tmp_path):
    """A multi-segment header whose segment links outside was read and kept (Challenge and PTB-XL)."""
    outside = tmp_path / "outside"
    root = tmp_path / "challenge"
    hostile.challenge_record(root, "GOOD")
    hostile.multisegment_escape(root, outside, "MULTI")
    results, opened = _opened_during(_outcomes, ChallengeReader(root))
    assert isinstance(results["GOOD"], Record)
    assert "a multi-segment record is not read" in results["MULTI"].reason
    assert "links outside the input folder" in results["MULTI_1"].reason  # the segment's own header, found by rglob
    assert opened and not [p for p in opened if str(outside) in p or os.path.realpath(p).startswith(str(outside))]

    ptbxl = tmp_path / "ptbxl"
    (ptbxl / "records100" / "00000").mkdir(parents=True)
    src = BUNDLED_RAW_DIR / "ptb-xl"
    shutil.copy(src / "scp_statements.csv", ptbxl)
    (ptbxl / "ptbxl_database.csv").write_text("\n".join((src / "ptbxl_database.csv").read_text().splitlines()[:3]))
    for ext in ("hea", "dat"):
        shutil.copy(src / "records100" / "00000" / f"00001_lr.{ext}", ptbxl / "records100" / "00000")
    hostile.multisegment_escape(ptbxl, tmp_path / "outside2", "records100/00000/00002_lr", fs=100, n=1000)
    results, opened = _opened_during(_outcomes, PtbXlReader(ptbxl))
    assert isinstance(results["00001_lr"], Record)
    assert "multi-segment record" in results["00002_lr"].reason
    assert not [p for p in opened if "outside2" in os.path.realpath(p)]


def test_a_reference_table_linking_outside_is_refused(tmp_path):
    root = tmp_path / "cpsc"
    hostile.linked_reference(root, tmp_path / "outside")
    _good_cpsc(root / "A0001.mat")
    with pytest.raises(DataError, match="label table REFERENCE.csv links outside the input folder"):
        _opened_during(Cpsc2018Reader(root).locate)


# ---------------------------------------------------------------------------------------- header values


def test_rates_and_lengths_beyond_the_limits_are_named_skips(tmp_path, capsys):
    """fs 1e6 gave a ValueError traceback in prepare (the resampling ratio rounded to 0); 150 kHz resampled to a wrong
    rate; a header claiming 2e9 samples was believed."""
    root = tmp_path / "challenge"
    hostile.challenge_record(root, "GOOD")
    hostile.high_fs_record(root, "MHZ", "1000000")
    hostile.high_fs_record(root, "KHZ150", "150000")
    hostile.long_record(root, "LONG")
    code = main(["prepare", "--format", "challenge", "--input", str(root), "--output", str(tmp_path / "o"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.out + captured.err
    reasons = {s["file"]: s["reason"] for s in json.loads((tmp_path / "o" / "manifest.json").read_text())["skipped"]}
    assert reasons["MHZ"] == "sampling rate 1e+06 Hz is above the 10000 Hz limit; refused"
    assert reasons["KHZ150"] == "sampling rate 150000 Hz is above the 10000 Hz limit; refused"
    assert "header declares 2000000000 samples per lead" in reasons["LONG"] and "over the limit" in reasons["LONG"]


def test_resampling_refuses_a_ratio_it_cannot_express():
    from aclecg.data.preprocess import resample

    with pytest.raises(DataError, match="cannot resample 200000 Hz to 100 Hz"):
        resample(np.zeros((1, 10)), 200_000.0, 100.0)
    with pytest.raises(DataError, match="cannot resample 150000 Hz to 100 Hz"):
        resample(np.zeros((1, 10)), 150_000.0, 100.0)
    assert resample(np.zeros((1, 2570)), 257.0, 100.0).shape == (1, 1000)


def test_duplicate_record_names_keep_the_first_in_sorted_order(tmp_path):
    root = tmp_path / "challenge"
    hostile.duplicate_names(root, "DUP")
    kept = [r for r in ChallengeReader(root) if isinstance(r, Record)]
    skipped = [r for r in ChallengeReader(root) if isinstance(r, Skipped)]
    assert [r.source for r in kept] == ["a/DUP"]
    assert [(s.file, s.reason) for s in skipped] == [("b/DUP", "duplicate record name DUP (first: a/DUP); skipped")]
    cpsc = tmp_path / "cpsc"
    _cpsc_folder(cpsc, {})
    (cpsc / "REFERENCE.csv").write_text("Recording,First_label\nA0001,1\n")
    for sub in ("x", "y"):
        (cpsc / sub).mkdir()
        _good_cpsc(cpsc / sub / "A0001.mat")
    items, skipped = Cpsc2018Reader(cpsc).locate()
    assert [i.source for i in items] == ["x/A0001.mat"]
    assert skipped == [Skipped("y/A0001.mat", "duplicate record name A0001 (first: x/A0001.mat); skipped")]


def test_an_age_outside_0_to_130_is_unknown(tmp_path):
    from aclecg.data.base import age_value

    root = tmp_path / "challenge"
    hostile.huge_age_record(root, "OLD", "1e308")
    hostile.huge_age_record(root, "NEG", "-3")
    hostile.huge_age_record(root, "AGED", "130")
    ages = {r.record_id: r.age for r in ChallengeReader(root)}
    assert np.isnan(ages["OLD"]) and np.isnan(ages["NEG"]) and ages["AGED"] == 130.0
    assert np.isnan(age_value("131")) and np.isnan(age_value("1e400"))


# ------------------------------------------------------------------------------------ prepare's folders


def _challenge_input(tmp_path: Path, n: int = 3) -> Path:
    """The first ``n`` bundled CPSC records of the Challenge copy (10 s to 25 s each)."""
    root = tmp_path / "challenge"
    for i in range(1, n + 1):
        hostile.challenge_record(root, f"A{i:04d}", f"A{i:04d}")
    return root


def test_sigterm_removes_the_temporary_folder_and_exits_with_one_line(tmp_path, monkeypatch):
    """SIGTERM used to kill prepare at once, leaving .<name>.tmp-* behind."""
    import aclecg.data.prepare as prepare

    root = _challenge_input(tmp_path)
    original, calls = prepare.process_record, []

    def terminated_midway(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    monkeypatch.setattr(prepare, "process_record", terminated_midway)

    def run() -> tuple[int, str]:
        import contextlib

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(
                ["prepare", "--format", "challenge", "--input", str(root), "--output", str(tmp_path / "o"), "--quiet"]
            )
        return code, err.getvalue()

    out = hostile.run_isolated(run, timeout=30)
    assert out.status == "ok", out  # not killed by the signal
    code, err = out.value
    assert code == 143 and len(err.strip().splitlines()) == 1 and "stopped by SIGTERM" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["challenge"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_later_run_removes_temporary_folders_of_dead_processes(tmp_path):
    """SIGKILL leaves the temporary folder: the next prepare into the same output removes it (only if its process is
    dead), and puts back an older dataset that a killed run had moved aside."""
    root = _challenge_input(tmp_path)
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".o.tmp-{dead}-0123abcd"
    busy = tmp_path / f".o.tmp-{alive}-4567cdef"
    elsewhere = tmp_path / f".o.tmp-{dead}-89abcdef"
    for folder in (stale, busy, elsewhere):
        folder.mkdir()
        (folder / "signals.raw").write_bytes(b"x")
    (elsewhere / ".owner").write_text("another-host\n1\n")
    prepare_dataset(root, tmp_path / "o", "challenge", progress=False)
    assert not stale.exists() and busy.exists() and elsewhere.exists()
    from aclecg.data.staging import remove_stale

    moved = tmp_path / f".p.old-{dead}-0123abcd"  # a run killed between moving "p" aside and renaming its new one
    shutil.copytree(tmp_path / "o", moved)
    assert remove_stale(tmp_path / "p2") == [] and moved.exists()  # another output's folders are not touched
    assert remove_stale(tmp_path / "p") == [moved]
    assert not moved.exists() and (tmp_path / "p" / "manifest.json").is_file()


def test_a_read_only_output_folder_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    root = _challenge_input(tmp_path)
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if ".tmp-" in self.name:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    code = main(["prepare", "--format", "challenge", "--input", str(root), "--output", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"cannot write the prepared dataset in {tmp_path}: Read-only file system" in err


def test_a_full_disk_is_one_line_exit_2_and_leaves_no_temporary_folder(tmp_path):
    """Writes beyond RLIMIT_FSIZE fail with EFBIG, as a full disk fails with ENOSPC: both are OSErrors on write."""
    import contextlib
    import resource

    root = _challenge_input(tmp_path, 10)  # 137 s: 13 rows of 48 kB; the largest record file is 300 kB

    def run() -> tuple[int, str]:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, resource.RLIM_INFINITY))
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(
                ["prepare", "--format", "challenge", "--input", str(root), "--output", str(tmp_path / "o"), "--quiet"]
            )
        return code, err.getvalue()

    out = hostile.run_isolated(run, timeout=30)
    assert out.status == "ok", out
    code, err = out.value
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"cannot write the prepared dataset in {tmp_path}: File too large" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["challenge"]


def test_workers_are_capped_at_the_cpus_with_a_note(tmp_path, monkeypatch, capsys):
    import aclecg.data.prepare as prepare

    sizes = hostile.in_process_pools(monkeypatch, prepare)
    monkeypatch.setattr(prepare, "usable_cpus", lambda: 2)
    monkeypatch.setattr(prepare, "MIN_ITEMS_PER_POOL", 0)
    root = _challenge_input(tmp_path)
    out = str(tmp_path / "o")
    assert (
        main(["prepare", "--format", "challenge", "--input", str(root), "--output", out, "--workers", "64", "--quiet"])
        == 0
    )
    assert "note: --workers 64 is more than the 2 CPU cores available; using 2" in capsys.readouterr().err
    assert sizes == [2]
    prepare_dataset(root, tmp_path / "lib", "challenge", workers=64, progress=False)
    assert sizes == [2, 2]


def test_prepare_on_the_whole_corpus_opens_nothing_outside_the_input_folder(tmp_path):
    """Every hostile case side by side: one good record kept, each other a named skip, in one child process under
    5 s and 500 MB, and no file outside the input folder opened (only the readers' private copies, which may live in
    /dev/shm, and no device)."""
    root, outside = tmp_path / "challenge", tmp_path / "outside"
    hostile.challenge_record(root, "GOOD")
    hostile.fifo_record(root, "FIFOMAT")
    hostile.device_record(root, "DEVZERO")
    hostile.multisegment_escape(root, outside, "MULTI")
    hostile.high_fs_record(root, "MHZ")
    hostile.long_record(root, "LONG")
    hostile.challenge_record(root, "RESERVED")
    hostile.reserved_type_mat(root / "RESERVED.mat")
    hostile.challenge_record(outside, "SECRET")
    for ext in (".hea", ".mat"):
        (root / f"LINKED{ext}").symlink_to(outside / f"SECRET{ext}")
    hostile.challenge_record(root, "MATLINK")
    (root / "MATLINK.mat").unlink()
    (root / "MATLINK.mat").symlink_to(outside / "SECRET.mat")
    hostile.duplicate_names(root / "sub", "GOOD")

    def run() -> tuple[dict, list[str]]:
        return _opened_during(lambda: prepare_dataset(root, tmp_path / "o", "challenge", progress=False))

    manifest, opened = _isolated_ok(run, timeout=30)
    assert manifest["counts"]["records_kept"] == 1
    skipped = {s["file"] for s in manifest["skipped"]}
    expected = {"FIFOMAT", "DEVZERO", "MULTI", "MULTI_1", "MHZ", "LONG", "RESERVED", "LINKED", "MATLINK"}
    assert skipped == expected | {"sub/a/GOOD", "sub/b/GOOD"}
    assert opened
    devices = [p for p in opened if p.startswith("/dev/") and not p.startswith("/dev/shm/aclecg-wfdb-")]
    assert not devices and not [p for p in opened if os.path.realpath(p).startswith(str(outside))]


def test_label_descriptions_never_read_a_statements_table_linked_from_outside(tmp_path):
    """The app reads scp_statements.csv from a prepared dataset's raw folder for class descriptions; one linked from
    elsewhere was read. Now it is refused and the bundled table is used."""
    from aclecg.data.labels import label_descriptions

    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "scp_statements.csv").write_text("code,description\nNORM,read from outside\n")
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "scp_statements.csv").symlink_to(tmp_path / "outside" / "scp_statements.csv")
    manifest = {"format": "ptbxl", "preprocessing": {"source_root": str(tmp_path / "raw")}}
    assert label_descriptions(manifest)["NORM"] == "Normal ECG"


def test_a_terminated_worker_removes_its_private_copy(tmp_path):
    """Pool.terminate() SIGTERMs prepare's workers: one stopped while reading left its record copy in /dev/shm."""
    from aclecg.data.staging import exit_on_sigterm
    from aclecg.data.wfdbio import _scratch

    def stopped_while_reading() -> None:
        exit_on_sigterm()
        with _scratch() as folder:
            (tmp_path / "where").write_text(folder)
            Path(folder, "REC.dat").write_bytes(b"x")
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()

    out = hostile.run_isolated(stopped_while_reading, timeout=10)
    assert (out.status, out.value) == ("raised", "SystemExit: 143")
    assert not Path((tmp_path / "where").read_text()).exists()
