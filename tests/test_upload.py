"""aclecg.upload: accepted records are preprocessed like prepare; bad uploads give clear messages."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from aclecg import upload
from aclecg.data import BUNDLED_RAW_DIR
from aclecg.errors import DataError

CHALLENGE = BUNDLED_RAW_DIR / "challenge-2021" / "training"


def _record_files(stem: str = "JS00001") -> list[tuple[str, bytes]]:
    hea = next(CHALLENGE.rglob(f"{stem}.hea"))
    return [(hea.name, hea.read_bytes()), (hea.with_suffix(".mat").name, hea.with_suffix(".mat").read_bytes())]


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_record_is_preprocessed_like_prepare():
    """The upload path gives the same window as the data layer's own prepare of the same file."""
    from aclecg.data.challenge import ChallengeReader
    from aclecg.data.prepare import PrepareConfig, process_record

    folder = upload.stage_upload(_record_files())
    try:
        assert folder.name.startswith("aclecg-upload-") and sorted(p.name for p in folder.iterdir()) == [
            "JS00001.hea",
            "JS00001.mat",
        ]
        rec = upload.load_uploaded_record(folder, fs=100.0, seconds=10.0)
        reader = ChallengeReader(CHALLENGE)
        item = next(i for i in reader.locate()[0] if i.record_id == "JS00001")
        ref = process_record(reader, item, 0, PrepareConfig(fs=100.0, seconds=10.0))
        np.testing.assert_allclose(rec.windows, ref.windows, atol=1e-6)
        assert rec.windows.shape == (1, 12, 1000) and rec.raw_fs == 500.0 and rec.raw_mv.shape == (12, 5000)
        np.testing.assert_array_equal(rec.rpeaks[0], ref.rpeaks[0])
        assert "AF" in rec.labels["snomed"]
        padded = rec.rpeaks_padded(8)
        assert padded.shape == (1, 8) and (padded[0, : min(8, len(ref.rpeaks[0]))] == ref.rpeaks[0][:8]).all()
    finally:
        upload.discard(folder)
    assert not folder.exists()


def test_zip_of_records_with_folders_is_flattened():
    files = dict(_record_files("JS00001") + _record_files("JS00002"))
    data = _zip({f"ecgs/{k}": v for k, v in files.items()} | {"__MACOSX/._x.hea": b"junk", "ecgs/": b""})
    folder = upload.stage_upload([("my ecgs.zip", data)])
    try:
        assert upload.list_records(folder) == ["JS00001", "JS00002"]
        assert upload.load_uploaded_record(folder, "JS00002").record_id == "JS00002"
        with pytest.raises(DataError, match="not in the upload"):
            upload.load_uploaded_record(folder, "JS99999")
    finally:
        upload.discard(folder)


def test_too_big_upload_is_rejected():
    with pytest.raises(DataError, match=r"more than the limit of 20 MB"):
        upload.stage_upload([("big.dat", b"\0" * (upload.MAX_UPLOAD_BYTES + 1)), ("big.hea", b"x")])


@pytest.mark.parametrize("name", ["../evil.hea", "/etc/passwd.hea", "..\\evil.hea", "C:\\x.hea", "dir/x.hea"])
def test_traversal_file_names_are_rejected(name):
    with pytest.raises(DataError, match="contains a path"):
        upload.stage_upload([(name, b"x 12 500 5000")])


@pytest.mark.parametrize("member", ["../../evil.hea", "/abs/evil.hea", "a/../../evil.hea"])
def test_traversal_zip_members_are_rejected(member):
    with pytest.raises(DataError, match="unsafe path"):
        upload.stage_upload([("x.zip", _zip({member: b"x"}))])


def test_zip_bomb_is_rejected():
    bomb = _zip({"x.dat": b"\0" * (5 * 2**20)})  # 5 MB of zeros compress > 1000x
    assert len(bomb) < 50_000
    with pytest.raises(DataError, match="zip bomb"):
        upload.stage_upload([("bomb.zip", bomb), ("x.hea", b"x")])


def test_names_are_sanitised():
    assert upload.sanitize_filename("my record (1).hea") == "my_record_1_.hea"
    assert upload.sanitize_filename(".hidden.hea") == "hidden.hea"
    with pytest.raises(DataError):
        upload.sanitize_filename("   ")


