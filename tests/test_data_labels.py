"""Label words and the raw record behind a prepared row, read from what `prepare` really writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aclecg.checkpoint import discover_checkpoints
from aclecg.data import BUNDLED_RAW_DIR, PreparedDataset, prepare_dataset
from aclecg.data.labels import describe_labels, label_descriptions, sentence_case
from aclecg.data.raw import index_raw, raw_folder, raw_window_mv


@pytest.fixture(scope="module")
def user_ptbxl(tmp_path_factory) -> tuple[Path, Path]:
    """A user's own PTB-XL folder (8 real records, one SCP description reworded), and its prepared cache."""
    src = BUNDLED_RAW_DIR / "ptb-xl"
    root = tmp_path_factory.mktemp("user") / "ptb-xl"
    (root / "records100" / "00000").mkdir(parents=True)
    table = pd.read_csv(src / "scp_statements.csv", index_col=0)
    table.loc["IMI", "description"] = "inferior MI, as this user's table words it"
    table.to_csv(root / "scp_statements.csv")
    lines = (src / "ptbxl_database.csv").read_text().splitlines()
    (root / "ptbxl_database.csv").write_text("\n".join(lines[:9]) + "\n")
    for i in range(1, 9):
        for ext in ("hea", "dat"):
            shutil.copy(src / "records100" / "00000" / f"{i:05d}_lr.{ext}", root / "records100" / "00000")
    out = root.parent / "prepared"
    prepare_dataset(root, out, "ptbxl", name="mine", progress=False)
    return root, out


def test_descriptions_come_from_the_folder_the_dataset_was_prepared_from(user_ptbxl):
    root, out = user_ptbxl
    ds = PreparedDataset(out)
    words = label_descriptions(ds.manifest)
    assert words["IMI"] == "Inferior MI, as this user's table words it"
    bundled = pd.read_csv(BUNDLED_RAW_DIR / "ptb-xl" / "scp_statements.csv", index_col=0)
    assert bundled.loc["IMI", "description"] != "inferior MI, as this user's table words it"


def test_raw_window_reads_the_users_folder_and_matches_the_raw_file(user_ptbxl):
    import wfdb

    root, out = user_ptbxl
    ds = PreparedDataset(out)
    assert raw_folder(ds) == ("ptbxl", root)
    signals, fs = raw_window_mv(ds, 2)
    source = str(ds.records.iloc[2]["source"])
    direct = wfdb.rdrecord(str(root / source)).p_signal.T
    assert fs == 100.0
    np.testing.assert_allclose(signals, direct[:, : signals.shape[1]], rtol=1e-6, atol=1e-6)


def test_raw_window_is_none_when_the_raw_folder_is_gone(user_ptbxl, tmp_path):
    root, out = user_ptbxl
    moved = tmp_path / "prepared"
    shutil.copytree(out, moved)
    ds = PreparedDataset(moved)
    ds.manifest["preprocessing"]["source_root"] = str(tmp_path / "nowhere")
    assert raw_folder(ds) is None
    assert raw_window_mv(ds, 0) is None and index_raw(ds) is False


def test_index_raw_opens_the_folder_once_so_records_are_read_without_a_new_index(user_ptbxl, monkeypatch):
    import aclecg.data.prepare as prepare
    from aclecg.data import raw

    root, out = user_ptbxl
    raw._reader_items.cache_clear()
    opened: list[str] = []
    make_reader = prepare.make_reader
    monkeypatch.setattr(prepare, "make_reader", lambda fmt, folder: opened.append(folder) or make_reader(fmt, folder))
    ds = PreparedDataset(out)
    assert index_raw(ds) is True and opened == [str(root)]
    assert raw_window_mv(ds, 3) is not None and opened == [str(root)]  # the index is reused


def test_label_words_in_sentence_case_and_described():
    assert sentence_case("1st degree av block") == "1st degree AV block"
    assert sentence_case("") == ""
    assert describe_labels("NORM;MI", {"NORM": "Normal ECG"}) == "NORM (Normal ECG); MI"
    assert describe_labels("", {}) == "(none)"


def test_discover_checkpoints_default_first_and_no_training_checkpoints(tmp_path):
    shipped, runs = tmp_path / "checkpoints", tmp_path / "runs"
    for name in ("simclr", "acl_ecg", "byol"):
        (shipped / name).mkdir(parents=True)
        (shipped / name / "encoder.pt").write_bytes(b"x")
    (shipped / "rotations" / "test9" / "moco").mkdir(parents=True)
    (shipped / "rotations" / "test9" / "moco" / "encoder.pt").write_bytes(b"x")
    (runs / "my-run" / "checkpoints").mkdir(parents=True)
    (runs / "my-run" / "encoder.pt").write_bytes(b"x")
    (runs / "my-run" / "checkpoints" / "encoder.pt").write_bytes(b"x")
    found = discover_checkpoints(shipped, runs)
    assert list(found) == ["acl_ecg (shipped)", "byol (shipped)", "simclr (shipped)", "my-run (run)"]
    assert found["my-run (run)"] == runs / "my-run" / "encoder.pt"


def test_stack_records_keeps_each_rows_own_position(user_ptbxl, bundled_prepared):
    from aclecg.data.joint import stack_records

    mine, bundled = PreparedDataset(user_ptbxl[1]), PreparedDataset(bundled_prepared)
    table = stack_records({"mine": mine, "ptbxl": bundled})
    assert len(table) == len(mine) + len(bundled)
    assert list(table.columns[:2]) == ["dataset", "row"]
    last = table.iloc[-1]
    assert (last["dataset"], last["row"]) == ("ptbxl", len(bundled) - 1)
    assert last["record_id"] == bundled.records.iloc[-1]["record_id"]
    assert table["age"].dtype.kind == "f"
