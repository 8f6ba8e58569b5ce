"""Cross-process losses: 2 gloo processes on CPU, batch split in halves, must equal one process on the batch.

Convention checked (the DDP one): the mean over ranks of the rank losses equals the single-process loss, and a
rank's input gradient divided by the world size (DDP averages) equals the single-process gradient of its slice.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from aclecg.methods.distributed import gather_with_grad
from aclecg.methods.losses import (
    acl_ecg_loss,
    barlow_twins_loss,
    dla_loss,
    dlc_loss,
    moco_v3_loss,
    nt_xent,
    region_nt_xent,
    vicreg_loss,
)

WORLD = 2
BATCH = 6
TINY = {
    "leads": ["I", "II", "V1", "V3"],
    "stem_width": 2,
    "widths": [4],
    "blocks": [1],
    "kernel_size": 3,
    "feature_dim": 4,
}

LOSSES = {
    "simclr": ((BATCH, 5), lambda a, b: nt_xent(a, b, 0.2)),
    "moco_v3": ((BATCH, 5), lambda a, b: moco_v3_loss(a, b, 0.2)),
    "dlc": ((BATCH, 3, 4), lambda a, b: dlc_loss(a, b, 0.2)),
    "acl_region": ((BATCH, 4, 4), lambda a, b: region_nt_xent(a, b, 0.2)),
    "acl_ecg": ((BATCH, 4, 4), lambda a, b: acl_ecg_loss(a, b, a.flatten(1), b.flatten(1), 0.2, 0.5, 2.0)),
    "dla": ((BATCH, 3, 4), lambda a, b: dla_loss(a, b, 0.2)),
    "barlow": ((BATCH, 4), lambda a, b: barlow_twins_loss(a, b, 0.0051)),
    "vicreg": ((BATCH, 4), lambda a, b: vicreg_loss(a, b)),
}
METHODS = ("acl_ecg", "simclr", "barlow", "dlc")


def _inputs(shape):
    g = torch.Generator().manual_seed(sum(shape))
    return torch.randn(*shape, generator=g, dtype=torch.float64), torch.randn(*shape, generator=g, dtype=torch.float64)


def _method(name):
    from aclecg.methods import create_method

    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = create_method(name, TINY, leads=TINY["leads"]).double()
    return m.eval()  # eval: BN uses running statistics, so only the loss couples the samples


def _views():
    g = torch.Generator().manual_seed(42)
    return torch.randn(BATCH, 4, 32, generator=g, dtype=torch.float64), torch.randn(
        BATCH, 4, 32, generator=g, dtype=torch.float64
    )


def _run(name_loss, a, b, sl):
    a = a[sl].clone().requires_grad_(True)
    b = b[sl].clone().requires_grad_(True)
    loss = name_loss(a, b)
    loss.backward()
    grads = [torch.zeros_like(t) if t.grad is None else t.grad.clone() for t in (a, b)]
    return float(loss.detach()), grads[0], grads[1]


def _run_method(name, sl):
    m = _method(name)
    v1, v2 = _views()
    loss = m(v1[sl], v2[sl])["loss"]
    loss.backward()
    return float(loss.detach()), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}


def _worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    n = BATCH // WORLD
    sl = slice(rank * n, (rank + 1) * n)
    results = {}
    for name, (shape, fn) in LOSSES.items():
        a, b = _inputs(shape)
        results[name] = _run(fn, a, b, sl)
    for name in METHODS:
        loss, grads = _run_method(name, sl)
        for g in grads.values():
            dist.all_reduce(g)
            g /= WORLD  # what DDP does with parameter gradients
        results["method_" + name] = (loss, grads)
    probe = torch.arange(3.0, requires_grad=True) + rank
    gathered = gather_with_grad(probe)
    results["probe"] = (gathered.detach().clone(),)
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.mark.slow  # the module fixture starts two processes (~3.5 s)
def test_gather_concatenates_in_rank_order(rank_results):
    for r in range(WORLD):
        assert torch.equal(rank_results[r]["probe"][0], torch.tensor([0.0, 1, 2, 1, 2, 3]))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LOSSES))
def test_split_batch_equals_full_batch(rank_results, name):
    shape, fn = LOSSES[name]
    a, b = _inputs(shape)
    full_loss, ga, gb = _run(fn, a, b, slice(None))
    mean_loss = sum(res[name][0] for res in rank_results) / WORLD
    assert mean_loss == pytest.approx(full_loss, rel=1e-9, abs=1e-12)
    dist_ga = torch.cat([res[name][1] for res in rank_results]) / WORLD
    dist_gb = torch.cat([res[name][2] for res in rank_results]) / WORLD
    assert torch.allclose(dist_ga, ga, atol=1e-10), name
    assert torch.allclose(dist_gb, gb, atol=1e-10), name


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_method_parameter_gradients_match(rank_results, name):
    full_loss, grads = _run_method(name, slice(None))
    key = "method_" + name
    assert sum(res[key][0] for res in rank_results) / WORLD == pytest.approx(full_loss, rel=1e-9)
    for pname, g in grads.items():
        for res in rank_results:
            assert torch.allclose(res[key][1][pname], g, atol=1e-10), (name, pname)


def test_single_process_is_identity():
    t = torch.randn(3, 2)
    assert gather_with_grad(t) is t


def test_sync_batchnorm_conversion_keeps_frozen_ema_targets_frozen():
    """An EMA target's batch norm must stay out of the optimiser (and of DDP's gradient reduction) after conversion."""
    from aclecg.methods import create_method
    from aclecg.parallel import convert_sync_batchnorm

    model = create_method("byol", {"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8})
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert any(n.startswith("target_encoder.") for n in frozen)
    converted = convert_sync_batchnorm(model, use_cuda=False)
    assert {n for n, p in converted.named_parameters() if not p.requires_grad} == frozen
