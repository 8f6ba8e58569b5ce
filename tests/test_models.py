"""The per-lead shared encoder, its config and presets, the classifier helper and the reference arms."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from aclecg.errors import ConfigError, DataError
from aclecg.leads import INDEPENDENT_LEADS, LEADS
from aclecg.models import (
    ENCODER_PRESETS,
    ECGEncoder,
    EncoderConfig,
    build_classifier,
    build_encoder,
    count_parameters,
    resolve_encoder_config,
)

TINY = EncoderConfig(leads=("II", "V1", "V5"), stem_width=4, widths=(8, 8), blocks=(1, 2), kernel_size=3, feature_dim=6)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_config_round_trips_through_json():
    for cfg in list(ENCODER_PRESETS.values()) + [TINY]:
        data = json.loads(json.dumps(cfg.to_dict()))
        assert EncoderConfig.from_dict(data) == cfg


@pytest.mark.parametrize(
    "data,match",
    [
        ({"widths": [8], "blocks": [1, 1]}, "same length"),
        ({"kernel_size": 4}, "odd"),
        ({"feature_dim": 0}, "positive integer"),
        ({"leads": ["I", "X"]}, "unknown lead"),
        ({"leads": ["I", "i"]}, "duplicates"),
        ({"leads": []}, "at least one lead"),
        ({"dropout": 1.0}, "dropout"),
        ({"widths": "8"}, "list"),
        ({"depth": 3}, "unknown encoder config key"),
        ({"stem_width": 2.5}, "positive integer"),
    ],
)
def test_config_validation_names_the_key(data, match):
    with pytest.raises(ConfigError, match=match):
        EncoderConfig.from_dict(data)


def test_leads_are_canonicalised_and_resolve_accepts_all_forms():
    cfg = EncoderConfig.from_dict({"leads": ["avr", "V1"]})
    assert cfg.leads == ("aVR", "V1") and cfg.n_leads == 2
    assert resolve_encoder_config(None) == ENCODER_PRESETS["small"]
    assert resolve_encoder_config("base").feature_dim == ENCODER_PRESETS["base"].feature_dim
    assert resolve_encoder_config(TINY.to_dict(), leads=INDEPENDENT_LEADS).leads == INDEPENDENT_LEADS
    with pytest.raises(ConfigError, match="preset"):
        resolve_encoder_config("huge")


def test_output_shapes_and_embedding_is_concatenation():
    enc = ECGEncoder(TINY).eval()
    x = torch.randn(5, 3, 100)
    out = enc(x)
    assert out.lead_features.shape == (5, 3, 6) and out.embedding.shape == (5, 18)
    assert torch.equal(out.embedding, torch.cat([out.lead_features[:, i] for i in range(3)], dim=1))


def test_weights_are_shared_across_leads():
    """Each lead is encoded on its own by the same network: permuting leads permutes the features."""
    enc = ECGEncoder(TINY).eval()
    x = torch.randn(4, 3, 64)
    out = enc(x).lead_features
    perm = [2, 0, 1]
    assert torch.allclose(enc(x[:, perm]).lead_features, out[:, perm], atol=1e-6)
    single = ECGEncoder(replace(TINY, leads=("II",))).eval()
    single.load_state_dict(enc.state_dict())
    assert torch.allclose(single(x[:, 1:2]).lead_features[:, 0], out[:, 1], atol=1e-6)


def test_wrong_input_shape_is_a_clear_error():
    enc = ECGEncoder(TINY)
    with pytest.raises(DataError, match="3 leads"):
        enc(torch.randn(2, 12, 64))
    with pytest.raises(DataError):
        enc(torch.randn(3, 64))


def test_any_lead_subset_and_odd_lengths():
    cfg = replace(TINY, leads=INDEPENDENT_LEADS)
    enc = ECGEncoder(cfg)
    out = enc(torch.randn(2, 8, 77))
    assert out.embedding.shape == (2, 8 * 6)


def test_small_preset_size_and_cost():
    small = ENCODER_PRESETS["small"]
    assert small.feature_dim == 64 and small.leads == LEADS
    n = count_parameters(ECGEncoder(small))
    assert 30_000 <= n <= 100_000  # narrow on purpose: it runs once per lead (see docs/methods.md)
    assert count_parameters(ECGEncoder(ENCODER_PRESETS["base"])) > 3 * n


def test_count_parameters_matches_manual_sum():
    enc = ECGEncoder(TINY)
    assert count_parameters(enc) == sum(p.numel() for p in enc.parameters())
    enc.head.requires_grad_(False)
    assert count_parameters(enc, trainable_only=True) == count_parameters(enc) - sum(
        p.numel() for p in enc.head.parameters()
    )


def test_build_encoder_seed_is_reproducible_and_leaves_global_rng():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a, b = build_encoder(TINY, seed=3), build_encoder(TINY, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = build_encoder(TINY, seed=4)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_build_classifier_is_encoder_plus_linear_head():
    enc = build_encoder(TINY, seed=0)
    model = build_classifier(enc, 5)
    x = torch.randn(3, 3, 64)
    model.eval()
    logits = model(x)
    assert logits.shape == (3, 5)
    assert torch.allclose(logits, model.head(enc(x).embedding))
    assert model.encoder is enc
    assert count_parameters(model) == count_parameters(enc) + 18 * 5 + 5
    with pytest.raises(ConfigError):
        build_classifier(enc, 0)


def test_encoder_trains_and_eval_is_deterministic():
    enc = ECGEncoder(TINY)
    opt = torch.optim.SGD(enc.parameters(), lr=0.1)
    x, y = torch.randn(8, 3, 64), torch.randn(8, 18)
    first = None
    for _ in range(10):
        loss = torch.nn.functional.mse_loss(enc(x).embedding, y)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first
    enc.eval()
    assert torch.equal(enc(x).embedding, enc(x).embedding)


# ------------------------------------------------------------------ the channels-last layout against a 1-D reference
def _reference_1d(enc: ECGEncoder, x: torch.Tensor) -> torch.Tensor:
    """The encoder computed in the (N, C, T) layout with 1-D operators, straight from its parameters."""
    import torch.nn.functional as F

    from aclecg.models import _BatchNorm, _Conv, _Pool, _ResBlock

    def run(module, h):
        if isinstance(module, _Conv):
            return F.conv1d(h, module.weight, module.bias, module.stride, module.padding)
        if isinstance(module, _BatchNorm):
            return F.batch_norm(
                h,
                module.running_mean,
                module.running_var,
                module.weight,
                module.bias,
                module.training,
                module.momentum,
                module.eps,
            )
        if isinstance(module, _Pool):
            pool = F.max_pool1d if module.kind == "max" else F.avg_pool1d
            return pool(h, module.kernel, module.stride, module.padding, ceil_mode=module.ceil_mode)
        if isinstance(module, _ResBlock):
            return module.act(run(module.convs, h) + run(module.shortcut, h))
        if isinstance(module, torch.nn.Sequential):
            for child in module:
                h = run(child, h)
            return h
        return module(h)

    b, n_leads, t = x.shape
    h = run(enc.stages, run(enc.stem, x.reshape(b * n_leads, 1, t)))
    return enc.head(torch.cat([h.mean(-1), h.amax(-1)], dim=1)).reshape(b, -1)


@pytest.mark.parametrize("preset", ["small", "small-v1"])
@pytest.mark.parametrize("t", [1000, 77])
def test_channels_last_encoder_equals_the_1d_computation(preset, t):
    """Forward (train and eval mode) and every parameter gradient match a plain 1-D implementation."""
    torch.manual_seed(0)
    enc = ECGEncoder(ENCODER_PRESETS[preset])
    ref = copy.deepcopy(enc)
    x = torch.randn(3, 12, t)
    out, expected = enc(x).embedding, _reference_1d(ref, x)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    out.square().mean().backward()
    expected.square().mean().backward()
    for (name, p), q in zip(enc.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-6, msg=lambda m: f"{name}: {m}")
    enc.eval(), ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(enc(x).embedding, _reference_1d(ref, x), rtol=1e-4, atol=1e-5)


def test_presets_and_stems():
    assert ENCODER_PRESETS["small"].stem == "strided" and ENCODER_PRESETS["small-v1"].stem == "xresnet"
    assert "stem" not in ENCODER_PRESETS["small-v1"].to_dict()  # configs and cache keys as before the key existed
    assert ENCODER_PRESETS["small"].to_dict()["stem"] == "strided"
    assert EncoderConfig.from_dict({"widths": [16, 32, 64]}).stem == "xresnet"  # configs from before the key
    with pytest.raises(ConfigError, match="stem"):
        EncoderConfig(stem="patchify")
    fast = ECGEncoder(ENCODER_PRESETS["small"])
    assert len(fast.stem) == 2 and fast.stem[0][0].stride == (4,) and fast.stem[1][0].stride == (1,)


def test_shipped_checkpoints_load_with_their_own_encoder():
    from aclecg import checkpoint as ckpt

    shipped = sorted((Path(__file__).resolve().parent.parent / "checkpoints").glob("*/encoder.pt"))
    assert shipped
    for path in shipped:
        encoder, meta = ckpt.load_encoder(path)
        recipe = json.loads((path.parent / "config.json").read_text())["encoder"]
        assert encoder.config.stem == ENCODER_PRESETS[recipe].stem, path  # built as its configuration says
        assert encoder(torch.randn(2, 12, int(meta["n_samples"]))).embedding.shape == (2, encoder.embedding_dim)
