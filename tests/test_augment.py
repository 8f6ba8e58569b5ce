"""Tests for aclecg.augment: shapes, ranges, identities, cycle alignment, regions, fallbacks, seeding, and the
batched implementation against the per-sample NumPy reference in benchmarks/bench_augment.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aclecg import augment as A
from aclecg.errors import ConfigError, DataError
from aclecg.leads import AUTHORS_LEADS, LEADS, default_region_map

FS = 100.0
ROOT = Path(__file__).resolve().parents[1]


def _load_reference():
    spec = importlib.util.spec_from_file_location("bench_augment", ROOT / "benchmarks" / "bench_augment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REF = _load_reference()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(batch: int = 16, irregular: float = 0.0, seed: int = 0, length: int = 1000):
    return A.make_synthetic_batch(batch, 12, length, fs=FS, irregular=irregular, generator=_gen(seed))


def _positive(batch: int = 16, seed: int = 0):
    """Signals bounded away from zero so that any zeroed sample shows which samples a mask hit."""
    x, rp = _batch(batch, seed=seed)
    return x.abs() + 1.0, rp


def _valid(row: torch.Tensor) -> np.ndarray:
    return row[row >= 0].numpy()


# ---------------------------------------------------------------------------------------------------------------
# shapes, dtypes, registry, config
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("spec", ["physio", "standard", "none", "every"])
def test_shape_dtype_device_kept(spec, dtype):
    x, rp = _batch(4)
    x = x.to(dtype)
    if spec == "every":
        spec = [{"name": name} for name in A.AUGMENTATIONS]
    y, info = A.build_augmentation(spec).forward_with_info(x, rp, generator=_gen(1))
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert torch.isfinite(y).all()
    for step_info in info.values():
        assert step_info["applied"].shape == (4,)
        assert step_info["rpeaks"].shape[0] == 4


def test_presets_are_plain_data_and_config_round_trips():
    assert json.loads(json.dumps(A.PRESETS)) == A.PRESETS
    x, rp = _batch(6)
    for name in A.PRESETS:
        aug = A.build_augmentation(name)
        again = A.build_augmentation(json.loads(json.dumps(aug.config())))
        assert torch.equal(aug(x, rp, _gen(5)), again(x, rp, _gen(5)))
    assert [s["name"] for s in A.PRESETS["physio"]] == ["random_scale_crop", "cardiac_cycle_mask", "temporal_shift"]
    from aclecg.constraints import AUGMENTATION_PRESETS

    assert tuple(A.PRESETS) == AUGMENTATION_PRESETS  # the torch-free name list the CLI and methods read


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("bogus", "bogus"),
        ([{"name": "nope"}], "nope"),
        ([{"name": "random_scale_crop", "scale": [0.0, 1.0]}], "'scale'"),
        ([{"name": "random_scale_crop", "scale": [0.9, 0.5]}], "low <= high"),
        ([{"name": "random_scale_crop", "sclae": [0.5, 1.0]}], "'sclae'"),
        ([{"name": "temporal_shift", "max_shift": "beat"}], "'max_shift'"),
        ([{"name": "temporal_shift", "mode": "wrap"}], "'mode'"),
        ([{"name": "cardiac_cycle_mask", "n_cycles": [1.5, 2]}], "'n_cycles'"),
        ([{"name": "cardiac_cycle_mask", "scope": "posterior"}], "'scope'"),
        ([{"name": "gaussian_noise", "std": -1}], "'std'"),
        ([{"name": "lead_dropout", "p": 2}], "'p'"),
        ([{"name": "amplitude_scale", "per_lead": "yes"}], "'per_lead'"),
        ([{"scale": 1}], "'name'"),
        ({"name": "time_out"}, "list"),
    ],
)
def test_config_errors_name_the_key(spec, needle):
    with pytest.raises(ConfigError) as err:
        A.build_augmentation(spec)
    assert needle in str(err.value)


def test_bad_inputs_raise_data_errors():
    aug = A.build_augmentation("physio")
    x, rp = _batch(2)
    with pytest.raises(DataError, match="shape"):
        aug(x[0])
    with pytest.raises(DataError, match="beyond"):
        aug(x, torch.full((2, 3), 5000))
    with pytest.raises(DataError, match="rpeaks"):
        aug(x, rp[:1])
    region = A.build_augmentation([{"name": "cardiac_cycle_mask", "scope": "inferior"}])
    with pytest.raises(DataError, match="leads"):
        region(x[:, :8], rp)  # region table built for 12 leads
    assert aug(x[:, :8], rp).shape == (2, 8, 1000)  # all-lead masking does not care about the lead order


# ---------------------------------------------------------------------------------------------------------------
# identities and ranges
# ---------------------------------------------------------------------------------------------------------------


def test_identity_when_parameters_are_zero():
    x, rp = _batch(8)
    spec = [
        {"name": "random_scale_crop", "scale": [1.0, 1.0]},
        {"name": "cardiac_cycle_mask", "n_cycles": [0, 0]},
        {"name": "temporal_shift", "max_shift": 0},
        {"name": "time_out", "fraction": [0, 0]},
        {"name": "gaussian_noise", "std": [0, 0]},
        {"name": "amplitude_scale", "scale": [1, 1], "per_lead": True},
        {"name": "baseline_wander", "amplitude": [0, 0]},
        {"name": "lead_dropout", "drop_prob": 0.0},
    ]
    y, info = A.build_augmentation(spec).forward_with_info(x, rp, _gen(0))
    assert torch.equal(y, x)
    assert torch.equal(info["7:lead_dropout"]["rpeaks"], A.sanitize_rpeaks(rp, x))
    assert torch.equal(A.build_augmentation("none")(x, rp), x)
    # no cycles asked for and no peaks: no fallback span either
    y, info = A.CardiacCycleMask(n_cycles=0).forward_with_info(x, None, _gen(0))
    assert torch.equal(y, x) and not info["fallback"].any()
    # p = 0 disables any step
    y0 = A.build_augmentation([dict(s, p=0.0) for s in A.PRESETS["physio"]])(x, rp, _gen(1))
    assert torch.equal(y0, x)


def test_crop_fraction_within_range_and_window_inside_signal():
    x, rp = _batch(256)
    y, info = A.RandomScaleCrop(scale=(0.6, 0.8)).forward_with_info(x, rp, _gen(3))
    start, end, frac = info["start"], info["end"], info["fraction"]
    assert (start >= 0).all() and (end <= 1000).all()
    assert torch.allclose((end - start).float() / 1000, frac)
    assert frac.min() >= 0.6 - 1e-3 and frac.max() <= 0.8 + 1e-3
    assert frac.std() > 0.03  # actually random per sample
    # the first and last output samples are the window's end points
    b = torch.arange(256)
    assert torch.allclose(y[b, :, 0], x[b, :, start])
    assert torch.allclose(y[b, :, -1], x[b, :, end - 1], atol=1e-5)


def test_crop_maps_rpeaks_onto_the_resampled_beats():
    """An independent check of the peak mapping: spikes at the R-peaks land on the mapped positions."""
    _, rp = _batch(32)
    x = torch.zeros(32, 12, 1000)
    peaks = A.sanitize_rpeaks(rp, x)
    t = torch.arange(1000).float()
    centres = torch.where(peaks >= 0, peaks, -10_000).float()
    x += torch.exp(-0.5 * ((t - centres[:, :, None]) / 3.0) ** 2).sum(1)[:, None, :]
    y, info = A.RandomScaleCrop(scale=(0.5, 0.9)).forward_with_info(x, rp, _gen(4))
    for b in range(32):  # test-side loop only
        out = _valid(info["rpeaks"][b])
        kept = _valid(peaks[b])
        kept = kept[(kept >= int(info["start"][b])) & (kept < int(info["end"][b]))]
        assert len(out) == len(kept)
        for r in out:
            lo, hi = max(r - 4, 0), min(r + 5, 1000)
            local = y[b, 0, lo:hi]
            if 0 < r < 999:
                assert abs(lo + int(local.argmax()) - r) <= 1


def test_shift_is_within_one_beat_and_moves_peaks():
    x, rp = _batch(64)
    peaks = A.sanitize_rpeaks(rp, x)
    y, info = A.TemporalShift().forward_with_info(x, rp, _gen(2))
    rr = torch.tensor([np.sort(np.diff(_valid(r)))[(len(_valid(r)) - 2) // 2] for r in peaks]).float()
    assert torch.equal(info["max_shift"], rr)
    assert (info["shift"].abs() <= rr).all() and info["shift"].abs().max() > 0
    for b in range(0, 64, 7):
        d = int(info["shift"][b])
        assert torch.equal(y[b], torch.roll(x[b], d, dims=-1))
        assert np.array_equal(_valid(info["rpeaks"][b]), np.sort((_valid(peaks[b]) + d) % 1000))
    # without peaks the limit is 1 s
    _, info = A.TemporalShift().forward_with_info(x, None, _gen(2))
    assert (info["max_shift"] == FS).all()


# ---------------------------------------------------------------------------------------------------------------
# cardiac-cycle masking
# ---------------------------------------------------------------------------------------------------------------


def _zeroed_time(y: torch.Tensor) -> torch.Tensor:
    return (y == 0).all(dim=-2)


def _check_whole_cycles(y, peaks, info, window="rr"):
    for b in range(y.shape[0]):
        row = _valid(peaks[b])
        spans = [tuple(s) for s in info["cycles"][b].tolist() if s[0] >= 0]
        expected = np.zeros(y.shape[-1], bool)
        for s, e in spans:
            if window == "rr":
                k = int(np.searchsorted(row, s))
                assert row[k] == s and row[k + 1] == e, (b, s, e, row)  # consecutive R-peaks
            else:
                assert ((row >= s) & (row < e)).sum() == 1  # exactly one R-peak inside
            expected[s:e] = True
        assert np.array_equal(_zeroed_time(y[b]).numpy(), expected)


def test_masked_spans_are_whole_cycles_aligned_with_rpeaks():
    x, rp = _positive(64)
    aug = A.CardiacCycleMask(n_cycles=(1, 3))
    y, info = aug.forward_with_info(x, rp, _gen(7))
    peaks = A.sanitize_rpeaks(rp, x)
    _check_whole_cycles(y, peaks, info)
    counts = (info["cycles"][..., 0] >= 0).sum(1)
    assert counts.min() >= 1 and counts.max() <= 3 and len(counts.unique()) > 1
    assert not info["fallback"].any()


def test_physio_masks_whole_cycles_of_the_cropped_signal():
    x, rp = _positive(64)
    spec = [{"name": "random_scale_crop"}, {"name": "cardiac_cycle_mask", "n_cycles": [2, 2]}]
    y, info = A.build_augmentation(spec).forward_with_info(x, rp, _gen(8))
    crop_peaks = info["0:random_scale_crop"]["rpeaks"]
    # the crop's interpolation never produces exact zeros from a positive signal, so zeros are the mask
    _check_whole_cycles(y, crop_peaks, info["1:cardiac_cycle_mask"])


def test_pqrst_window_contains_one_r_peak_each():
    # a fast rhythm (120-180 bpm) so that the 0.25 s + 0.45 s window must be clipped at the neighbouring beats
    x, rp = A.make_synthetic_batch(32, bpm=(120, 180), fs=FS, generator=_gen(2))
    x = x.abs() + 1
    aug = A.CardiacCycleMask(n_cycles=(2, 2), window="pqrst", pre_s=0.4)
    y, info = aug.forward_with_info(x, rp, _gen(9))
    _check_whole_cycles(y, A.sanitize_rpeaks(rp, x), info, window="pqrst")


def test_irregular_af_like_rhythm():
    x, rp = A.make_synthetic_batch(64, irregular=0.45, bpm=(70, 150), fs=FS, generator=_gen(11))
    x = x.abs() + 1
    peaks = A.sanitize_rpeaks(rp, x)
    rr = np.diff(_valid(peaks[0]))
    assert rr.std() > 5  # really irregular
    y, info = A.CardiacCycleMask(n_cycles=(1, 4)).forward_with_info(x, rp, _gen(12))
    _check_whole_cycles(y, peaks, info)
    lengths = (info["cycles"][..., 1] - info["cycles"][..., 0])[info["cycles"][..., 0] >= 0]
    assert lengths.float().std() > 5  # cycles follow the irregular RR intervals
    y, info = A.build_augmentation("physio").forward_with_info(x, rp, _gen(13))
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("rpeaks", ["none", "empty", "padded", "single"])
def test_no_rpeak_fallback(rpeaks):
    x = torch.ones(8, 12, 1000)
    given = {
        "none": None,
        "empty": torch.zeros(8, 0, dtype=torch.long),
        "padded": torch.full((8, 5), -1),
        "single": torch.tensor([[300, -1]] * 8),
    }[rpeaks]
    y, info = A.CardiacCycleMask(n_cycles=(1, 2), fallback_s=0.8).forward_with_info(x, given, _gen(0))
    assert info["fallback"].all()
    spans = info["cycles"]
    assert ((spans[:, 0, 1] - spans[:, 0, 0]) == 80).all() and (spans[:, 1] == -1).all()
    assert (spans[:, 0, 0] >= 0).all() and (spans[:, 0, 1] <= 1000).all()
    assert ((y == 0).all(1).sum(-1) == 80).all()
    assert len(spans[:, 0, 0].unique()) > 1  # random positions
    assert torch.isfinite(A.build_augmentation("physio")(x, given, _gen(1))).all()


def test_region_masking_touches_only_that_region():
    x, rp = _positive(32)
    regions = default_region_map().regions
    y = A.CardiacCycleMask(scope="inferior").forward_with_info(x, rp, _gen(3))[0]
    changed = (y != x).any(-1).any(0)
    expected = torch.tensor([lead in regions["inferior"] for lead in LEADS])
    assert torch.equal(changed, expected)

    y, info = A.CardiacCycleMask(scope="random_region").forward_with_info(x, rp, _gen(4))
    names = info["region_names"]
    assert len(info["region"].unique()) > 1
    for b in range(32):
        region = names[int(info["region"][b])]
        changed = (y[b] != x[b]).any(-1)
        assert torch.equal(changed, torch.tensor([lead in regions[region] for lead in LEADS]))
        assert torch.equal(info["lead_mask"][b], changed)


def test_region_masking_follows_the_given_lead_order():
    x, rp = _positive(8)
    x = x[:, :8]
    aug = A.build_augmentation([{"name": "cardiac_cycle_mask", "scope": "septal"}], leads=AUTHORS_LEADS)
    y = aug(x, rp, _gen(0))
    changed = (y != x).any(-1).any(0)
    assert torch.equal(changed, torch.tensor([lead in ("V1", "V2") for lead in AUTHORS_LEADS]))


def test_median_fill_uses_each_leads_median():
    x, rp = _batch(4)
    y, info = A.CardiacCycleMask(fill="median").forward_with_info(x, rp, _gen(5))
    s, e = info["cycles"][0, 0].tolist()
    med = np.sort(x[0].numpy(), axis=1)[:, (1000 - 1) // 2]
    assert np.allclose(y[0, :, s:e].numpy(), med[:, None])


# ---------------------------------------------------------------------------------------------------------------
# baselines
# ---------------------------------------------------------------------------------------------------------------


def test_time_out_zeroes_one_span_of_the_drawn_length():
    x, rp = _positive(128)
    y, info = A.TimeOut(fraction=(0.1, 0.3)).forward_with_info(x, rp, _gen(6))
    width = info["end"] - info["start"]
    assert width.min() >= 100 and width.max() <= 300
    assert torch.equal(_zeroed_time(y).sum(-1), width)


def test_noise_scale_wander_dropout_follow_their_info():
    x, rp = _batch(64)
    y, info = A.GaussianNoise(std=(0.05, 0.5)).forward_with_info(x, rp, _gen(1))
    measured = (y - x).flatten(1).std(1)
    assert torch.allclose(measured, info["std"], rtol=0.1)

    y, info = A.AmplitudeScale(per_lead=True).forward_with_info(x, rp, _gen(2))
    assert torch.allclose(y, x * info["scale"][:, :, None])
    assert info["scale"].min() >= 0.8 and info["scale"].max() <= 1.2

    y, info = A.BaselineWander().forward_with_info(x, rp, _gen(3))
    t = np.arange(1000) / FS
    b = 5
    drift = sum(
        info["amplitude"][b, :, k, None].numpy()
        * np.sin(2 * np.pi * float(info["freq"][b, k]) * t + float(info["phase"][b, k]))
        for k in range(2)
    )
    assert np.allclose((y - x)[b].numpy(), drift, atol=1e-5)

    y, info = A.LeadDropout(drop_prob=1.0, min_keep=2).forward_with_info(x, rp, _gen(4))
    assert ((~info["dropped"]).sum(1) == 2).all()
    assert torch.equal((y == 0).all(-1), info["dropped"])


def test_p_applies_to_a_fraction_of_samples():
    x, rp = _batch(256)
    y, info = A.build_augmentation([{"name": "gaussian_noise", "p": 0.5}]).forward_with_info(x, rp, _gen(0))
    applied = info["0:gaussian_noise"]["applied"]
    assert 80 < int(applied.sum()) < 176
    assert torch.equal((y != x).any(-1).any(-1), applied)


# ---------------------------------------------------------------------------------------------------------------
# determinism, devices, fusion, reference
# ---------------------------------------------------------------------------------------------------------------


def test_reproducible_by_seed():
    x, rp = _batch(8)
    aug = A.build_augmentation("physio")
    a, b, c = aug(x, rp, _gen(42)), aug(x, rp, _gen(42)), aug(x, rp, _gen(43))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(0)
    d = aug(x, rp)
    torch.manual_seed(0)
    assert torch.equal(d, aug(x, rp))


@pytest.mark.parametrize("spec", ["physio", "standard", "mixed"])
def test_fused_pipeline_equals_step_by_step(spec):
    if spec == "mixed":
        spec = [
            {"name": "random_scale_crop", "p": 0.7},
            {"name": "temporal_shift", "mode": "zero"},
            {"name": "time_out", "p": 0.5},
            {"name": "cardiac_cycle_mask", "fill": "median"},
            {"name": "temporal_shift", "mode": "edge", "max_shift": 0.5},
            {"name": "random_scale_crop"},
            {"name": "cardiac_cycle_mask", "window": "pqrst"},
        ]
    x, rp = _batch(16)
    fused = A.build_augmentation(spec)
    plain = A.Compose(fused.steps, fuse=False)
    y1, i1 = fused.forward_with_info(x, rp, _gen(1))
    y2, i2 = plain.forward_with_info(x, rp, _gen(1))
    assert torch.allclose(y1, y2, atol=1e-6)
    assert all(torch.equal(i1[k]["rpeaks"], i2[k]["rpeaks"]) for k in i1)


@pytest.mark.parametrize("spec", ["physio", "standard", "mixed"])
def test_call_without_info_equals_forward_with_info(spec):
    """``aug(x)`` skips the info (and R-peak bookkeeping no later step reads) but must give the same views."""
    if spec == "mixed":
        spec = [
            {"name": "temporal_shift", "mode": "zero", "p": 0.5},
            {"name": "random_scale_crop", "p": 0.7},
            {"name": "cardiac_cycle_mask", "scope": "random_region"},
            {"name": "time_out"},
            {"name": "temporal_shift", "max_shift": "rr"},
            {"name": "cardiac_cycle_mask", "n_cycles": [0, 3]},
        ]
    x, rp = _batch(16, irregular=0.2)
    aug = A.build_augmentation(spec)
    for seed in range(3):
        y_fast = aug(x, rp, _gen(seed))
        y_full, _ = aug.forward_with_info(x, rp, _gen(seed))
        assert torch.equal(y_fast, y_full)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu_with_a_cpu_generator():
    x, rp = _batch(16)
    for spec in ("physio", [{"name": n} for n in A.AUGMENTATIONS]):
        aug = A.build_augmentation(spec)
        cpu = aug(x, rp, _gen(3))
        gpu = aug(x.cuda(), rp.cuda(), _gen(3))
        assert gpu.is_cuda
        assert torch.allclose(cpu, gpu.cpu(), atol=1e-5)
    gen = torch.Generator(device="cuda").manual_seed(0)
    assert aug(x.cuda(), rp.cuda(), gen).is_cuda
    with pytest.raises(ConfigError):
        aug(x, rp, gen)


def test_batched_matches_numpy_reference_for_fixed_parameters():
    x, rp = _batch(24, irregular=0.3, seed=3)
    x_np = x.numpy().astype(np.float64)
    peaks = A.sanitize_rpeaks(rp, x)
    gen = _gen(5)

    crop = A.RandomScaleCrop()
    params = crop.sample_params(x, peaks, gen)
    yc, pc, _ = crop.apply(x, peaks, params)
    for b in range(24):
        ref_y, ref_p = REF.ref_crop(x_np[b], _valid(peaks[b]), int(params["start"][b]), int(params["width"][b]))
        assert np.allclose(yc[b].numpy(), ref_y, atol=1e-5)
        assert np.array_equal(_valid(pc[b]), ref_p)

    for window, fill, scope in (("rr", "zero", "all"), ("pqrst", "median", "random_region")):
        mask = A.CardiacCycleMask(n_cycles=(0, 3), window=window, fill=fill, scope=scope)
        params = mask.sample_params(yc, pc, gen)
        ym, _, info = mask.apply(yc, pc, params)
        for b in range(24):
            row = _valid(pc[b])
            n_keys = len(row) - 1 if window == "rr" else len(row)
            ref_y, ref_spans = REF.ref_cycle_mask(
                yc[b].numpy(),
                row,
                int(params["count"][b]),
                params["keys"][b, :n_keys].numpy(),
                float(params["fallback_u"][b]),
                info["lead_mask"][b].numpy(),
                window=window,
                fill=fill,
            )
            assert [tuple(s) for s in info["cycles"][b].tolist() if s[0] >= 0] == ref_spans
            assert np.allclose(ym[b].numpy(), ref_y)

    for mode in ("circular", "zero", "edge"):
        shift = A.TemporalShift(mode=mode)
        params = shift.sample_params(yc, pc, gen)
        ys, ps, _ = shift.apply(yc, pc, params)
        for b in range(24):
            row = _valid(pc[b])
            assert float(params["max_shift"][b]) == REF.ref_median_rr(row, FS)
            ref_y, ref_p = REF.ref_shift(yc[b].numpy(), row, int(params["shift"][b]), mode)
            assert np.array_equal(ys[b].numpy(), ref_y)
            assert np.array_equal(_valid(ps[b]), np.sort(ref_p))


def test_numpy_loop_is_a_physio_aug():
    """The benchmark's NumPy loop does the same kind of work: it masks whole cycles and keeps the shape."""
    x, rp = _positive(4)
    out = REF.numpy_physio_loop(x.numpy(), rp.numpy(), np.random.default_rng(0))
    assert out.shape == x.shape
    zeros = (out == 0).all(1).sum(-1)
    assert (zeros > 20).all()


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------