def test_not_a_record_gives_clear_message():
    folder = upload.stage_upload([("notes.hea", b"hello, this is not a header\n")])
    try:
        with pytest.raises(DataError, match="notes.hea: not a readable WFDB header"):
            upload.load_uploaded_record(folder)
    finally:
        upload.discard(folder)
    with pytest.raises(DataError, match="unsupported file type"):
        upload.stage_upload([("ecg.pdf", b"%PDF")])
    with pytest.raises(DataError, match="no .hea header"):
        upload.stage_upload([("JS00001.mat", b"\0" * 10)])
    with pytest.raises(DataError, match="not a valid zip"):
        upload.stage_upload([("x.zip", b"PK not really")])


def test_missing_signal_file_is_named():
    hea_only = _record_files()[:1]
    folder = upload.stage_upload(hea_only)
    try:
        with pytest.raises(DataError, match=r"signal file JS00001.mat is missing"):
            upload.load_uploaded_record(folder)
    finally:
        upload.discard(folder)


def test_header_pointing_outside_the_upload_is_refused(tmp_path):
    (name, text), (_, mat) = _record_files()
    evil = text.decode().replace("JS00001.mat", "../../../tmp/JS00001.mat", 1).encode()
    folder = upload.stage_upload([(name, evil), ("JS00001.mat", mat)])
    try:
        with pytest.raises(DataError, match="outside the upload|not a readable"):
            upload.load_uploaded_record(folder)
    finally:
        upload.discard(folder)


def test_config_upload_limit_matches_module():
    text = (Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text()
    line = next(x for x in text.splitlines() if x.strip().startswith("maxUploadSize"))
    assert int(line.split("=")[1]) * 2**20 == upload.MAX_UPLOAD_BYTES


def test_a_very_long_file_name_is_named_as_such():
    from aclecg.upload import sanitize_filename

    with pytest.raises(DataError, match="5004 characters long"):
        sanitize_filename("a" * 5000 + ".hea")


def test_a_nan_gain_upload_is_a_data_error_not_a_type_error(tmp_path):
    from aclecg import upload

    files = dict(_record_files())
    hea_name = next(n for n in files if n.endswith(".hea"))
    lines = files[hea_name].decode().splitlines()
    fields = lines[1].split()
    fields[2] = "nan(0)/mV"
    lines[1] = " ".join(fields)
    files[hea_name] = ("\n".join(lines) + "\n").encode()
    folder = upload.stage_upload(list(files.items()))
    try:
        with pytest.raises(DataError, match="cannot be parsed"):
            upload.load_uploaded_record(folder)
    finally:
        upload.discard(folder)


def test_every_bad_file_gets_its_verdict(tmp_path):
    from aclecg import upload

    good = _record_files()
    files = good + [("notes.txt", b"hello"), ("../evil.hea", b"x"), ("broken.zip", b"PK not a zip")]
    with pytest.raises(DataError) as info:
        upload.stage_upload(files)
    message = str(info.value)
    assert message.startswith("3 of 5 uploaded file(s) rejected")
    assert "notes.txt" in message and "../evil.hea" in message and "broken.zip" in message
    rejected: list = []
    folder = upload.stage_upload(files, rejected=rejected)
    try:
        assert [name for name, _ in rejected] == ["notes.txt", "../evil.hea", "broken.zip"]
        assert upload.list_records(folder) == [good[0][0][:-4]]  # the good record is staged all the same
    finally:
        upload.discard(folder)


def test_stale_staging_folders_are_removed_by_the_next_upload():
    import os
    import tempfile
    import time

    from aclecg import upload

    old = Path(tempfile.mkdtemp(prefix="aclecg-upload-"))
    (old / "x.hea").write_text("x")
    stamp = time.time() - upload.STALE_UPLOAD_S - 60
    os.utime(old, (stamp, stamp))
    fresh = upload.stage_upload(_record_files())
    try:
        assert not old.exists() and fresh.exists()
    finally:
        upload.discard(fresh)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"# only a comment\n"])
def test_an_empty_header_is_named_as_empty_not_as_a_python_error(content):
    (_, _), (_, mat) = _record_files()
    folder = upload.stage_upload([("JS00001.hea", content), ("JS00001.mat", mat)])
    try:
        with pytest.raises(DataError, match=r"JS00001.hea: the header file is empty") as err:
            upload.load_uploaded_record(folder)
        assert "IndexError" not in str(err.value)
    finally:
        upload.discard(folder)


