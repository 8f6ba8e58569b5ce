"""The C time-geometry kernel (aclecg/native) against its specification, the torch code of render_warp: random
warps of every kind, both code paths (AVX-512 and the portable loop), odd lengths, threads, and the fallbacks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aclecg import augment as A
from aclecg import native

pytestmark = pytest.mark.skipif(not native.available(), reason=f"C kernel unavailable: {native.describe()}")


def _random_warp(x: torch.Tensor, gen: torch.Generator, mode: str, n_spans: int, regions: bool) -> A.Warp:
    batch, n_leads, length = x.shape
    u = torch.rand(batch, 4, generator=gen, dtype=torch.float64)
    width = torch.clamp(torch.round((0.05 + 0.95 * u[:, 0]) * length), 2, length)
    width[0] = length  # sample 0: no crop
    start = torch.floor(u[:, 1] * (length - width + 1))
    step = (width - 1) / max(length - 1, 1)
    shift = torch.floor((2 * u[:, 2] - 1) * 1.5 * length).long()  # also beyond +-T
    shift[1 % batch] = 0
    lo = torch.randint(-length // 4, length, (batch, n_spans), generator=gen)
    hi = lo + torch.randint(0, length // 2 + 1, (batch, n_spans), generator=gen)
    spans = torch.stack([lo, hi], dim=-1)  # lo < 0 marks an unused span
    if regions:
        leads = torch.rand(batch, n_spans, n_leads, generator=gen) < 0.5
    else:
        leads = torch.ones(batch, n_spans, n_leads, dtype=torch.bool)
    return dataclasses.replace(A.Warp.identity(x), start=start, step=step, shift=shift, mode=mode, spans=spans,
                               span_leads=leads, has_crop=True, has_shift=True)


def _both(x: torch.Tensor, warp: A.Warp) -> tuple[torch.Tensor, torch.Tensor]:
    fast = native.timewarp(x, warp.start, warp.step, warp.shift, warp.mode, warp.spans, warp.span_leads)
    assert fast is not None
    with native.use(False):
        reference = A.render_warp(x, warp)
    return fast, reference


@pytest.mark.parametrize("portable", [False, True], ids=["simd", "portable"])
@pytest.mark.parametrize("mode", ["circular", "zero", "edge"])
@pytest.mark.parametrize("length", [2, 3, 17, 31, 32, 33, 100, 1001])
def test_kernel_equals_torch_specification(portable, mode, length):
    gen = torch.Generator().manual_seed(length)
    x = torch.randn(7, 5, length, generator=gen)
    for n_spans, regions in ((0, False), (3, False), (5, True)):
        warp = _random_warp(x, gen, mode, n_spans, regions)
        with native.portable(portable):
            fast, reference = _both(x, warp)
        assert fast.shape == x.shape and fast.dtype == x.dtype
        torch.testing.assert_close(fast, reference, rtol=1e-6, atol=1e-6)


def test_large_batch_threads_and_streaming_stores_agree():
    """A 12 MB batch takes the threaded, non-temporal-store path; it must equal the torch code too."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 12, 1000, generator=gen)
    warp = _random_warp(x, gen, "circular", 2, False)
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            fast, reference = _both(x, warp)
            torch.testing.assert_close(fast, reference, rtol=1e-6, atol=1e-6)
    finally:
        torch.set_num_threads(threads)


def test_identity_warp_copies_exactly_and_masks_give_exact_zeros():
    x = torch.randn(3, 12, 250)
    y = native.timewarp(x, *_fields(A.Warp.identity(x)))
    assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()
    x[0, 0, 10] = float("nan")
    warp = A.Warp.identity(x).with_spans(torch.tensor([[[5, 20]]] * 3), torch.ones(3, 1, 12, dtype=torch.bool))
    y = native.timewarp(x, *_fields(warp))
    assert (y[:, :, 5:20] == 0).all()  # zero even where the input was NaN
    assert torch.equal(y[:, :, 20:], x[:, :, 20:])


def _fields(warp: A.Warp):
    return warp.start, warp.step, warp.shift, warp.mode, warp.spans, warp.span_leads


def test_pipelines_are_the_same_with_and_without_the_kernel():
    x, rp = A.make_synthetic_batch(32, 12, 1000, generator=torch.Generator().manual_seed(0))
    specs = ["physio", "standard",
             [{"name": "random_scale_crop", "p": 0.6}, {"name": "time_out", "p": 0.5},
              {"name": "cardiac_cycle_mask", "scope": "random_region"}, {"name": "temporal_shift", "mode": "zero"},
              {"name": "cardiac_cycle_mask", "window": "pqrst"}, {"name": "random_scale_crop"}]]
    for spec in specs:
        aug = A.build_augmentation(spec)
        fast = aug(x, rp, torch.Generator().manual_seed(5))
        with native.use(False):
            slow = aug(x, rp, torch.Generator().manual_seed(5))
        torch.testing.assert_close(fast, slow, rtol=1e-6, atol=1e-6)


def test_not_applicable_inputs_return_none():
    x = torch.randn(2, 12, 100)
    warp = A.Warp.identity(x)
    assert native.timewarp(x.double(), *_fields(warp)) is None
    assert native.timewarp(x.requires_grad_(), *_fields(warp)) is None
    with native.use(False):
        assert native.timewarp(x.detach(), *_fields(warp)) is None
        assert not native.enabled() and "switched off" in native.describe()
    assert native.enabled()


def test_switch_off_by_environment(monkeypatch):
    monkeypatch.setenv("ACLECG_NATIVE", "0")
    assert not native.available()
    assert native.timewarp(torch.randn(1, 1, 10), *_fields(A.Warp.identity(torch.randn(1, 1, 10)))) is None