def test_cli_synthetic(tmp_path, capsys):
    from aclecg.cli import main

    rc = main(["augment", "--synthetic", "--spec", "physio", "--seed", "3", "--save", str(tmp_path)])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in report["spec"]] == ["random_scale_crop", "cardiac_cycle_mask", "temporal_shift"]
    assert len(report["views"]) == 2
    assert "cycles" in report["views"][0]["1:cardiac_cycle_mask"]
    view = np.load(tmp_path / "view1.npy")
    assert view.shape == np.load(tmp_path / "original.npy").shape == (12, 1000)


def test_cli_rejects_bad_spec(capsys):
    from aclecg.cli import main

    assert main(["augment", "--synthetic", "--spec", '[{"name": "time_out", "fraction": [0, 2]}]']) == 2
    assert "fraction" in capsys.readouterr().err


def test_the_rate_keeping_crop_keeps_its_window_in_place_and_zeroes_the_rest():
    x, rp = A.make_synthetic_batch(6, fs=100, generator=_gen(4))
    for fuse_with_shift in (False, True):
        spec = [{"name": "random_scale_crop", "scale": [0.5, 0.8], "resample": False}]
        if fuse_with_shift:  # folded into one warp with a (zero) shift: the same output
            spec.append({"name": "temporal_shift", "max_shift": 0.0, "mode": "zero"})
        y, info = A.build_augmentation(spec, fs=100).forward_with_info(x, rp, _gen(5))
        part = next(v for k, v in info.items() if k.endswith("random_scale_crop"))
        t = torch.arange(x.shape[-1])
        for i in range(6):
            keep = (t >= part["start"][i]) & (t < part["end"][i])
            assert torch.equal(y[i][:, keep], x[i][:, keep])
            assert (y[i][:, ~keep] == 0).all() and 0.5 <= float(part["fraction"][i]) <= 0.8
    y, peaks, _ = A.build_augmentation(spec[:1], fs=100).step(x, rp, _gen(5))
    kept = peaks[peaks >= 0]
    assert set(kept.tolist()) <= set(rp[rp >= 0].tolist())  # peaks stay where they were; outside ones are dropped


def test_the_crop_refuses_a_resample_that_is_not_a_boolean():
    with pytest.raises(ConfigError, match="'resample' must be true or false"):
        A.build_augmentation([{"name": "random_scale_crop", "resample": "no"}])
