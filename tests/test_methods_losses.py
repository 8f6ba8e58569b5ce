"""Every loss of aclecg.methods.losses against an independent loop/NumPy reference, float64 gradchecks, and a check
that every method computes its loss with these very functions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aclecg.leads import default_region_map
from aclecg.methods.acl_ecg import pool_regions
from aclecg.methods.losses import (
    acl_ecg_loss,
    barlow_twins_loss,
    barlow_twins_terms,
    byol_loss,
    dla_loss,
    dlc_loss,
    dlc_terms,
    lcd_loss,
    lcd_terms,
    lead_aligned_instance_loss,
    lead_assignment_loss,
    lead_pair_nt_xent,
    moco_queue_loss,
    moco_v3_loss,
    nt_xent,
    nt_xent_batched,
    random_other_lead,
    region_nt_xent,
    simsiam_loss,
    vicreg_loss,
    vicreg_terms,
)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def ref_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """Double loop over anchors and candidates, straight from the SimCLR paper."""
    a = [_unit(v) for v in z1.detach().double().numpy()] + [_unit(v) for v in z2.detach().double().numpy()]
    n = len(a) // 2
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        denom = sum(math.exp(float(a[i] @ a[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(a[i] @ a[pos]) / tau) / denom)
    return total / (2 * n)


def test_nt_xent_matches_double_loop():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    for tau in (0.1, 0.5):
        assert float(nt_xent(z1, z2, tau)) == pytest.approx(ref_nt_xent(z1, z2, tau), rel=1e-5)


def test_nt_xent_batched_is_independent_problems():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(3, 4, 6, generator=g), torch.randn(3, 4, 6, generator=g)
    out = nt_xent_batched(z1, z2, 0.2)
    for p in range(3):
        assert float(out[p]) == pytest.approx(ref_nt_xent(z1[p], z2[p], 0.2), rel=1e-5)


def test_nt_xent_prefers_aligned_views():
    z = torch.randn(8, 16)
    assert float(nt_xent(z, z + 0.01 * torch.randn(8, 16), 0.1)) < float(nt_xent(z, torch.randn(8, 16), 0.1))


def test_moco_queue_loss_matches_loop():
    g = torch.Generator().manual_seed(2)
    q, k, queue = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g), torch.randn(6, 5, generator=g)
    tau = 0.2
    total = 0.0
    for i in range(4):
        qi, ki = _unit(q[i].double().numpy()), _unit(k[i].double().numpy())
        logits = [float(qi @ ki) / tau] + [float(qi @ _unit(queue[j].double().numpy())) / tau for j in range(6)]
        total += -logits[0] + math.log(sum(math.exp(v) for v in logits))
    assert float(moco_queue_loss(q, k, queue, tau)) == pytest.approx(total / 4, rel=1e-5)


def test_moco_v3_loss_matches_loop():
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    tau = 0.5
    total = 0.0
    for i in range(4):
        qi = _unit(q[i].double().numpy())
        logits = [float(qi @ _unit(k[j].double().numpy())) / tau for j in range(4)]
        total += -logits[i] + math.log(sum(math.exp(v) for v in logits))
    assert float(moco_v3_loss(q, k, tau)) == pytest.approx(2 * tau * total / 4, rel=1e-5)


def test_byol_and_simsiam_match_formula():
    g = torch.Generator().manual_seed(4)
    p1, p2, z1, z2 = (torch.randn(3, 6, generator=g) for _ in range(4))
    cos = lambda a, b: float(_unit(a.double().numpy()) @ _unit(b.double().numpy()))
    ref_byol = np.mean([2 - 2 * cos(p1[i], z2[i]) for i in range(3)])
    assert float(byol_loss(p1, z2)) == pytest.approx(ref_byol, rel=1e-5)
    ref_ss = 0.5 * np.mean([-cos(p1[i], z2[i]) for i in range(3)]) + 0.5 * np.mean(
        [-cos(p2[i], z1[i]) for i in range(3)]
    )
    assert float(simsiam_loss(p1, p2, z1, z2)) == pytest.approx(ref_ss, rel=1e-5)


def test_stop_gradient_on_targets():
    p = torch.randn(3, 4, requires_grad=True)
    z = torch.randn(3, 4, requires_grad=True)
    byol_loss(p, z).backward()
    assert z.grad is None and p.grad is not None
    p1, p2 = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    z1, z2 = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    simsiam_loss(p1, p2, z1, z2).backward()
    assert z1.grad is None and z2.grad is None


def test_barlow_twins_matches_explicit_formula():
    g = torch.Generator().manual_seed(5)
    z1, z2 = torch.randn(10, 4, generator=g), torch.randn(10, 4, generator=g)
    a, b = z1.double().numpy(), z2.double().numpy()
    an = (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-5)
    bn = (b - b.mean(0)) / np.sqrt(b.var(0) + 1e-5)
    n, d = a.shape
    c = np.array([[sum(an[k, i] * bn[k, j] for k in range(n)) / n for j in range(d)] for i in range(d)])
    on = sum((1 - c[i, i]) ** 2 for i in range(d))
    off = sum(c[i, j] ** 2 for i in range(d) for j in range(d) if i != j)
    t_on, t_off = barlow_twins_terms(z1, z2)
    assert float(t_on) == pytest.approx(on, rel=1e-4)
    assert float(t_off) == pytest.approx(off, rel=1e-4)
    assert float(barlow_twins_loss(z1, z2, 0.0051)) == pytest.approx(on + 0.0051 * off, rel=1e-4)
    loss, terms = barlow_twins_loss(z1, z2, 0.01, return_terms=True)
    assert float(loss) == pytest.approx(on + 0.01 * off, rel=1e-4)
    assert (float(terms["on_diagonal"]), float(terms["off_diagonal"])) == pytest.approx((on, off), rel=1e-4)


def test_vicreg_terms_match_numpy():
    g = torch.Generator().manual_seed(6)
    z1, z2 = 0.5 * torch.randn(12, 5, generator=g), 0.5 * torch.randn(12, 5, generator=g)
    a, b = z1.double().numpy(), z2.double().numpy()
    inv = np.mean((a - b) ** 2)
    var = 0.5 * (
        np.mean(np.maximum(0, 1 - np.sqrt(a.var(0, ddof=1) + 1e-4)))
        + np.mean(np.maximum(0, 1 - np.sqrt(b.var(0, ddof=1) + 1e-4)))
    )

    def cov_term(x):
        cov = np.cov(x, rowvar=False)
        return (np.sum(cov**2) - np.sum(np.diag(cov) ** 2)) / x.shape[1]

    cov = cov_term(a) + cov_term(b)
    t_inv, t_var, t_cov = vicreg_terms(z1, z2)
    assert (float(t_inv), float(t_var), float(t_cov)) == pytest.approx((inv, var, cov), rel=1e-4)
    assert float(vicreg_loss(z1, z2)) == pytest.approx(25 * inv + 25 * var + cov, rel=1e-4)
    loss, terms = vicreg_loss(z1, z2, 2.0, 3.0, 0.5, return_terms=True)
    assert float(loss) == pytest.approx(2 * inv + 3 * var + 0.5 * cov, rel=1e-4)
    got = [float(terms[k]) for k in ("invariance", "variance", "covariance")]
    assert got == pytest.approx([inv, var, cov], rel=1e-4)


def test_dlc_matches_loop_over_lead_pairs():
    g = torch.Generator().manual_seed(7)
    h1, h2 = torch.randn(4, 3, 6, generator=g), torch.randn(4, 3, 6, generator=g)
    pair = lead_pair_nt_xent(h1, h2, 0.1)
    ref = np.array([[ref_nt_xent(h1[:, l], h2[:, m], 0.1) for m in range(3)] for l in range(3)])
    assert pair.detach().numpy() == pytest.approx(ref, rel=1e-4)
    intra, inter = dlc_terms(h1, h2, 0.1)
    assert float(intra) == pytest.approx(np.mean(np.diag(ref)), rel=1e-4)
    assert float(inter) == pytest.approx(ref[~np.eye(3, dtype=bool)].mean(), rel=1e-4)
    loss, terms = dlc_loss(h1, h2, 0.1, inter_weight=0.3, return_terms=True)
    assert float(loss) == pytest.approx(np.mean(np.diag(ref)) + 0.3 * ref[~np.eye(3, dtype=bool)].mean(), rel=1e-4)
    assert (float(terms["intra_lead"]), float(terms["inter_lead"])) == (float(intra), float(inter))


def test_acl_region_infonce_matches_loop_over_record_region_pairs():
    g = torch.Generator().manual_seed(8)
    u1, u2 = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    tau = 0.1
    items = [(v, b, r) for v in (0, 1) for b in range(3) for r in range(4)]
    vec = {(0, b, r): _unit(u1[b, r].double().numpy()) for b in range(3) for r in range(4)}
    vec.update({(1, b, r): _unit(u2[b, r].double().numpy()) for b in range(3) for r in range(4)})
    total = 0.0
    for it in items:
        pos = (1 - it[0], it[1], it[2])
        denom = sum(math.exp(float(vec[it] @ vec[o]) / tau) for o in items if o != it)
        total += -math.log(math.exp(float(vec[it] @ vec[pos]) / tau) / denom)
    assert float(region_nt_xent(u1, u2, tau)) == pytest.approx(total / len(items), rel=1e-4)
    z1, z2 = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    loss, terms = acl_ecg_loss(u1, u2, z1, z2, tau, region_weight=0.5, instance_weight=2.0, return_terms=True)
    assert float(terms["region"]) == pytest.approx(total / len(items), rel=1e-4)
    assert float(terms["instance"]) == pytest.approx(ref_nt_xent(z1, z2, tau), rel=1e-5)
    assert float(loss) == pytest.approx(0.5 * total / len(items) + 2.0 * ref_nt_xent(z1, z2, tau), rel=1e-4)


def test_pool_regions_is_mean_of_region_leads():
    from aclecg.leads import LEADS

    rm = default_region_map()
    feats = torch.randn(2, 12, 3)
    pooled = pool_regions(feats, torch.from_numpy(rm.assignment_matrix(LEADS)))
    for g, (region, leads) in enumerate(rm.regions.items()):
        idx = [LEADS.index(lead) for lead in leads]
        assert torch.allclose(pooled[:, g], feats[:, idx].mean(dim=1), atol=1e-6), region
    assert pooled.shape == (2, 4, 3)  # aVR in no region


def test_dla_terms_match_loops():
    g = torch.Generator().manual_seed(9)
    h1, h2 = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    tau = 0.2
    total = 0.0
    for b in range(2):
        a = np.stack([_unit(v) for v in h1[b].double().numpy()])
        c = np.stack([_unit(v) for v in h2[b].double().numpy()])
        s = a @ c.T / tau
        for l in range(3):
            total += -s[l, l] + math.log(np.exp(s[l]).sum())
            total += -s[l, l] + math.log(np.exp(s[:, l]).sum())
    assert float(lead_assignment_loss(h1, h2, tau)) == pytest.approx(total / (2 * 2 * 3), rel=1e-5)
    # the instance term: record similarity = mean over leads of per-lead cosine similarity
    flat1 = torch.nn.functional.normalize(h1, dim=-1).flatten(1)
    flat2 = torch.nn.functional.normalize(h2, dim=-1).flatten(1)
    assert float(lead_aligned_instance_loss(h1, h2, tau)) == pytest.approx(ref_nt_xent(flat1, flat2, tau), rel=1e-5)
    loss, terms = dla_loss(h1, h2, tau, instance_weight=0.25, return_terms=True)
    assert float(terms["assignment"]) == pytest.approx(total / (2 * 2 * 3), rel=1e-5)
    assert float(loss) == pytest.approx(total / 12 + 0.25 * ref_nt_xent(flat1, flat2, tau), rel=1e-5)


def test_lcd_terms_match_loop():
    g = torch.Generator().manual_seed(10)
    p1, p2, t1, t2 = (torch.randn(2, 3, 4, generator=g) for _ in range(4))
    r12 = random_other_lead(2, 3, torch.device("cpu"), generator=g)
    r21 = random_other_lead(2, 3, torch.device("cpu"), generator=g)
    cos = lambda a, b: float(_unit(a.double().numpy()) @ _unit(b.double().numpy()))
    intra = np.mean([2 - 2 * cos(p1[b, l], t2[b, l]) for b in range(2) for l in range(3)]) + np.mean(
        [2 - 2 * cos(p2[b, l], t1[b, l]) for b in range(2) for l in range(3)]
    )
    inter = np.mean([2 - 2 * cos(p1[b, l], t2[b, int(r12[b, l])]) for b in range(2) for l in range(3)]) + np.mean(
        [2 - 2 * cos(p2[b, l], t1[b, int(r21[b, l])]) for b in range(2) for l in range(3)]
    )
    t_intra, t_inter = lcd_terms(p1, p2, t1, t2, r12, r21)
    assert (float(t_intra), float(t_inter)) == pytest.approx((intra, inter), rel=1e-5)
    e1, e2 = torch.randn(2, 12, generator=g), torch.randn(2, 12, generator=g)  # the records' embeddings (B, L*D)
    dec = float(barlow_twins_loss(e1, e2, 0.02))  # checked against the explicit formula above
    loss, terms = lcd_loss(p1, p2, t1, t2, r12, r21, e1, e2, gamma=0.1, lambd=0.02, return_terms=True)
    got = [float(terms[k]) for k in ("intra_lead", "inter_lead", "decorrelation")]
    assert got == pytest.approx([intra, inter, dec], rel=1e-5)
    assert float(loss) == pytest.approx(intra + inter + 0.1 * dec, rel=1e-5)


def test_random_other_lead_never_picks_itself_and_covers_others():
    idx = random_other_lead(2000, 4, torch.device("cpu"), generator=torch.Generator().manual_seed(0))
    assert bool((idx != torch.arange(4)).all())
    counts = torch.bincount(idx[:, 0], minlength=4)
    assert counts[0] == 0 and bool((counts[1:] > 500).all())


def _d(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize(
    "name,fn,shapes",
    [
        ("nt_xent", lambda a, b: nt_xent(a, b, 0.5), [(4, 3), (4, 3)]),
        ("nt_xent_batched", lambda a, b: nt_xent_batched(a, b, 0.5).sum(), [(2, 3, 3), (2, 3, 3)]),
        (
            "moco_queue",
            lambda q: moco_queue_loss(q, torch.ones(3, 4, dtype=torch.float64), torch.eye(4, dtype=torch.float64), 0.5),
            [(3, 4)],
        ),
        ("moco_v3", lambda q: moco_v3_loss(q, torch.eye(3, 4, dtype=torch.float64), 0.5), [(3, 4)]),
        ("byol", lambda p: byol_loss(p, torch.ones(3, 4, dtype=torch.float64)), [(3, 4)]),
        (
            "simsiam",
            lambda p1, p2: simsiam_loss(
                p1, p2, torch.ones(3, 4, dtype=torch.float64), -torch.ones(3, 4, dtype=torch.float64)
            ),
            [(3, 4), (3, 4)],
        ),
        ("barlow", lambda a, b: barlow_twins_loss(a, b, 0.0051), [(6, 3), (6, 3)]),
        ("vicreg", lambda a, b: vicreg_loss(0.3 * a, 0.3 * b), [(6, 3), (6, 3)]),
        ("dlc", lambda a, b: dlc_loss(a, b, 0.5, inter_weight=0.7), [(3, 2, 3), (3, 2, 3)]),
        ("acl_region", lambda a, b: region_nt_xent(a, b, 0.5), [(2, 3, 3), (2, 3, 3)]),
        ("acl_ecg", lambda a, b: acl_ecg_loss(a, b, a.sum(1), b.sum(1), 0.5, 0.5, 2.0), [(2, 3, 3), (2, 3, 3)]),
        ("dla_assign", lambda a, b: lead_assignment_loss(a, b, 0.5), [(2, 3, 3), (2, 3, 3)]),
        ("dla_instance", lambda a, b: lead_aligned_instance_loss(a, b, 0.5), [(3, 2, 3), (3, 2, 3)]),
        ("dla", lambda a, b: dla_loss(a, b, 0.5, instance_weight=0.5), [(3, 2, 3), (3, 2, 3)]),
        (
            "lcd",
            lambda p1, p2: lcd_loss(
                p1,
                p2,
                torch.ones(3, 3, 4, dtype=torch.float64),
                torch.arange(36, dtype=torch.float64).reshape(3, 3, 4),
                torch.tensor([[1, 2, 0], [2, 0, 1], [1, 0, 0]]),
                torch.tensor([[2, 0, 1], [1, 2, 0], [2, 2, 1]]),
                p1.flatten(1),
                p2.flatten(1),
                gamma=0.5,
            ),
            [(3, 3, 4), (3, 3, 4)],
        ),
    ],
)
def test_gradcheck(name, fn, shapes):
    torch.manual_seed(0)
    inputs = tuple(_d(*s) for s in shapes)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5), name


# ----------------------------------------------------------------------------- the methods use these functions
TINY = {"stem_width": 4, "widths": [8], "blocks": [1], "kernel_size": 3, "feature_dim": 8}
CALLS = {
    "simclr": ("nt_xent", {}),
    "moco": ("moco_queue_loss", {}),
    "moco_v3": ("moco_v3_loss", {"version": "v3"}),
    "byol": ("byol_loss", {}),
    "simsiam": ("simsiam_loss", {}),
    "barlow": ("barlow_twins_loss", {}),
    "vicreg": ("vicreg_loss", {}),
    "dlc": ("dlc_loss", {}),
    "lcd": ("lcd_loss", {}),
    "dla": ("dla_loss", {}),
    "acl_ecg": ("acl_ecg_loss", {}),
}


@pytest.mark.parametrize("label", sorted(CALLS))
def test_every_method_computes_its_loss_with_the_exported_function(label, monkeypatch):
    """Spy on the aclecg.methods.losses function a method imports: the method's loss (and terms) are its output."""
    import sys

    from aclecg.methods import create_method, get_method_class, losses

    fn_name, hp = CALLS[label]
    name = label.split("_v3")[0]
    torch.manual_seed(0)
    method = create_method(name, TINY, leads=("I", "II", "V1", "V3"), **hp)
    module = sys.modules[type(method).__module__]  # MoCo's versions live in their own modules
    assert isinstance(method, get_method_class(name))
    real = getattr(losses, fn_name)
    assert getattr(module, fn_name) is real  # the method module uses the exported function itself
    returned = []

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        returned.append(out)
        return out

    monkeypatch.setattr(module, fn_name, spy)
    g = torch.Generator().manual_seed(0)
    out = method(torch.randn(6, 4, 64, generator=g), torch.randn(6, 4, 64, generator=g))
    assert returned, f"{label} did not call aclecg.methods.losses.{fn_name}"
    losses_ = [r[0] if isinstance(r, tuple) else r for r in returned]
    assert torch.equal(out["loss"], sum(losses_[1:], losses_[0]))  # symmetrised methods call it once per direction
    if isinstance(returned[0], tuple):  # the reported terms are the function's terms
        assert list(out) == ["loss", *returned[0][1]]
        assert all(torch.equal(out[k], v) for k, v in returned[0][1].items())
