"""aclecg.analysis.neighbours: exact cosine search (against brute force), exclusion, clear errors, precision@k,
the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aclecg.analysis import neighbours
from aclecg.cli import main
from aclecg.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parent.parent
CHECKPOINT = REPO / "checkpoints" / "acl_ecg" / "encoder.pt"


def _brute_force(index_emb: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    mean = index_emb.mean(axis=0)
    std = np.maximum(index_emb.std(axis=0), 1e-6)

    def norm(a: np.ndarray) -> np.ndarray:
        z = (a - mean) / std
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    sims = norm(queries.astype(np.float64)) @ norm(index_emb.astype(np.float64)).T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


@pytest.mark.parametrize("block", [neighbours.BLOCK_ENTRIES, 7 * 40])  # one product, and blocks of 7 rows
def test_query_matches_brute_force(monkeypatch, block):
    monkeypatch.setattr(neighbours, "BLOCK_ENTRIES", block)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 16)) * rng.uniform(0.1, 5.0, size=16) + rng.normal(size=16)
    queries = rng.normal(size=(40, 16))
    idx, sim = neighbours.NeighbourIndex(emb).query(queries, k=6)
    want_idx, want_sim = _brute_force(emb, queries, 6)
    assert idx.shape == sim.shape == (40, 6)
    np.testing.assert_allclose(sim, want_sim, atol=1e-5)
    assert (idx == want_idx).mean() > 0.99  # ties at float32 precision may swap; similarities are exact
    assert (np.diff(sim, axis=1) <= 1e-7).all()  # highest first


def test_exclude_leaves_the_record_out():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(50, 8))
    index = neighbours.NeighbourIndex(emb)
    idx, sim = index.query(emb[:5], k=3)
    assert (idx[:, 0] == np.arange(5)).all()  # a record finds itself first
    np.testing.assert_allclose(sim[:, 0], 1.0, atol=1e-5)
    idx2, _ = index.query(emb[:5], k=3, exclude=np.arange(5))
    assert not (idx2 == np.arange(5)[:, None]).any()
    np.testing.assert_array_equal(idx2[:, :2], idx[:, 1:])
    idx3, _ = index.query(emb[:2], k=3, exclude=[-1, 1])
    assert idx3[0, 0] == 0 and 1 not in idx3[1]


def test_bad_inputs_give_clear_errors():
    emb = np.random.default_rng(2).normal(size=(10, 4))
    index = neighbours.NeighbourIndex(emb)
    with pytest.raises(DataError, match="3 features but the index has 4"):
        index.query(np.zeros((1, 3)), k=2)
    with pytest.raises(ConfigError, match="k must be between 1 and 10"):
        index.query(emb[:1], k=11)
    with pytest.raises(ConfigError, match="k must be between 1 and 9"):
        index.query(emb[:1], k=10, exclude=[0])
    with pytest.raises(ConfigError, match="k must be between"):
        index.query(emb[:1], k=0)
    with pytest.raises(ConfigError, match="one integer row index"):
        index.query(emb[:2], k=2, exclude=[0])
    with pytest.raises(ConfigError, match="outside -1..9"):
        index.query(emb[:1], k=2, exclude=[10])
    bad = emb.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="non-finite values"):
        neighbours.NeighbourIndex(bad)
    with pytest.raises(DataError, match="non-finite"):
        index.query(bad[3:4], k=1)
    with pytest.raises(DataError, match="2-D array"):
        neighbours.NeighbourIndex(np.zeros(5))
    with pytest.raises(DataError, match="at least one row"):
        neighbours.NeighbourIndex(np.zeros((0, 4)))


def test_a_constant_feature_does_not_break_the_index():
    emb = np.random.default_rng(3).normal(size=(20, 3))
    emb[:, 2] = 7.0  # std 0 -> floored at 1e-6, the feature is 0 after standardising
    _, sim = neighbours.NeighbourIndex(emb).query(emb[:2], k=2)
    assert np.isfinite(sim).all()


def test_precision_at_k_on_a_known_case():
    # two tight clusters; train labels: cluster A -> class 0, cluster B -> class 1 except one B record with class 0
    rng = np.random.default_rng(4)
    a, b = np.array([10.0, 0.0]), np.array([0.0, 10.0])
    train = np.vstack([a + rng.normal(scale=0.01, size=(5, 2)), b + rng.normal(scale=0.01, size=(5, 2))])
    ytr = np.zeros((10, 2), dtype=int)
    ytr[:5, 0] = 1
    ytr[5:, 1] = 1
    ytr[9] = [1, 0]
    query = np.vstack([a, b])
    yq = np.array([[1, 0], [0, 1]])
    res = neighbours.precision_at_k(train, ytr, query, yq, k=5)
    # query A: 5/5 neighbours share class 0; query B: 4/5 share class 1
    assert res.value == pytest.approx(0.9)
    assert res.k == 5 and res.n_queries == 2
    assert 0.8 <= res.ci_low <= res.value <= res.ci_high <= 1.0
    again = neighbours.precision_at_k(train, ytr, query, yq, k=5)
    assert again == res  # the bootstrap is seeded
    with pytest.raises(DataError, match="train labels have 9 rows"):
        neighbours.precision_at_k(train, ytr[:9], query, yq, k=5)


@pytest.fixture
def isolated_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    neighbours.clear_cache()
    yield tmp_path / "cache"
    neighbours.clear_cache()


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_cli_on_the_bundled_data(bundled_prepared, isolated_cache, challenge_upload, tmp_path, capsys):
    base = ["neighbours", "--checkpoint", str(CHECKPOINT), "--data", str(bundled_prepared)]
    assert main([*base, "--record", "17", "-k", "4"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[2:]]
    assert len(rows) == 4 and [r[0] for r in rows] == ["1", "2", "3", "4"]
    assert "17" not in [r[1] for r in rows]  # the record does not find itself
    sims = [float(r[2]) for r in rows]
    assert sims == sorted(sims, reverse=True) and all(-1.0 <= s <= 1.0 for s in sims)
    assert list((isolated_cache / "embeddings").glob("*.npy"))  # the embeddings went to the tmp cache

    # an upload: a bundled Challenge record (12 leads, 500 Hz) copied to a folder of its own
    folder = challenge_upload
    assert main([*base, "--upload", str(folder), "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "upload JS00001" in out and len(out.splitlines()) == 5

    assert main([*base, "--record", "no-such-record"]) == 2
    assert "is not in" in capsys.readouterr().err
    assert main([*base, "--upload", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


class _SplitData:
    """Tiny prepared-dataset stand-in: 1-D signals whose sign encodes the label, with train/val/test rows."""

    def __init__(self) -> None:
        import pandas as pd

        #         train x6 (labels a,a,a,b,b,b)  val x2 (would be perfect)  test x3 (a, b, unlabelled)
        split = ["train"] * 6 + ["val"] * 2 + ["test"] * 3
        labels = ["a", "a", "a", "b", "b", "b", "a", "b", "a", "b", ""]
        sign = np.array([1, 1, 1, -1, -1, -1, 1, -1, 1, -1, 1], dtype=np.float32)
        offset = np.array([0.0, 0.1, 0.2, 0.0, 0.1, 0.2, 0.05, 0.05, 0.05, 0.05, 0.0], dtype=np.float32)
        self.signals = np.stack([sign, offset + 1.0], axis=1)[:, :, None]  # (N, 2 leads, 1 sample)
        self.records = pd.DataFrame({"split": split, "labels_toy": labels})
        self.label_calls: list[tuple[str, str]] = []

    def labels(self, label_set: str, protocol: str = "multilabel"):
        self.label_calls.append((label_set, protocol))
        classes = ["a", "b"]
        y = np.array([[lab == c for c in classes] for lab in self.records["labels_toy"]], dtype=np.float32)
        keep = np.flatnonzero(y.sum(1) >= 1)
        return keep, y[keep], classes


def test_evaluate_retrieval_known_answer_and_splits(monkeypatch):
    from aclecg.analysis import neighbours_eval

    data = _SplitData()
    seen: dict[str, np.ndarray] = {}

    def fake_precision(index_emb, index_y, query_emb, query_y, k, n_boot, seed):
        seen["index"], seen["query"] = np.asarray(index_emb), np.asarray(query_emb)
        return real(index_emb, index_y, query_emb, query_y, k=k, n_boot=n_boot, seed=seed)

    real = neighbours.precision_at_k
    monkeypatch.setattr(neighbours_eval, "precision_at_k", fake_precision)
    # an "encoder" whose embeddings are the row number: the index must hold rows 0-5, the queries rows 8, 9
    row_ids = np.arange(11, dtype=np.float32)[:, None] * np.ones((1, 2), dtype=np.float32)
    monkeypatch.setattr(neighbours_eval, "_embeddings", lambda source, dataset, cache_dir: row_ids)
    table = neighbours_eval.evaluate_retrieval([("rows", object())], data, label_set="toy", k=(1,), n_boot=50)
    assert seen["index"][:, 0].tolist() == [0, 1, 2, 3, 4, 5]  # train only: no val, no test
    assert seen["query"][:, 0].tolist() == [8, 9]  # labelled test only
    assert data.label_calls == [("toy", "multilabel")]

    # raw signal: the sign channel separates the classes, so every neighbour among 3 shares the label
    table = neighbours_eval.evaluate_retrieval([("raw", None)], data, label_set="toy", k=(1, 3, 4), n_boot=50)
    assert list(table.columns) == neighbours_eval.COLUMNS
    raw = table[table["name"] == "raw"].set_index("k")
    assert raw.loc[1, "precision"] == 1.0 and raw.loc[3, "precision"] == 1.0
    assert raw.loc[4, "precision"] == pytest.approx(0.75)  # the 4th neighbour has the other label
    assert (raw["n_queries"] == 2).all() and (raw["n_index"] == 6).all()
    assert (raw["ci_low"] <= raw["precision"]).all() and (raw["precision"] <= raw["ci_high"]).all()
    chance = table[table["name"] == neighbours_eval.CHANCE]
    assert chance["precision"].tolist() == pytest.approx([0.5, 0.5, 0.5])
    with pytest.raises(ConfigError, match="more than the 6"):
        neighbours_eval.evaluate_retrieval([("raw", None)], data, label_set="toy", k=(7,))


def test_neighbours_section_renders_the_csv(tmp_path):
    import pandas as pd

    from aclecg.results.report_sections import NEIGHBOURS_TITLE, neighbours_section

    rows = [["acl_ecg", k, 0.8, 0.7, 0.9, 128, 723, "superdiagnostic"] for k in (1, 5)] + [
        ["raw signal", k, 0.5, 0.4, 0.6, 128, 723, "superdiagnostic"] for k in (1, 5)
    ]
    path = tmp_path / "neighbours.csv"
    pd.DataFrame(
        rows, columns=["name", "k", "precision", "ci_low", "ci_high", "n_queries", "n_index", "label_set"]
    ).to_csv(path, index=False)
    lines = neighbours_section(path)
    assert lines[0] == NEIGHBOURS_TITLE
    assert "| acl_ecg | 0.800 [0.700, 0.900] | 0.800 [0.700, 0.900] |" in lines
    assert any("128 labelled test records" in line and "723 labelled training" in line for line in lines)


@pytest.mark.slow  # embeds the bundled records with three encoders: ~2 s
def test_cli_evaluate_writes_csv_and_markdown(bundled_prepared, isolated_cache, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "res" / "neighbours.csv"
    args = ["neighbours", "--evaluate", "--checkpoint", str(CHECKPOINT), "--data", str(bundled_prepared)]
    assert main([*args, "--ks", "1,5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out)
    assert set(table["name"]) == {"acl_ecg", "random_init", "raw signal", "chance"}
    assert sorted(set(table["k"])) == [1, 5] and len(table) == 8
    assert ((table["ci_low"] <= table["precision"]) & (table["precision"] <= table["ci_high"])).all()
    assert "raw signal" in printed and out.with_suffix(".md").read_text().startswith("## Similar-ECG search")
    assert main([*args, "--ks", "1,x"]) == 2


def test_similar_records_table_matches_the_index_and_leaves_the_query_out():
    import pandas as pd

    rng = np.random.default_rng(3)
    emb = rng.normal(size=(50, 8))
    records = pd.DataFrame(
        {"record_id": [f"r{i}" for i in range(50)], "labels_diag": ["MI" if i % 2 else "" for i in range(50)]},
        index=np.arange(100, 150),  # a non-default index must not shift rows
    )
    index = neighbours.NeighbourIndex(emb)
    table = neighbours.similar_records(index, records, emb[7], k=4, exclude_row=7, label_set="diag")
    want_idx, want_sim = _brute_force(emb, emb[7:8], 5)
    want_idx, want_sim = want_idx[0][want_idx[0] != 7][:4], want_sim[0][want_idx[0] != 7][:4]
    assert table["row"].tolist() == want_idx.tolist()
    np.testing.assert_allclose(table["similarity"], want_sim, atol=1e-5)
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert table["record_id"].tolist() == [f"r{i}" for i in want_idx]
    assert table["labels"].tolist() == ["MI" if i % 2 else "" for i in want_idx]
    with pytest.raises(DataError, match="no label set 'rhythm'"):
        neighbours.similar_records(index, records, emb[0], k=2, label_set="rhythm")
    with pytest.raises(DataError, match="49 rows but the index has 50"):
        neighbours.similar_records(index, records.iloc[:49], emb[0], k=2)


# ------------------------------------------------------------------------------------------- memory at scale
def _labels(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 5)) < 0.3).astype(int)


def test_blocked_search_gives_the_unblocked_precision_on_3000_x_64(monkeypatch):
    """Queries in blocks of rows against blocks of the index give the numbers of one unblocked product."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(3000, 64)).astype(np.float32)
    y = (rng.random((3000, 5)) < 0.3).astype(int)
    args = (emb[:2500], y[:2500], emb[2500:], y[2500:])
    monkeypatch.setattr(neighbours, "BLOCK_ENTRIES", 1 << 40)
    monkeypatch.setattr(neighbours, "QUERY_BLOCK", 10**9)
    monkeypatch.setattr(neighbours, "CHUNK_ENTRIES", 1 << 40)
    whole = [neighbours.precision_at_k(*args, k=k, n_boot=200) for k in (1, 5, 10)]
    monkeypatch.setattr(neighbours, "BLOCK_ENTRIES", 96 * 700)  # index blocks of 700 rows
    monkeypatch.setattr(neighbours, "QUERY_BLOCK", 96)
    monkeypatch.setattr(neighbours, "CHUNK_ENTRIES", 64 * 333)  # the index built 333 rows at a time
    blocked = neighbours.precision_at_k(*args, k=[1, 5, 10], n_boot=200)
    assert blocked == whole
    # the numbers of the code before blocking (one product over all queries), kept as counts out of 500 queries
    assert [r.value for r in whole] == pytest.approx([197 / 500, 945 / 2500, 1901 / 5000], abs=1e-12)


