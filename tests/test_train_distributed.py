"""Two CPU processes (torchrun + gloo) against one: loss parity of every method, and ranks that fail together.

One torchrun launch runs every scenario (tests/helpers/ddp_driver.py); this file checks what each rank wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aclecg.methods import list_methods
from aclecg.training import PretrainConfig, pretrain

REPO = Path(__file__).resolve().parent.parent
TINY = {"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8}
METHODS = [m.name for m in list_methods()]
#: float32 parity of 1 and 2 processes over 4 steps. Not tighter: on CPU, PyTorch's batch norm of channels-last
#: tensors accumulates in one pass (~2.5e-5 relative error against float64, 4e-7 in the (N, C, T) layout), the
#: cross-process one sums in another order, and a tau = 0.1 contrastive loss amplifies the difference over the
#: steps (largest seen: SimCLR, 9.5e-4 at step 4). A coordination bug is off by far more: with local negatives
#: only, SimCLR's first loss is near log(n - 1) instead of log(2N - 1), tens of percent here.
PARITY_RTOL = 5e-3
#: SimSiam's loss (a negative cosine) sits near 0 in the first steps, where a relative tolerance means nothing, and
#: its stop-gradient + predictor amplify the same rounding: over 4 steps, 1 vs 2 processes differed by up to 6e-4
#: (seed 3, per-sample draws) and 2.3e-4 (seed 4, global-batch draws) on losses of about 0.07, i.e. 0.3-3 %
#: relative. The engine's coordination (synchronised batch norm, gathered batches) is the same for every method, and
#: the others keep the tight tolerance.
PARITY_ATOL = {"simsiam": 1e-3}


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_process_run(bundled_prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    # float32: 1 and N processes agree to rounding only there (bf16 parity is checked with its own tolerance)
    base = dict(
        data=[str(bundled_prepared)],
        encoder=TINY,
        epochs=2,
        batch_size=16,
        max_steps=4,
        checkpoint_every=2,
        keep_last=2,
        warmup_steps=2,
        seed=3,
        device="cpu",
        amp="off",
    )
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    spec = out / "spec.json"
    spec.write_text(json.dumps({"out": str(out), "config": base, "methods": METHODS, "holder_pid": holder.pid}))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(29500 + os.getpid() % 1000),
        str(REPO / "tests" / "helpers" / "ddp_driver.py"),
        str(spec),
    ]
    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)},
        )
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]
    return out, base, ranks


@pytest.mark.slow
def test_every_method_follows_the_single_process_loss_curve(two_process_run, tmp_path):
    out, base, _ = two_process_run
    for method in METHODS:
        pretrain(PretrainConfig(**{**base, "method": method}), tmp_path / method, progress=False)
        one, two = _metrics(tmp_path / method), _metrics(out / f"{method}-2")
        assert [r["world_size"] for r in two] == [2] * 4, method
        a, b = np.array([r["loss"] for r in two]), np.array([r["loss"] for r in one])
        np.testing.assert_allclose(a, b, rtol=PARITY_RTOL, atol=PARITY_ATOL.get(method, 2e-5), err_msg=method)


@pytest.mark.slow
def test_bf16_two_processes_follow_one_process_within_bf16_rounding(two_process_run, tmp_path):
    """CPU bf16 autocast under DDP: the same loss curve to bf16 rounding (rtol 2e-2), every rank in bf16."""
    out, base, _ = two_process_run
    pretrain(PretrainConfig(**{**base, "method": "acl_ecg", "amp": "bf16"}), tmp_path / "bf16", progress=False)
    one, two = _metrics(tmp_path / "bf16"), _metrics(out / "acl_ecg-bf16-2")
    assert json.loads((out / "acl_ecg-bf16-2" / "config.json").read_text())["resolved_amp"] == "bf16"
    np.testing.assert_allclose([r["loss"] for r in two], [r["loss"] for r in one], rtol=2e-2)


@pytest.mark.slow
def test_a_non_finite_loss_on_one_rank_stops_both(two_process_run):
    out, _, ranks = two_process_run
    errors = [r["nonfinite"]["error"] for r in ranks]
    assert all(e and "loss became non-finite at step 2 on 1 of 2 processes" in e for e in errors), errors
    assert json.loads((out / "nonfinite" / "status.json").read_text())["state"] == "failed"


@pytest.mark.slow
def test_resume_gives_every_rank_the_stored_configuration(two_process_run):
    _, _, ranks = two_process_run
    first0, resumed0 = ranks[0]["resume_configs"]
    first1, resumed1 = ranks[1]["resume_configs"]
    assert resumed0 == resumed1 == first0 == first1
    assert resumed1["lr"] != 0.5 and resumed1["seed"] == 3  # the override was not adopted by any rank


@pytest.mark.slow
def test_a_rank_zero_lock_failure_stops_both_ranks_within_seconds(two_process_run):
    _, _, ranks = two_process_run
    assert "in use by pid" in ranks[0]["lock"]["error"]
    assert ranks[1]["lock"]["error"].startswith("rank 0 could not start the run: ")
    assert max(r["lock"]["seconds"] for r in ranks) < 10


@pytest.mark.slow
def test_compile_under_ddp_is_refused_by_every_rank(two_process_run):
    _, _, ranks = two_process_run
    assert all("compile is supported for single-process runs only" in (r["compile"]["error"] or "") for r in ranks)


@pytest.mark.slow
def test_cancel_under_torchrun_stops_every_rank_with_a_checkpoint_and_an_exit_code(bundled_prepared, tmp_path):
    """Cancel signals the training processes, not the wrapper: both ranks checkpoint, torchrun exits 0, and the
    wrapper shell lives to write the exit code."""
    import shlex
    import time

    from aclecg import jobs, procs

    run = tmp_path / "runs" / "ddp"
    run.mkdir(parents=True)
    config = dict(
        method="simclr",
        data=[str(bundled_prepared)],
        encoder=TINY,
        epochs=1,
        batch_size=16,
        max_steps=2000,
        checkpoint_every=500,
        seed=3,
        device="cpu",
    )
    (tmp_path / "c.json").write_text(json.dumps(config))
    argv = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(29400 + os.getpid() % 1000),
        "-m",
        "aclecg",
        "pretrain",
        "--config",
        str(tmp_path / "c.json"),
        "--run-dir",
        str(run),
        "--no-progress",
    ]
    script = f"{shlex.join(argv)}; echo $? > {shlex.quote(str(run / 'exit_code'))}"
    with open(run / "stdout.log", "wb") as out:
        wrapper = subprocess.Popen(
            ["/bin/sh", "-c", script],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    (run / "job.json").write_text(json.dumps({"kind": "pretrain", **procs.own_record(wrapper.pid)}))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (
            len(jobs.read_metrics(run)) >= 3 and len(list((run / "procs").glob("rank-*.json"))) == 2
        ):
            time.sleep(0.2)
        assert jobs.run_info(run).state == "running", jobs.tail_log(run)
        assert jobs.cancel(run, wait=60)
        wrapper.wait(timeout=30)
        info = jobs.run_info(run)
        assert info.state == "cancelled" and not info.alive, jobs.tail_log(run)
        assert (run / "exit_code").read_text().strip() == "0"
        assert (run / "checkpoints" / f"step_{info.step:08d}.pt").exists()
    finally:
        if wrapper.poll() is None:
            os.killpg(wrapper.pid, 9)
