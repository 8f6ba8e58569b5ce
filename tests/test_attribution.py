"""aclecg.analysis.attribution: occlusion equals a direct per-region recomputation, the territory statistic on known
answers, the probe it explains, clear errors, and the CLI on the bundled data (a record and an upload)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aclecg import evaluation
from aclecg.analysis import attribution
from aclecg.analysis.attribution import LinearProbe, attribute, occlude, occlusion_units, territory_match, territory_of
from aclecg.cli import main
from aclecg.errors import ConfigError, DataError
from aclecg.leads import LEADS, default_region_map

REPO = Path(__file__).resolve().parent.parent
CHECKPOINT = REPO / "checkpoints" / "acl_ecg" / "encoder.pt"
TINY = {"stem_width": 4, "widths": [8, 8], "blocks": [1, 1], "kernel_size": 3, "feature_dim": 4}
REGIONS = ("septal", "anterior", "lateral", "inferior")


def _source(seed: int = 0):
    return evaluation.random_init_source(TINY, seed, LEADS, 100.0, 200)


def _probe(dim: int, classes=("MI", "NORM"), seed: int = 0) -> LinearProbe:
    rng = np.random.default_rng(seed)
    return LinearProbe(
        rng.normal(size=(dim, len(classes))),
        rng.normal(size=len(classes)),
        rng.normal(size=dim),
        rng.uniform(0.5, 2.0, size=dim),
        tuple(classes),
    )


@pytest.mark.parametrize("fill", ["zero", "median"])
def test_attribution_equals_a_direct_recomputation(fill):
    torch.manual_seed(0)
    source = _source()
    x = np.random.default_rng(1).normal(size=(3, 12, 200)).astype(np.float32)
    with torch.no_grad():
        dim = source.encoder(torch.from_numpy(x[:1])).embedding.shape[1]
    probe = _probe(dim)
    attr = attribute(source.encoder, probe, x, LEADS, fill=fill)
    assert attr.names[:4] == REGIONS and attr.names[4:] == LEADS
    assert attr.occluded.shape == (3, 16, 2) and attr.base.shape == (3, 2)

    def scores(windows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return probe.scores(source.encoder(torch.from_numpy(windows)).embedding.numpy())

    np.testing.assert_allclose(attr.base, scores(x), atol=1e-6)
    regions = default_region_map().regions
    for p, name in enumerate(attr.names):
        hidden = [LEADS.index(lead) for lead in regions[name]] if name in regions else [LEADS.index(name)]
        y = x.copy()
        for i in hidden:  # the cycle mask's fills: 0, or each lead's lower median over the window
            y[:, i] = 0.0 if fill == "zero" else np.sort(x[:, i], axis=-1)[:, (x.shape[-1] - 1) // 2, None]
        np.testing.assert_allclose(attr.occluded[:, p], scores(y), atol=1e-5, err_msg=name)
    np.testing.assert_allclose(attr.drops, attr.base[:, None] - attr.occluded)
    table = attr.table(1)
    assert len(table) == 16 * 2
    row = table[(table["unit"] == "inferior") & (table["class"] == "MI")].iloc[0]
    assert row["drop"] == pytest.approx(attr.base[1, 0] - attr.occluded[1, 3, 0])


def test_occlusion_leaves_other_leads_and_records_untouched():
    x = torch.randn(2, 12, 50)
    names, kinds, masks = occlusion_units(LEADS)
    out = occlude(x, torch.from_numpy(masks), "median")
    assert out.shape == (2, 16, 12, 50)
    for p in range(16):
        keep = ~masks[p]
        assert torch.equal(out[:, p][:, keep], x[:, keep])
    assert kinds.count("region") == 4 and kinds.count("lead") == 12
    # aVR is in no region of the default map: it is only ever occluded on its own
    assert masks[: kinds.count("region"), LEADS.index("aVR")].sum() == 0


def test_probe_weights_reproduce_the_fitted_probes_scores():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 6)) * rng.uniform(0.5, 3.0, size=6) + 2.0
    y = np.stack([(x[:, 0] + rng.normal(scale=0.5, size=120) > 2.0), x[:, 1] > 2.0], axis=1).astype(np.float32)
    res = evaluation.linear_probe(x[:80], y[:80], x[80:100], y[80:100], x[100:])
    probe = LinearProbe.from_result(res, ["a", "b"], "multilabel")
    np.testing.assert_allclose(probe.scores(x[100:]), res.test_scores, atol=1e-9)
    again = LinearProbe.from_arrays(probe.to_arrays())
    np.testing.assert_allclose(again.scores(x[:5]), probe.scores(x[:5]))
    assert again.classes == ("a", "b")


def test_territory_of_ptbxl_statements():
    assert territory_of("IMI;NORM") == "inferior"
    assert territory_of(["ILMI"]) == "inferior"
    assert territory_of("ASMI;LVH") == "anterior"
    assert territory_of("IMI;AMI") is None  # both territories: not a single-territory record
    assert territory_of("LMI;NORM") is None and territory_of("") is None


def test_territory_match_known_answers():
    terr = ["inferior"] * 4 + ["anterior"] * 4
    drops = np.zeros((8, 4))
    # inferior records: the model names inferior, inferior, inferior, lateral; anterior: septal, anterior, lateral x2
    for i, region in enumerate(["inferior"] * 3 + ["lateral", "septal", "anterior", "lateral", "lateral"]):
        drops[i, REGIONS.index(region)] = 1.0
    res = territory_match(drops, REGIONS, terr, n_boot=500, n_perm=500)
    assert res.match == pytest.approx(5 / 8)
    assert res.chance_uniform == pytest.approx((4 * 1 / 4 + 4 * 2 / 4) / 8)
    assert res.n_inferior == 4 and res.n_anterior == 4 and res.n_records == 8
    assert res.top_regions == {"septal": 1, "anterior": 1, "lateral": 3, "inferior": 3}
    assert res.ci_low <= res.match <= res.ci_high
    # a model that names inferior for every record matches exactly the inferior records, whatever the shuffle
    always = territory_match(np.tile([0.0, 0.0, 0.0, 1.0], (8, 1)), REGIONS, terr, n_perm=200)
    assert always.match == pytest.approx(0.5) and always.chance_permuted == pytest.approx(0.5)
    assert always.p_permutation == pytest.approx(1.0)
    # a perfect model beats its permutations
    perfect = np.zeros((8, 4))
    perfect[:4, 3] = 1.0
    perfect[4:, 1] = 1.0
    best = territory_match(perfect, REGIONS, terr, n_perm=400)
    assert best.match == 1.0 and best.p_permutation < 0.05 and best.chance_permuted < 0.8


def test_bad_inputs_give_clear_errors():
    source = _source()
    probe = _probe(8)
    with pytest.raises(DataError, match=r"\(N, 12, T\) in the encoder"):
        attribute(source.encoder, probe, np.zeros((1, 11, 200)), LEADS)
    bad = np.zeros((1, 12, 200), np.float32)
    bad[0, 3, 7] = np.nan
    with pytest.raises(DataError, match="NaN"):
        attribute(source.encoder, probe, bad, LEADS)
    with pytest.raises(ConfigError, match="fill must be"):
        occlude(torch.zeros(1, 12, 5), torch.zeros(1, 12, dtype=torch.bool), "mean")
    with pytest.raises(DataError, match="probe arrays disagree"):
        LinearProbe(np.zeros((4, 2)), np.zeros(3), np.zeros(4), np.ones(4), ("a", "b"))
    with pytest.raises(DataError, match="embeddings must be"):
        probe.scores(np.zeros((2, 5)))
    with torch.no_grad():
        dim = source.encoder(torch.zeros(1, 12, 200)).embedding.shape[1]
    attr = attribute(source.encoder, _probe(int(dim)), np.zeros((1, 12, 200)), LEADS)
    with pytest.raises(DataError, match="class 'STTC' is not one"):
        attr.region_drops("STTC")
    with pytest.raises(DataError, match="unknown territories"):
        territory_match(np.zeros((1, 4)), REGIONS, ["posterior"])
    with pytest.raises(DataError, match="drops must be"):
        territory_match(np.zeros((2, 3)), REGIONS, ["inferior", "anterior"])


@pytest.fixture
def isolated_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_cli_on_a_record_and_an_upload(bundled_prepared, isolated_cache, challenge_upload, tmp_path, capsys):
    base = ["attribute", "--checkpoint", str(CHECKPOINT), "--data", str(bundled_prepared)]
    assert main([*base, "--fit-probe"]) == 0  # what make app runs before serving
    assert "(superdiagnostic: CD, HYP, MI, NORM, STTC) is cached" in capsys.readouterr().out
    (fitted,) = (isolated_cache / "embeddings").glob("probe__*.npz")
    fitted_at = fitted.stat().st_mtime_ns
    out_csv = tmp_path / "one.csv"
    assert main([*base, "--record", "9", "--out", str(out_csv)]) == 0
    text = capsys.readouterr().out
    assert "record 9" in text and "inferior" in text and "V6" in text
    import pandas as pd

    table = pd.read_csv(out_csv)
    assert set(table["kind"]) == {"region", "lead"} and len(table) == 16 * 5
    probes = list((isolated_cache / "embeddings").glob("probe__*.npz"))
    assert probes == [fitted] and fitted.stat().st_mtime_ns == fitted_at  # fitted once, then read back

    # the table is what the library computes for that record with the cached probe
    from aclecg.analysis.attribution_eval import cached_probe, explain

    ds = evaluation.open_dataset(bundled_prepared)
    source = evaluation.load_source(CHECKPOINT)
    row = int(np.flatnonzero(ds.records["record_id"].astype(str).to_numpy() == "9")[0])
    direct = explain(source, cached_probe(source, ds), ds.signals[row : row + 1], ds.leads, ds.fs).table(0)
    np.testing.assert_allclose(table["drop"].to_numpy(), direct["drop"].to_numpy(), atol=1e-6)

    folder = challenge_upload
    assert main([*base, "--upload", str(folder), "--class", "MI", "--fill", "median"]) == 0
    text = capsys.readouterr().out
    assert "upload JS00001" in text and "median fill" in text

    assert main([*base, "--record", "no-such-record"]) == 2
    assert "is not in" in capsys.readouterr().err
    assert main([*base, "--record", "9", "--class", "XYZ"]) == 2
    assert "--class 'XYZ'" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "bad.hea").write_text("")
    assert main([*base, "--upload", str(empty / "bad.hea")]) == 2
    assert "bad" in capsys.readouterr().err


def test_territory_rows_are_the_single_territory_mi_records(bundled_prepared):
    from aclecg.analysis.attribution_eval import FOLD_PAIRS, mi_territory_rows

    ds = evaluation.open_dataset(bundled_prepared)
    rows, terr = mi_territory_rows(ds)
    codes = ds.records["labels_diagnostic"].astype(str).to_numpy()[rows]
    assert len(rows) == len(terr) > 0
    for c, t in zip(codes, terr):
        found = set(c.split(";"))
        assert found & attribution.TERRITORY_CODES[t]
        assert not found & attribution.TERRITORY_CODES["anterior" if t == "inferior" else "inferior"]
    assert sorted(f for pair in FOLD_PAIRS for f in pair) == list(range(1, 11))


def test_out_of_fold_probes_never_see_the_folds_they_explain(bundled_prepared, monkeypatch):
    from aclecg.analysis import attribution_eval

    ds = evaluation.open_dataset(bundled_prepared)
    keep, _, _ = ds.labels("superdiagnostic", "multilabel")
    folds = ds.records["fold"].to_numpy()[keep]
    seen: list[tuple[set, set]] = []

    def record(emb, y, train, val, classes, protocol):
        seen.append((set(folds[train].tolist()), set(folds[val].tolist())))
        return len(seen) - 1  # stands for the probe: which fit it was

    monkeypatch.setattr(attribution_eval, "_fit", record)
    probes = attribution_eval._out_of_fold_probes(np.zeros((len(ds), 3)), ds, "superdiagnostic")
    assert sorted(probes) == list(range(1, 11))
    for fold, fit in probes.items():
        train, val = seen[fit]
        assert fold not in train and fold not in val  # the explained fold is out of both
        assert len(train) == 6 and len(val) == 2 and not train & val