def test_raw_signal_precision_on_the_bundled_data_is_unchanged(bundled_prepared, monkeypatch):
    """The bundled PTB-XL raw-signal baseline read a block of rows at a time: the precision@k of before."""
    from aclecg.analysis import neighbours_eval
    from aclecg.data import PreparedDataset

    data = PreparedDataset(bundled_prepared)
    monkeypatch.setattr(neighbours, "CHUNK_ENTRIES", 12_000 * 100)  # 100 records per chunk
    monkeypatch.setattr(neighbours, "QUERY_BLOCK", 50)
    table = neighbours_eval.evaluate_retrieval([("raw", None)], data, k=(1, 5, 10), n_boot=50, chance=False)
    # as computed before blocking: 63 of 126 first neighbours, 307 of 630 and 602 of 1260 share a label
    assert table["precision"].tolist() == pytest.approx([63 / 126, 307 / 630, 602 / 1260], abs=1e-12)
    assert (table["n_index"] == 721).all() and (table["n_queries"] == 126).all()


def test_building_the_index_holds_one_float32_copy():
    """Statistics and standardisation run a chunk at a time: no float64 copy of the whole matrix."""
    import tracemalloc

    emb = np.random.default_rng(0).normal(size=(20_000, 200)).astype(np.float32)  # 16 MB
    tracemalloc.start()
    try:
        index = neighbours.NeighbourIndex(emb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(index) == 20_000
    assert peak < 1.5 * emb.nbytes, f"peak {peak / 2**20:.1f} MB for a {emb.nbytes / 2**20:.1f} MB matrix"


def test_chance_row_memory_is_a_block_of_queries_not_queries_x_index(monkeypatch):
    import tracemalloc

    from aclecg.analysis import neighbours_eval

    y = _labels(3000, 2).astype(np.float32)
    want = ((y[:1500] @ y[1500:].T) > 0).mean(axis=1).mean()
    monkeypatch.setattr(neighbours_eval, "QUERY_BLOCK", 128)
    tracemalloc.start()
    try:
        value, _, _ = neighbours_eval._chance(y[1500:], y[:1500], n_boot=10, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert value == pytest.approx(want, abs=1e-12)
    assert peak < 2**20, f"peak {peak / 2**20:.2f} MB: the 1500 x 1500 matrix alone is {1500 * 1500 * 4 / 2**20:.1f} MB"


class _MemmapData:
    """A prepared-dataset stand-in whose signals are memory-mapped from a .npy file, as PreparedDataset's are."""

    def __init__(self, folder: Path, n: int, samples: int):
        import pandas as pd

        rng = np.random.default_rng(5)
        sig = np.lib.format.open_memmap(folder / "signals.npy", mode="w+", dtype=np.float32, shape=(n, 12, samples))
        sig[:] = rng.standard_normal((n, 12, samples), dtype=np.float32)
        sig.flush()
        del sig
        self.signals = np.load(folder / "signals.npy", mmap_mode="r")
        self.records = pd.DataFrame({"split": np.where(np.arange(n) % 10 == 0, "test", "train")})
        self._y = _labels(n, 6).astype(np.float32)
        self._y[:, 0] = 1.0

    def labels(self, label_set: str, protocol: str = "multilabel"):
        return np.arange(len(self._y)), self._y, ["a", "b", "c", "d", "e"]


def test_raw_signal_evaluation_reads_the_memory_map_in_blocks(tmp_path):
    """The raw-signal index is built from the memory-mapped signals without gathering them into a second copy
    (before: the gathered rows, their reordered copy and float64 statistics: over 4x the train signals)."""
    import tracemalloc

    from aclecg.analysis import neighbours_eval

    data = _MemmapData(tmp_path, 1000, 500)  # 900 train records x 6000 values: 21 MB
    train_bytes = 900 * 12 * 500 * 4
    tracemalloc.start()
    try:
        table = neighbours_eval.evaluate_retrieval([("raw", None)], data, label_set="toy", k=(1, 5), n_boot=20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert table["n_index"].tolist() == [900] * 4 and (table["precision"] == 1.0).all()  # class a: everyone
    assert peak < 1.6 * train_bytes, f"peak {peak / 2**20:.1f} MB for {train_bytes / 2**20:.1f} MB of train signals"
