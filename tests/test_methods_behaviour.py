"""Behaviour of every registered method: registry, training dynamics, EMA, eval mode, resume, real ECGs."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

from aclecg.errors import ConfigError
from aclecg.evaluation.arms import ARM_KINDS
from aclecg.leads import INDEPENDENT_LEADS, LEADS
from aclecg.methods import (
    ALIASES,
    METHODS,
    MomentumMethod,
    SSLMethod,
    create_method,
    list_methods,
    register_method,
)

LEADS4 = ("I", "II", "V1", "V3")  # one lead per region: lateral, inferior, septal, anterior
TINY = {"stem_width": 4, "widths": [8, 8], "blocks": [1, 1], "kernel_size": 3, "feature_dim": 8}
ALL = ("simclr", "moco", "byol", "simsiam", "barlow", "vicreg", "dlc", "lcd", "dla", "acl_ecg")
SMALL_HEADS = {
    "simclr": {"proj_hidden_dim": 32, "proj_dim": 16},
    "moco": {"proj_hidden_dim": 32, "proj_dim": 16, "queue_size": 64},
    "byol": {"proj_hidden_dim": 32, "proj_dim": 16, "pred_hidden_dim": 32},
    "simsiam": {"proj_dim": 32, "pred_hidden_dim": 8},
    "barlow": {"proj_dim": 32},
    "vicreg": {"proj_dim": 32},
    "acl_ecg": {"proj_hidden_dim": 32, "proj_dim": 16},
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest single-threaded (and do not fight other processes for the 2 cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(name: str, seed: int = 0, leads=LEADS4, **hp) -> SSLMethod:
    torch.manual_seed(seed)
    return create_method(name, TINY, leads=leads, **{**SMALL_HEADS.get(name, {}), **hp})


def synthetic_pool(n: int = 48, n_leads: int = 4, t: int = 64, seed: int = 0) -> torch.Tensor:
    """Records with a record-specific frequency, phase and per-lead gains."""
    g = torch.Generator().manual_seed(seed)
    time = torch.linspace(0, 1, t)
    freq = 2 + 6 * torch.rand(n, 1, 1, generator=g)
    phase = 6.28 * torch.rand(n, 1, 1, generator=g)
    gain = torch.randn(n, n_leads, 1, generator=g)
    return gain * torch.sin(6.28 * freq * time + phase) + 0.1 * torch.randn(n, n_leads, t, generator=g)


def views(x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    def one():
        scale = 1 + 0.2 * torch.randn(x.shape[0], 1, 1, generator=g)
        return scale * x + 0.1 * torch.randn(x.shape, generator=g)

    return one(), one()


# ----------------------------------------------------------------------------- registry
def test_registry_lists_all_methods_with_flags():
    infos = {i.name: i for i in list_methods()}
    assert set(infos) == set(ALL)
    assert {n for n, i in infos.items() if i.reconstruction} == {"dla", "acl_ecg"}
    assert infos["acl_ecg"].default_augmentation == "physio"
    assert all(i.default_augmentation == "standard" for n, i in infos.items() if n != "acl_ecg")
    for info in infos.values():
        json.dumps(info.to_dict())  # plain data
        assert info.paper and info.title and info.description
    # the defaults are the values the methods' papers publish (a spec, not a copy of the code): Barlow Twins
    # lambda 0.0051 (Zbontar et al. 2021), VICReg 25/25/1 (Bardes et al. 2022), BYOL tau 0.996 (Grill et al. 2020)
    assert infos["barlow"].defaults["lambd"] == 0.0051
    assert (
        infos["vicreg"].defaults["sim_coeff"],
        infos["vicreg"].defaults["std_coeff"],
        infos["vicreg"].defaults["cov_coeff"],
    ) == (25.0, 25.0, 1.0)
    assert infos["byol"].defaults["base_momentum"] == 0.996
    assert (infos["lcd"].defaults["gamma"], infos["lcd"].defaults["lambd"]) == (0.005, 0.0051)
    assert set(ARM_KINDS.names()).isdisjoint(infos)  # the reference arms are sweep arms, not pretraining methods
    assert "supervised" not in infos and "random_init" not in infos
    assert all(METHODS.get(alias) is METHODS.get(name) for alias, name in ALIASES.items())
    assert METHODS.get(" Barlow_Twins ").NAME == "barlow"
    # the EMA methods share one momentum base class; no other method has a target network
    assert {n for n in ALL if issubclass(METHODS.get(n), MomentumMethod)} == {"moco", "byol", "lcd"}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "nope"}, "unknown method"),
        ({"name": "simclr", "temperatur": 0.1}, "unknown hyper-parameter"),
        ({"name": "simclr", "temperature": "hot"}, "must be of type float"),
        ({"name": "simclr", "temperature": -1.0}, "> 0"),
        ({"name": "moco", "version": "v9"}, "must be one of"),
        ({"name": "byol", "base_momentum": 1.5}, "in \\[0, 1\\)"),
        ({"name": "acl_ecg", "augmentation": "fancy"}, "unknown augmentation preset"),
        ({"name": "acl_ecg", "region_weight": 0.0, "instance_weight": 0.0}, "nothing to learn"),
        ({"name": "dlc", "proj_dim": True}, "must be of type int"),
    ],
)
def test_create_method_rejects_bad_input(kwargs, match):
    kwargs = dict(kwargs)
    name = kwargs.pop("name")
    with pytest.raises(ConfigError, match=match):
        create_method(name, TINY, leads=LEADS4, **kwargs)


def test_create_method_aliases_leads_and_ablation_switches():
    m = create_method("ACL-ECG", TINY, leads=INDEPENDENT_LEADS)
    assert m.name == "acl_ecg" and m.leads == INDEPENDENT_LEADS and m.encoder.config.leads == INDEPENDENT_LEADS
    assert m.region_names == ("septal", "anterior", "lateral", "inferior")
    assert create_method("acl_ecg", TINY, augmentation="standard").default_augmentation == "standard"
    with pytest.raises(ConfigError, match="no region"):
        create_method("acl_ecg", TINY, leads=("aVR",))
    with pytest.raises(ConfigError, match="preset"):
        create_method("simclr", "huge")
    m = create_method("moco", TINY, version="v3")
    assert m.hparams["momentum"] == 0.99 and not hasattr(m, "queue")


def test_region_weight_zero_leaves_instance_term_only():
    x1, x2 = views(synthetic_pool(8), torch.Generator().manual_seed(0))
    m = tiny("acl_ecg", region_weight=0.0).eval()
    out = m(x1, x2)
    assert torch.allclose(out["loss"], out["instance"])
    assert float(out["region"]) > 0
    m2 = tiny("acl_ecg", region_weight=0.5, instance_weight=2.0).eval()
    out2 = m2(x1, x2)
    assert torch.allclose(out2["loss"], 0.5 * out2["region"] + 2.0 * out2["instance"])


def test_register_method_refuses_duplicates_and_incomplete_classes():
    from aclecg.methods.simclr import SimCLR

    class Other(SimCLR):
        pass

    with pytest.raises(TypeError, match="already registered"):
        register_method(Other)

    class Empty(SSLMethod):
        pass

    with pytest.raises(TypeError):
        register_method(Empty)


def test_cli_lists_registry(monkeypatch):
    from aclecg.cli import main
    from aclecg.commands import methods as cmd

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["methods", "--json"]) == 0
    data = json.loads(buf.getvalue())
    assert [r["name"] for r in data["methods"]] == [i.name for i in list_methods()]
    assert all(0 < r["parameters"]["encoder"] <= r["parameters"]["trainable"] for r in data["methods"])
    assert data["reference_arms"] == ["supervised", "reference_cnn", "random_init"]
    monkeypatch.setattr(cmd, "collect", lambda encoder, leads: data["methods"])  # the table from the same rows
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["methods"]) == 0
    text = buf.getvalue()
    assert all(name in text for name in ALL) and "random_init" in text


# ----------------------------------------------------------------------------- dynamics
@pytest.mark.parametrize("name", ALL)
def test_forward_terms_and_loss_decreases_on_toy_problem(name):
    pool = synthetic_pool()
    m = tiny(name)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # fill MoCo's queue with real keys first (its random initial queue is easy)
        for _ in range(4):
            m(*views(pool[:16], g))
    losses = []
    for step in range(30):
        idx = torch.randperm(pool.shape[0], generator=g)[:16]
        x1, x2 = views(pool[idx], g)
        out = m(x1, x2)
        assert "loss" in out and all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
        assert tuple(out) == type(m).LOSS_TERMS  # exactly the declared terms, the chart plots those
        assert len(out) >= 2  # the loss plus its term(s)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        m.momentum_update(step / 29)
        losses.append(float(out["loss"].detach()))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), losses


@pytest.mark.parametrize("name", ["moco", "byol", "lcd"])
def test_ema_target_changes_only_in_momentum_update(name):
    m = tiny(name)
    targets = [m.target_encoder, m.target_projector]
    assert all(not p.requires_grad for t in targets for p in t.parameters())
    before = [p.clone() for t in targets for p in t.parameters()]
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    x1, x2 = views(synthetic_pool(8), torch.Generator().manual_seed(0))
    m(x1, x2)["loss"].backward()
    assert all(p.grad is None for t in targets for p in t.parameters())
    opt.step()
    after_step = [p for t in targets for p in t.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, after_step))
    online = [p.detach().clone() for p in list(m.encoder.parameters()) + list(m.projector.parameters())]
    m.momentum_update(0.0)
    mom = m.extra_state_description()["ema"]["current_momentum"]
    expected_m = 0.999 if name == "moco" else 0.996
    assert mom == pytest.approx(expected_m)
    new = [p for t in targets for p in t.parameters()]
    for b, o, n in zip(before, online, new):
        assert torch.allclose(n, mom * b + (1 - mom) * o, atol=1e-6)


def test_cosine_momentum_schedule_reaches_one():
    m = tiny("byol")
    m.momentum_update(1.0)
    assert m.extra_state_description()["ema"]["current_momentum"] == pytest.approx(1.0)
    m.momentum_update(0.5)
    assert m.extra_state_description()["ema"]["current_momentum"] == pytest.approx(1 - 0.004 / 2)
    v3 = tiny("moco", version="v3")
    v3.momentum_update(1.0)
    assert v3.extra_state_description()["ema"]["current_momentum"] == pytest.approx(1.0)


def test_head_layouts_keep_their_state_dict_names():
    """Checkpoints name head parameters by layer index: the head builders must keep the layouts."""
    from aclecg.methods.heads import prediction_head, projection_head

    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    two = ["0.weight", *(f"1.{k}" for k in bn), "3.weight", "3.bias"]
    assert list(projection_head(8, 6, 4).state_dict()) == two
    assert list(prediction_head(4, 6).state_dict()) == two
    assert list(projection_head(8, 6, 4, n_layers=3).state_dict()) == [
        "0.weight",
        *(f"1.{k}" for k in bn),
        "3.weight",
        *(f"4.{k}" for k in bn),
        "6.weight",
        "6.bias",
    ]
    standardized = projection_head(8, 6, 4, n_layers=3, standardize_output=True)
    assert list(standardized.state_dict())[-4:] == [
        "6.weight",
        "7.running_mean",
        "7.running_var",
        "7.num_batches_tracked",
    ]
    assert standardized(torch.randn(5, 3, 8)).shape == (5, 3, 4)  # lead-level inputs share the head


def test_moco_queue_is_fifo_of_keys_and_reported():
    m = tiny("moco", queue_size=20)
    x1, x2 = views(synthetic_pool(8), torch.Generator().manual_seed(0))
    m(x1, x2)
    assert int(m.queue_ptr) == 8
    with torch.no_grad():
        keys = torch.nn.functional.normalize(m.target_projector(m.target_encoder(x2).embedding), dim=-1)
    assert torch.allclose(m.queue[:8], keys, atol=1e-5)
    for _ in range(2):
        m(x1, x2)
    assert int(m.queue_ptr) == 4  # 24 keys written into 20 slots: wrapped around
    desc = m.extra_state_description()
    assert desc["queue"] == {"buffer": "queue", "size": 20, "dim": 16, "pointer": 4}
    assert "queue" in m.state_dict() and "queue_ptr" in m.state_dict()


#: Losses of the first four SGD steps of tiny MoCo models (seed 0), recorded from the single MoCo class with
#: ``version`` branches before it became one class per version: the split changed no number.
MOCO_RECORDED = {
    "v2": [1.8475741147994995, 3.0337138175964355, 3.1149284839630127, 4.023845195770264],
    "v3": [1.6891744136810303, 2.364534616470337, 1.7716741561889648, 1.7479674816131592],
}


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_moco_versions_are_classes_and_train_as_recorded(version):
    from aclecg.methods.moco import MoCo
    from aclecg.methods.moco_v2 import MoCoV2
    from aclecg.methods.moco_v3 import MoCoV3

    torch.manual_seed(0)
    m = create_method("moco", TINY, leads=LEADS4, **SMALL_HEADS["moco"], version=version)
    assert type(m) is {"v2": MoCoV2, "v3": MoCoV3}[version] and isinstance(m, MoCo)
    assert m.name == "moco" and METHODS.get("moco") is MoCo and m.hparams["version"] == version
    assert ("queue" in m.state_dict()) == (version == "v2") and (m.predictor is None) == (version == "v2")
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    g = torch.Generator().manual_seed(1)
    losses = []
    for step in range(4):
        out = m(torch.randn(8, 4, 64, generator=g), torch.randn(8, 4, 64, generator=g))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        m.momentum_update(step / 4)
        losses.append(float(out["loss"].detach()))
    assert losses == pytest.approx(MOCO_RECORDED[version], rel=1e-6)
    with pytest.raises(ConfigError, match="MoCoV2 is MoCo v2"):
        MoCoV2(TINY, version="v3")


@pytest.mark.parametrize("name", ALL)
def test_eval_mode_changes_nothing_and_state_dict_resumes(name):
    m = tiny(name)
    x1, x2 = views(synthetic_pool(8), torch.Generator().manual_seed(0))
    m(x1, x2)  # one training-mode forward (fills the queue, updates BN statistics)
    m.eval()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    with torch.no_grad():
        torch.manual_seed(5)
        out_a = m(x1, x2)
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    fresh = tiny(name, seed=123).eval()
    fresh.load_state_dict(state)  # strict: everything needed to resume is in the state dict
    with torch.no_grad():
        torch.manual_seed(5)
        out_b = fresh(x1, x2)
    for k in out_a:
        assert torch.allclose(out_a[k], out_b[k], atol=1e-6), k
    assert isinstance(m.extra_state_description(), dict)
    counts = m.parameter_count()
    assert 0 < counts["encoder"] <= counts["trainable"] <= counts["total"]


# ----------------------------------------------------------------------------- real ECGs
def _load_ptbxl(root: Path, n: int = 16, t: int = 256) -> torch.Tensor:
    wfdb = pytest.importorskip("wfdb")
    files = sorted((root / "ptb-xl" / "records100" / "00000").glob("*_lr.hea"))[:n]
    if len(files) < n:
        pytest.skip("PTB-XL subset not available")
    sigs = []
    for f in files:
        rec = wfdb.rdrecord(str(f.with_suffix("")))
        names = [s.upper() for s in rec.sig_name]
        x = np.nan_to_num(rec.p_signal[:, [names.index(lead.upper()) for lead in LEADS]].T[:, :t])
        sigs.append((x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-6))
    return torch.tensor(np.stack(sigs), dtype=torch.float32)


@pytest.fixture(scope="module")
def real_ecgs(shared_data: Path) -> torch.Tensor:
    """16 PTB-XL records (12 x 256 samples at 100 Hz), z-scored per lead; skipped when the data are absent."""
    return _load_ptbxl(shared_data)


@pytest.mark.parametrize("name", ALL)
def test_no_collapse_on_real_ecgs(name, real_ecgs):
    x = real_ecgs
    m = tiny(name, leads=LEADS)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for step in range(5):
        shift = int(torch.randint(0, 32, (1,), generator=g))
        v1, v2 = views(torch.roll(x, shift, dims=-1), g)
        loss = m(v1, v2)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        m.momentum_update(step / 4)
    m.eval()
    with torch.no_grad():
        emb = m.encoder(x).embedding
    assert torch.isfinite(emb).all()
    assert float(emb.std(dim=0).mean()) > 1e-3


@pytest.mark.parametrize("name", ["byol", "lcd", "moco"])
def test_ema_half_life_caps_the_momentum_to_the_run_length(name):
    paper = tiny(name)
    capped = tiny(name, ema_half_life=0.05)
    base = paper.effective_base_momentum(260)
    assert base == paper.base_momentum  # off by default: the paper's value
    m = capped.effective_base_momentum(260)
    assert m == pytest.approx(0.5 ** (1 / 13)) and m < base
    assert m**260 < 1e-5 < base**260  # the capped target forgets its start within the run
    assert capped.effective_base_momentum(10**6) == base  # long runs keep the paper's momentum
    with pytest.raises(ConfigError, match="ema_half_life"):
        tiny(name, ema_half_life=0.0)