def _zip_entry(name: str, data: bytes, mode: int, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.create_system = 3  # Unix: the mode bits say what the entry is
        info.external_attr = mode << 16
        info.compress_type = compression
        zf.writestr(info, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("mode", "named"),
    [(0o120777, "is a symbolic link"), (0o020644, "is a device or other special file"), (0o010644, "is a device")],
)
def test_links_devices_and_fifos_in_a_zip_reject_it(mode, named):
    """A symlink entry (its content is the link target) or a device entry is never staged as a file."""
    with pytest.raises(DataError, match=named):
        upload.stage_upload([("x.zip", _zip_entry("JS00001.hea", b"/etc/passwd", mode)), _record_files()[0]])


def test_zip_members_compressed_other_than_deflate_are_refused():
    """bzip2/lzma members would hand the upload's bytes to another native decoder in the server."""
    data = _zip_entry("JS00001.hea", _record_files()[0][1], 0o100644, zipfile.ZIP_BZIP2)
    with pytest.raises(DataError, match="compression method 12; only stored and deflated"):
        upload.stage_upload([("x.zip", data)])


def test_the_zip_entry_count_is_checked_before_its_directory_is_parsed(monkeypatch):
    many = _zip({f"n{i}.txt": b"" for i in range(upload.MAX_ZIP_MEMBERS + 1)}, zipfile.ZIP_STORED)

    def never(*args, **kwargs):
        raise AssertionError("zipfile parsed the directory of a zip with too many entries")

    monkeypatch.setattr(upload.zipfile, "ZipFile", never)
    with pytest.raises(DataError, match=rf"holds {upload.MAX_ZIP_MEMBERS + 1} entries, more than the limit"):
        upload.stage_upload([("many.zip", many)])


def test_zip_limits_are_checked_before_any_member_is_inflated(monkeypatch):
    monkeypatch.setattr(upload, "MAX_UNCOMPRESSED_BYTES", 150_000)
    (hea, text), (mat, content) = _record_files()  # the .mat is ~120 kB: the second record passes the cap
    (hea2, text2), (mat2, content2) = _record_files("JS00002")
    data = _zip({hea: text, mat: content, hea2: text2, mat2: content2})
    opened: list[str] = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(
        zipfile.ZipFile, "open", lambda self, info, *a, **k: opened.append(str(info)) or real_open(self, info, *a, **k)
    )
    with pytest.raises(DataError, match="uncompressed content exceeds"):
        upload.stage_upload([("two.zip", data)])
    assert opened == []


def test_a_damaged_zip_member_is_a_data_error_not_a_zlib_error():
    (hea, text), (mat, content) = _record_files()
    data = bytearray(_zip({hea: text, mat: content}))
    start = data.index(b"PK\x03\x04", 10) + 30 + len(mat) + 20  # inside the .mat member's deflate stream
    data[start : start + 200] = bytes(range(200))
    with pytest.raises(DataError, match=r"x.zip: member 'JS00001.mat' is (damaged|larger than)"):
        upload.stage_upload([("x.zip", bytes(data))])


def test_staged_uploads_share_a_disk_quota(challenge_upload, monkeypatch, tmp_path):
    """Every session's staged upload counts against one quota (ACLECG_UPLOADS_QUOTA_MB): a server cannot be filled
    by many sessions each holding its 20 MB."""
    import tempfile

    from aclecg import upload

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a private staging area for this test
    files = [(p.name, p.read_bytes()) for p in sorted(challenge_upload.iterdir())]
    size = sum(len(b) for _, b in files)
    monkeypatch.setenv("ACLECG_UPLOADS_QUOTA_MB", str(1.5 * size / 2**20))
    first = upload.stage_upload(files)
    with pytest.raises(DataError, match="quota"):
        upload.stage_upload(files)
    upload.discard(first)  # the first session ends: there is room again
    upload.discard(upload.stage_upload(files))
    monkeypatch.setenv("ACLECG_UPLOADS_QUOTA_MB", "0")  # 0: no quota
    kept = [upload.stage_upload(files) for _ in range(3)]
    for folder in kept:
        upload.discard(folder)