def test_a_failing_compiler_is_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a compiler that always fails
    with pytest.raises(native.NativeUnavailable, match="failed"):
        native.build()
    monkeypatch.setattr(native, "_state", {})
    assert not native.available()
    assert "unavailable" in native.describe()
    x = torch.randn(2, 12, 100)
    y = A.build_augmentation("physio")(x, None, torch.Generator().manual_seed(0))  # the torch code takes over
    assert y.shape == x.shape
    assert not list(tmp_path.rglob("*.so"))


def test_build_is_cached_per_source_and_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path))
    first = native.build()
    stamp = first.stat().st_mtime_ns
    assert native.build() == first and first.stat().st_mtime_ns == stamp
    assert first.parent.parent == tmp_path / "native"


PHYSIO_VARIANTS = [
    {},
    {"window": "pqrst", "n_cycles": [0, 3]},
    {"scope": "random_region", "n_cycles": [2, 2]},
    {"scope": "inferior", "max_shift": 0.37, "mode": "zero"},
    {"scope": "lateral", "window": "pqrst", "mode": "edge", "scale": [0.05, 0.3]},
    {"n_cycles": [0, 0], "scale": [1.0, 1.0]},
    {"n_cycles": [5, 16], "fallback_s": 0.0},
]


def _physio(variant: dict, fs: float = 100.0):
    crop = {"name": "random_scale_crop", **{k: v for k, v in variant.items() if k == "scale"}}
    mask = {"name": "cardiac_cycle_mask",
            **{k: v for k, v in variant.items() if k in ("window", "n_cycles", "scope", "fallback_s")}}
    shift = {"name": "temporal_shift", **{k: v for k, v in variant.items() if k in ("max_shift", "mode")}}
    return A.build_augmentation([crop, mask, shift], fs=fs)


@pytest.mark.parametrize("portable", [False, True], ids=["simd", "portable"])
@pytest.mark.parametrize("variant", PHYSIO_VARIANTS, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v) or "default")
def test_physio_in_one_call_equals_the_torch_planning(variant, portable):
    """``aug(x)`` takes the one-call C path for this pipeline; ``forward_with_info`` plans in torch and renders the
    same warp with the kernel: the views must be identical, for regular, irregular, short and peak-less records."""
    aug = _physio(variant)
    cases = [A.make_synthetic_batch(24, 12, 1000, irregular=0.3, generator=torch.Generator().manual_seed(1)),
             A.make_synthetic_batch(9, 12, 250, bpm=(40, 180), generator=torch.Generator().manual_seed(2))]
    x, rp = cases[0]
    cases += [(x, None), (x, rp[:, :1]), (x, torch.full((24, 3), -1))]
    calls = []
    original = native.physio

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    with native.portable(portable), pytest.MonkeyPatch.context() as mp:
        mp.setattr(native, "physio", counted)
        for x, rp in cases:
            for seed in range(3):
                fast = aug(x, rp, torch.Generator().manual_seed(seed))
                planned, _ = aug.forward_with_info(x, rp, torch.Generator().manual_seed(seed))
                assert torch.equal(fast, planned)
                with native.use(False):
                    reference = aug(x, rp, torch.Generator().manual_seed(seed))
                torch.testing.assert_close(fast, reference, rtol=1e-6, atol=1e-6)
    assert len(calls) == 3 * len(cases)  # the one-call path was taken every time


def test_physio_one_call_path_leaves_the_generator_where_the_torch_path_does():
    x, rp = A.make_synthetic_batch(8, generator=torch.Generator().manual_seed(0))
    aug = A.build_augmentation("physio")
    fast_gen, slow_gen = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    aug(x, rp, fast_gen)
    aug.forward_with_info(x, rp, slow_gen)
    assert torch.equal(fast_gen.get_state(), slow_gen.get_state())


def test_physio_one_call_path_is_not_taken_when_it_does_not_apply():
    x, rp = A.make_synthetic_batch(4, generator=torch.Generator().manual_seed(0))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(native, "physio", lambda *a, **k: pytest.fail("one-call path taken"))
        A.build_augmentation([{"name": "random_scale_crop", "p": 0.5}, {"name": "cardiac_cycle_mask"},
                              {"name": "temporal_shift"}])(x, rp)
        A.build_augmentation([{"name": "random_scale_crop"}, {"name": "cardiac_cycle_mask", "fill": "median"},
                              {"name": "temporal_shift"}])(x, rp)
        A.build_augmentation("physio")(x.double(), rp)
        A.build_augmentation("physio").forward_with_info(x, rp)


def test_augmenting_in_a_forked_child_after_the_parent_works():
    """The worker threads do not survive a fork; a child (e.g. a data-loader worker) must get its own."""
    import multiprocessing

    x = torch.randn(64, 12, 1000)  # large enough to be split across threads
    rp = torch.tensor([[100, 250, 400, 550, 700, 850]] * 64)
    aug = A.build_augmentation("physio")
    expected = _digest(aug(x, rp, torch.Generator().manual_seed(0)))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:  # plain data crosses the pipe (a tensor would go through torch's sharing)
        got = pool.apply_async(_augment_in_child, (x.numpy(), rp.numpy())).get(timeout=60)
    assert got == expected


def _digest(y: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(y.numpy().tobytes()).hexdigest()


def _augment_in_child(x, rp):
    torch.set_num_threads(2)
    return _digest(A.build_augmentation("physio")(torch.from_numpy(x), torch.from_numpy(rp),
                                                  torch.Generator().manual_seed(0)))
