"""The pretraining engine: configuration, run directory, exact resume, crash safety, two-process DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from aclecg import atomicio
from aclecg import checkpoint as ckpt
from aclecg.errors import AclEcgError, ConfigError
from aclecg.training import PretrainConfig, RunDir, epoch_permutation, lr_at, pretrain

REPO = Path(__file__).resolve().parent.parent
TINY = {"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8}


def tiny_config(data: Path, **overrides) -> PretrainConfig:
    base = dict(
        method="acl_ecg",
        data=[str(data)],
        encoder=TINY,
        epochs=2,
        batch_size=16,
        max_steps=6,
        checkpoint_every=2,
        keep_last=2,
        warmup_steps=2,
        seed=3,
        device="cpu",
    )
    base.update(overrides)
    return PretrainConfig(**base)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return ckpt.load_checkpoint(run_dir / "encoder.pt")["encoder"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ------------------------------------------------------------------------------------------ pure pieces
def test_config_validation_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="batch_size"):
        PretrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="unknown configuration keys"):
        PretrainConfig.from_dict({"methd": "simclr"})
    with pytest.raises(ConfigError, match="unknown lead"):
        PretrainConfig(leads=["II", "V7"])
    with pytest.raises(ConfigError, match="device"):
        PretrainConfig(device="tpu")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        PretrainConfig.from_file(bad)


def test_config_round_trips_through_json(tmp_path):
    config = PretrainConfig(method="simclr", data=["x"], leads=["ii", "AVR", "V1"], epochs=3)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config.to_dict()))
    again = PretrainConfig.from_file(path)
    assert again.to_dict() == config.to_dict()
    assert again.leads == ["II", "aVR", "V1"]


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    a, b = epoch_permutation(50, 1, 3), epoch_permutation(50, 1, 3)
    assert np.array_equal(a, b) and sorted(a) == list(range(50))
    assert not np.array_equal(a, epoch_permutation(50, 1, 4))


def test_learning_rate_schedule():
    assert lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(55, 100, 1.0, 10) == pytest.approx(0.5)
    assert lr_at(100, 100, 1.0, 10) == pytest.approx(0.0, abs=1e-12)


def test_run_lock_refuses_a_second_writer(tmp_path):
    run = RunDir(tmp_path / "r")
    run.acquire_lock()
    with pytest.raises(AclEcgError, match="in use"):
        RunDir(tmp_path / "r").acquire_lock()
    run.release_lock()
    # A lock left by a dead process is taken over.
    (tmp_path / "r" / "lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename}))
    RunDir(tmp_path / "r").acquire_lock()


# --------------------------------------------------------------------------------- training on real data
def test_run_directory_contract(bundled_prepared, tmp_path):
    run_dir = tmp_path / "run"
    out = pretrain(tiny_config(bundled_prepared), run_dir, progress=False)
    assert out == run_dir / "encoder.pt"
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["config"]["method"] == "acl_ecg"
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 6 and status["pid"] == os.getpid()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    for key in ("loss", "lr", "samples_per_s", "device", "epoch"):
        assert key in rows[0]
    assert rows[0]["rss_mb"] > 0 and "peak_gpu_memory_mb" not in rows[0]  # CPU: current RSS, named as such
    assert json.loads((run_dir / "procs" / "rank-0.json").read_text())["pid"] == os.getpid()
    assert {"region", "instance"} <= set(rows[0])  # every loss term of ACL-ECG is logged
    steps = sorted(p.name for p in (run_dir / "checkpoints").glob("step_*.pt"))
    assert steps == ["step_00000004.pt", "step_00000006.pt"]  # keep_last=2
    assert (run_dir / "checkpoints" / "best.pt").exists()
    assert not (run_dir / "lock").exists()
    encoder, meta = ckpt.load_encoder(out)
    assert meta["method"] == "acl_ecg" and meta["fs"] == 100 and meta["n_samples"] == 1000
    assert meta["data_fingerprint"]
    # the weights carry the data's preprocessing contract (the shared cache predates it: the one it implies)
    from aclecg.contract import implied

    assert ckpt.load_checkpoint(out)["contract"] == implied(100, 1000, encoder.leads).to_dict()
    with pytest.raises(AclEcgError, match="already holds a run"):
        pretrain(tiny_config(bundled_prepared), run_dir, progress=False)


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_stop_and_resume_is_bit_identical(bundled_prepared, tmp_path):
    config = tiny_config(bundled_prepared, method="byol")  # EMA target and predictor: the most state to restore
    pretrain(config, tmp_path / "straight", progress=False)
    pretrain(config, tmp_path / "split", progress=False, stop_after_steps=3)
    assert json.loads((tmp_path / "split" / "status.json").read_text())["state"] == "cancelled"
    pretrain(config, tmp_path / "split", progress=False, resume=True)
    assert_same_weights(final_weights(tmp_path / "straight"), final_weights(tmp_path / "split"))
    a = [json.loads(x)["loss"] for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x)["loss"] for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert a == b


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_resume_skips_a_corrupted_checkpoint(bundled_prepared, tmp_path, capsys):
    config = tiny_config(bundled_prepared, method="simclr", checkpoint_every=1, keep_last=3)
    pretrain(config, tmp_path / "straight", progress=False)
    run_dir = tmp_path / "split"
    pretrain(config, run_dir, progress=False, stop_after_steps=4)
    newest = RunDir(run_dir).step_checkpoints()[0]
    newest.write_bytes(newest.read_bytes()[:-100])  # cut short, as by a full disk
    pretrain(config, run_dir, progress=False, resume=True)
    err = capsys.readouterr().err
    assert "corrupted" in err and "falling back" in err and "resumed from step 3" in err
    assert_same_weights(final_weights(tmp_path / "straight"), final_weights(run_dir))


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(bundled_prepared, tmp_path):
    """A real crash: the process is killed with SIGKILL while training, then resumed from the shell."""
    config = tiny_config(bundled_prepared, method="moco", max_steps=12, checkpoint_every=3, epochs=1)
    cfg_file = tmp_path / "config.json"
    cfg_file.write_text(json.dumps(config.to_dict()))
    pretrain(config, tmp_path / "straight", progress=False)
    run_dir = tmp_path / "crash"
    cmd = [
        sys.executable,
        "-m",
        "aclecg",
        "pretrain",
        "--config",
        str(cfg_file),
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "checkpoints" / "step_00000006.pt").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = RunDir(run_dir).step_checkpoints()
    assert done and not (run_dir / "encoder.pt").exists(), "the run should have been killed mid-way"
    rc = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stderr
    assert_same_weights(final_weights(tmp_path / "straight"), final_weights(run_dir))


@pytest.mark.slow
def test_torchrun_cli_run_follows_the_single_process_loss_curve_and_exits_cleanly(bundled_prepared, tmp_path):
    """``torchrun -m aclecg pretrain`` with 2 CPU processes (gloo): the 1-process losses, and a clean shutdown.

    The process group used to be left alive at exit: torch warned on every run, and 1 run in ~5 died with
    SIGABRT ("terminate called without an active exception"). Every method's parity and the ranks' coordination
    are tested in tests/test_train_distributed.py.
    """
    config = tiny_config(bundled_prepared, method="acl_ecg", max_steps=4, amp="off")  # float32: exact parity
    cfg_file = tmp_path / "acl_ecg.json"
    cfg_file.write_text(json.dumps(config.to_dict()))
    pretrain(config, tmp_path / "one", progress=False)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(29500 + os.getpid() % 1000),
        "-m",
        "aclecg",
        "pretrain",
        "--config",
        str(cfg_file),
        "--run-dir",
        str(tmp_path / "two"),
        "--no-progress",
    ]
    rc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert rc.returncode == 0, rc.stderr[-3000:]
    assert "destroy_process_group" not in rc.stderr and "terminate called" not in rc.stderr, rc.stderr[-3000:]
    one = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["world_size"] for r in two] == [2] * 4
    np.testing.assert_allclose([r["loss"] for r in two], [r["loss"] for r in one], rtol=2e-4, atol=2e-5)


def test_excluded_folds_never_reach_pretraining(bundled_prepared):
    from aclecg.data import PreparedDataset
    from aclecg.training import PretrainData

    folds = PreparedDataset(bundled_prepared).records["fold"].to_numpy()
    official = PretrainData([bundled_prepared], ["I", "II"])  # default: the test split (fold 10) left out
    assert set(folds[official.local]) == set(range(1, 10))
    rotated = PretrainData([bundled_prepared], ["I", "II"], exclude_splits=(), exclude_folds=(9,))
    assert set(folds[rotated.local]) == set(range(1, 11)) - {9}
    assert len(rotated) == int((folds != 9).sum())
    with pytest.raises(ConfigError, match="exclude_folds"):
        PretrainConfig(exclude_folds=["9"])


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_resume_keeps_the_precision_the_run_started_with(bundled_prepared, tmp_path, monkeypatch):
    """amp=auto is resolved once and recorded; a resume on a machine where auto would choose otherwise keeps it."""
    monkeypatch.setenv("ACLECG_CPU_BF16", "1")
    config = tiny_config(bundled_prepared, method="simclr", amp="auto")
    run_dir = tmp_path / "run"
    pretrain(config, run_dir, progress=False, stop_after_steps=2)
    assert json.loads((run_dir / "config.json").read_text())["resolved_amp"] == "bf16"
    monkeypatch.setenv("ACLECG_CPU_BF16", "0")  # "another machine": auto would now mean float32
    pretrain(config, run_dir, progress=False, resume=True)
    assert json.loads((run_dir / "config.json").read_text())["resolved_amp"] == "bf16"
    assert "precision: bf16 (amp=auto, as the run started, cpu)" in (run_dir / "log.txt").read_text()


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_a_run_from_before_the_precision_record_resumes_in_float32(bundled_prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("ACLECG_CPU_BF16", "0")
    config = tiny_config(bundled_prepared, method="simclr", amp="auto")
    run_dir = tmp_path / "old"
    pretrain(config, run_dir, progress=False, stop_after_steps=2)
    stored = json.loads((run_dir / "config.json").read_text())
    del stored["resolved_amp"]  # as written before the field existed
    (run_dir / "config.json").write_text(json.dumps(stored))
    monkeypatch.setenv("ACLECG_CPU_BF16", "1")
    pretrain(config, run_dir, progress=False, resume=True)
    assert json.loads((run_dir / "config.json").read_text())["resolved_amp"] == "off"


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_resume_falls_back_to_best_when_every_step_checkpoint_is_bad(bundled_prepared, tmp_path, capsys):
    config = tiny_config(bundled_prepared, method="simclr", checkpoint_every=2, keep_last=2)
    run_dir = tmp_path / "run"
    pretrain(config, run_dir, progress=False, stop_after_steps=4)
    run = RunDir(run_dir)
    best = ckpt.load_checkpoint(run.checkpoints / "best.pt")
    for path in run.step_checkpoints():
        path.write_bytes(path.read_bytes()[:-50])
    pretrain(config, run_dir, progress=False, resume=True)
    err = capsys.readouterr().err
    assert "resuming from best.pt" in err and f"resumed from step {best['step']}" in err
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 6  # no step logged twice


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_files_left_by_an_interrupted_write_are_cleaned_on_the_next_start(bundled_prepared, tmp_path, capsys):
    config = tiny_config(bundled_prepared, method="simclr")
    run_dir = tmp_path / "run"
    pretrain(config, run_dir, progress=False, stop_after_steps=2)
    ckpts = run_dir / "checkpoints"
    (ckpts / ".step_00000004.pt.abc123.tmp").write_bytes(b"x" * 1000)  # killed mid-write
    (ckpts / "best.pt").unlink()  # killed between sidecar and file
    pretrain(config, run_dir, progress=False, resume=True)
    assert not list(ckpts.glob(".*.tmp"))
    assert "removed 2 file(s) left by an interrupted write" in capsys.readouterr().err
    assert (ckpts / "best.pt").exists() == (ckpts / "best.pt.sha256").exists()


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_disk_full_while_checkpointing_is_one_clear_error(bundled_prepared, tmp_path, monkeypatch, capsys):
    """ENOSPC on a checkpoint write: a StorageError naming the file, status 'failed', earlier checkpoints intact,
    no temporary file left, and through the CLI one line with exit code 2."""
    import errno

    from aclecg.cli import main
    from aclecg.errors import StorageError

    config = tiny_config(bundled_prepared, method="simclr", checkpoint_every=2)
    real_replace = atomicio.os.replace  # every checkpoint write goes through aclecg.atomicio

    def replace(src, dst):
        if "step_00000004" in str(dst):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(atomicio.os, "replace", replace)
    run_dir = tmp_path / "run"
    with pytest.raises(StorageError, match=r"cannot write .*step_00000004.pt.sha256: No space left on device"):
        pretrain(config, run_dir, progress=False)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "No space left" in status["error"]
    assert ckpt.load_checkpoint(run_dir / "checkpoints" / "step_00000002.pt")["step"] == 2
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(config.to_dict()))
    capsys.readouterr()
    assert main(["pretrain", "--config", str(cfg), "--run-dir", str(tmp_path / "cli"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot write ") and "Traceback" not in "\n".join(err)
