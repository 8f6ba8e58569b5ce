"""Pretraining that scales out: per-sample draws make every process read and augment only its own rows, and the
loss curve stays the single process's for 1, 2 and 4 processes and for two node ranks (torchrun, gloo, CPU)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from aclecg.augment import build_augmentation
from aclecg.augment.draws import SampleDraws, sample_keys, uniform
from aclecg.augment.synthetic import make_synthetic_batch
from aclecg.errors import ConfigError
from aclecg.training import PretrainConfig, pretrain
from aclecg.training.loop import Trainer
from tests.helpers import e20

REPO = Path(__file__).resolve().parent.parent
TINY = {"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8}
CPU = torch.device("cpu")
#: the float32 parity tolerance of tests/test_train_distributed.py (batch-norm sums in another order)
PARITY_RTOL = 5e-3


# --- the counter-based draws ------------------------------------------------------------------------------------


def test_a_samples_draws_do_not_depend_on_the_other_samples_of_its_batch():
    keys = sample_keys(3, 2, 1, torch.arange(10, 26))
    whole, part = SampleDraws(keys), SampleDraws(keys[5:9])
    for shape in ((7,), (3, 4)):
        a, b = whole.uniform((16, *shape), CPU), part.uniform((4, *shape), CPU)
        assert torch.equal(a[5:9], b)
    assert torch.equal(whole.normal((16, 2, 50), CPU)[5:9], part.normal((4, 2, 50), CPU))


def test_draws_differ_across_seeds_epochs_views_samples_and_draw_numbers():
    rows = torch.arange(200)
    base = SampleDraws(sample_keys(0, 0, 1, rows)).uniform((200, 4), CPU)
    for other in (sample_keys(1, 0, 1, rows), sample_keys(0, 1, 1, rows), sample_keys(0, 0, 2, rows)):
        assert not torch.isclose(SampleDraws(other).uniform((200, 4), CPU), base).any()
    d = SampleDraws(sample_keys(0, 0, 1, rows))
    assert not torch.isclose(d.uniform((200, 4), CPU), d.uniform((200, 4), CPU)).any()  # the counter advanced
    assert len(set(base[:, 0].tolist())) == 200


def test_draws_have_the_distributions_they_claim():
    d = SampleDraws(sample_keys(7, 0, 1, torch.arange(4000)))
    u, n = d.uniform((4000, 50), CPU), d.normal((4000, 50), CPU)
    assert u.dtype == n.dtype == torch.float32 and float(u.min()) >= 0 and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.005 and abs(float(u.var()) - 1 / 12) < 0.002
    assert abs(float(n.mean())) < 0.01 and abs(float(n.std()) - 1) < 0.01 and torch.isfinite(n).all()
    assert abs(float((n**4).mean()) - 3) < 0.1  # the normal's kurtosis, not the uniform's
    assert abs(float(np.corrcoef(u[:, 0], u[:, 1])[0, 1])) < 0.05


def test_a_draw_whose_rows_do_not_match_the_keys_is_refused():
    with pytest.raises(ConfigError, match="one row per sample key"):
        uniform((3, 2), SampleDraws(sample_keys(0, 0, 1, torch.arange(4))), CPU)
    with pytest.raises(ConfigError, match="1-D int64"):
        SampleDraws(torch.zeros(3))


@pytest.mark.parametrize("spec", ["physio", "standard"])
def test_augmenting_a_part_of_the_batch_gives_those_rows_of_the_whole(spec):
    x, peaks = make_synthetic_batch(8, fs=100, generator=torch.Generator().manual_seed(0))
    aug = build_augmentation(spec, fs=100)
    keys = sample_keys(0, 0, 1, torch.arange(100, 108))
    whole = aug(x, peaks, generator=SampleDraws(keys))
    for part in (slice(0, 4), slice(4, 8), slice(2, 3)):
        assert torch.equal(aug(x[part], peaks[part], generator=SampleDraws(keys[part])), whole[part])


# --- the engine: each process reads only its rows ---------------------------------------------------------------


class _CountingData:
    def __init__(self, x: torch.Tensor, peaks: torch.Tensor):
        self.x, self.peaks, self.calls = x, peaks, []

    def batch(self, index, max_peaks):
        self.calls.append(np.asarray(index).tolist())
        return self.x[np.asarray(index)], self.peaks[np.asarray(index)]


def _views_on_rank(rank: int, world: int, draws: str, x, peaks):
    trainer = Trainer.__new__(Trainer)
    trainer.ctx = SimpleNamespace(config=PretrainConfig(seed=5, input_draws=draws), device=CPU)
    trainer.data = _CountingData(x, peaks)
    trainer.augment = build_augmentation("physio", fs=100)
    trainer.aug_gen = torch.Generator().manual_seed(22)
    trainer.global_batch, trainer.steps_per_epoch, trainer.step = 8, 2, 3
    local = 8 // world
    trainer.rows = slice(rank * local, (rank + 1) * local)
    order = np.arange(16)[::-1].copy()
    return trainer._views(order), trainer.data.calls


def test_each_process_reads_and_augments_only_its_own_rows_and_makes_one_processs_views():
    x, peaks = make_synthetic_batch(16, fs=100, generator=torch.Generator().manual_seed(1))
    (one1, one2), calls = _views_on_rank(0, 1, "per_sample", x, peaks)
    assert calls == [[7, 6, 5, 4, 3, 2, 1, 0]]  # step 3 of 2 per epoch: the second batch of epoch 1
    for world in (2, 4):
        local = 8 // world
        for rank in range(world):
            (v1, v2), calls = _views_on_rank(rank, world, "per_sample", x, peaks)
            assert [len(c) for c in calls] == [local]
            assert torch.equal(v1, one1[rank * local : (rank + 1) * local])
            assert torch.equal(v2, one2[rank * local : (rank + 1) * local])


def test_global_batch_draws_still_read_the_whole_batch_on_every_process():
    x, peaks = make_synthetic_batch(16, fs=100, generator=torch.Generator().manual_seed(1))
    _, calls = _views_on_rank(1, 4, "global_batch", x, peaks)
    assert [len(c) for c in calls] == [8]


def test_configuration_files_written_before_per_sample_draws_keep_their_draws(tmp_path):
    plain = tmp_path / "c.json"
    plain.write_text(json.dumps({"method": "simclr"}))
    assert PretrainConfig.from_file(plain).input_draws == "global_batch"
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"run": "x", "config": {"method": "simclr"}}))
    assert PretrainConfig.from_file(run).input_draws == "global_batch"
    assert PretrainConfig().input_draws == "per_sample"
    plain.write_text(json.dumps({"method": "simclr", "input_draws": "per_sample"}))
    assert PretrainConfig.from_file(plain).input_draws == "per_sample"
    assert PretrainConfig.from_file(plain).augmentation is None
    with pytest.raises(ConfigError, match="input_draws"):
        PretrainConfig(input_draws="per_rank")


def test_a_shipped_acl_ecg_configuration_means_the_resampling_physio_aug_it_was_trained_with():
    from aclecg.studyplan.encoders import effective_sha256

    shipped = json.loads((e20.CHECKPOINTS / "acl_ecg" / "config.json").read_text())  # the 20-epoch configuration
    assert "input_draws" not in shipped and shipped["augmentation"] is None
    config = PretrainConfig.from_file(e20.CHECKPOINTS / "acl_ecg" / "config.json")
    assert (config.augmentation, config.input_draws) == ("physio_v1", "global_batch")
    resolved = config.to_dict()
    stated = {k: v for k, v in resolved.items() if k != "input_draws"} | {"augmentation": None}
    assert effective_sha256(resolved) == effective_sha256(stated)  # digests recorded before 2026-12-05 still match
    new = PretrainConfig(method="acl_ecg").to_dict()
    assert effective_sha256(new) != effective_sha256({**new, "input_draws": "global_batch"})


# --- real processes: parity for 1, 2 and 4 processes and two node ranks -----------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(bundled_prepared: Path) -> dict:
    return dict(
        method="acl_ecg",
        data=[str(bundled_prepared)],
        encoder=TINY,
        epochs=2,
        batch_size=16,
        max_steps=4,
        checkpoint_every=4,
        warmup_steps=2,
        seed=3,
        device="cpu",
        amp="off",
    )


def _launch(out: Path, config: dict, torchrun_args: list[list[str]]) -> list[dict]:
    """One torchrun per entry of ``torchrun_args`` (two entries: two node ranks), all at once."""
    out.mkdir(parents=True)
    spec = out / "spec.json"
    spec.write_text(json.dumps({"out": str(out), "config": config}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    driver = str(REPO / "tests" / "helpers" / "scaleout_driver.py")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", *args, driver, str(spec)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for args in torchrun_args
    ]
    try:
        logs = [p.communicate(timeout=400)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()
    assert all(p.returncode == 0 for p in procs), "\n".join(x[-3000:] for x in logs)
    return [json.loads(f.read_text()) for f in sorted(out.glob("rank-*.json"))]


def _losses(run: Path) -> np.ndarray:
    return np.array([json.loads(x)["loss"] for x in (run / "metrics.jsonl").read_text().splitlines()])


@pytest.fixture(scope="module")
def one_process(bundled_prepared, tmp_path_factory):
    run = tmp_path_factory.mktemp("one") / "run"
    pretrain(PretrainConfig(**_config(bundled_prepared)), run, progress=False)
    return _losses(run)


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 4])
def test_n_processes_give_one_processs_losses_and_read_a_share_each(bundled_prepared, one_process, tmp_path, world):
    ranks = _launch(
        tmp_path / "ddp",
        _config(bundled_prepared),
        [["--nproc_per_node", str(world), "--master_port", str(_free_port())]],
    )
    assert len(ranks) == world
    assert all(r["rows"] == [16 // world] * 4 for r in ranks)  # per-rank input shrinks with the world size
    np.testing.assert_allclose(_losses(tmp_path / "ddp" / "run"), one_process, rtol=PARITY_RTOL, atol=2e-5)


@pytest.mark.slow
def test_two_node_ranks_give_one_processs_losses(bundled_prepared, one_process, tmp_path):
    """Multi-node torchrun on one machine: two launches, ``--nnodes 2``, c10d rendezvous on localhost."""
    endpoint = f"127.0.0.1:{_free_port()}"
    node = ["--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint]
    ranks = _launch(tmp_path / "nodes", _config(bundled_prepared), [[*node, "--rdzv_id", "t"]] * 2)
    assert [r["world_size"] for r in ranks] == [2, 2] and all(r["rows"] == [8] * 4 for r in ranks)
    np.testing.assert_allclose(_losses(tmp_path / "nodes" / "run"), one_process, rtol=PARITY_RTOL, atol=2e-5)
