"""Resume never costs an intact checkpoint: damaged sidecars, damaged files and other runs' checkpoints are told
apart before anything in the run directory changes; and every checkpoint records its provenance.

Two tiny runs are made once (ACL-ECG and SimCLR, stopped at step 2 of 4); each test works on a copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from aclecg import checkpoint as ckpt
from aclecg.cli import main
from aclecg.errors import CheckpointError, DataError
from aclecg.training import RunDir, pretrain
from tests.test_train import tiny_config


def _config(data: Path, method: str = "acl_ecg"):
    return tiny_config(data, method=method, batch_size=8, max_steps=4, checkpoint_every=1, keep_last=3, amp="off")


@pytest.fixture(scope="module")
def runs(bundled_prepared, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("resume-safety")
    out = {}
    for method in ("acl_ecg", "simclr"):
        pretrain(_config(bundled_prepared, method), root / method, progress=False, stop_after_steps=2)
        out[method] = root / method
    return out


@pytest.fixture
def run_dir(runs, tmp_path) -> Path:
    """A copy of the ACL-ECG run stopped at step 2: step_1, step_2, best.pt, two metric rows."""
    return Path(shutil.copytree(runs["acl_ecg"], tmp_path / "run"))


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    """The bytes of every checkpoint (set aside or not), of the metrics and of the stored configuration."""
    files = [p for p in (run_dir / "checkpoints").rglob("*") if p.is_file()]
    files += [run_dir / "metrics.jsonl"]
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in files}


def _steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _forge(path: Path, change) -> None:
    """Rewrite a checkpoint as another run would have written it: changed, then saved with a valid digest."""
    payload = torch.load(path, weights_only=True)
    del payload["integrity"]
    change(payload)
    ckpt.save_checkpoint(path, payload)


def _resume(run_dir: Path, data: Path, **kwargs) -> Path:
    return pretrain(_config(data), run_dir, progress=False, resume=True, **kwargs)


# ------------------------------------------------------------------------------------------------ provenance
def test_every_checkpoint_records_its_provenance(run_dir, bundled_prepared):
    config = _config(bundled_prepared)
    step2 = ckpt.provenance(run_dir / "checkpoints" / "step_00000002.pt")
    assert step2["seed"] == config.seed == 3
    assert step2["exclude_splits"] == ["test"] and step2["exclude_folds"] == []
    assert step2["steps"] == 2 and step2["data"] == [str(bundled_prepared)]
    assert step2["data_fingerprint"] and step2["n_records"] > config.batch_size
    per_epoch = step2["n_records"] // config.batch_size
    assert step2["epochs"] == pytest.approx(2 / per_epoch, abs=1e-6)
    assert ckpt.provenance(run_dir / "checkpoints" / "step_00000001.pt")["steps"] == 1
    encoder = _resume(run_dir, bundled_prepared)
    final = ckpt.load_encoder(encoder)[1]["provenance"]
    assert final == {**step2, "steps": 4, "epochs": pytest.approx(4 / per_epoch, abs=1e-6)}
    ckpt.check_excluded_fold(encoder, 10)
    with pytest.raises(DataError, match="pretrained on fold 9"):
        ckpt.check_excluded_fold(encoder, 9)


# -------------------------------------------------------------------------------------------- damaged files
def test_damaged_sidecars_do_not_send_a_resume_back_to_scratch(run_dir, bundled_prepared, capsys):
    """Only the sidecars are wrong: the embedded digests vouch for the files, and the run resumes at step 2."""
    for sidecar in (run_dir / "checkpoints").glob("*.sha256"):
        sidecar.write_text("0" * 64 + "  damaged\n")
    step2 = (run_dir / "checkpoints" / "step_00000002.pt").read_bytes()
    _resume(run_dir, bundled_prepared)
    err = capsys.readouterr().err
    assert "resuming from step_00000002.pt" in err and "resumed from step 2" in err, err
    assert "starting from scratch" not in err
    assert (run_dir / "checkpoints" / "step_00000002.pt").read_bytes() == step2
    assert _steps(run_dir) == [1, 2, 3, 4]


def test_only_damaged_checkpoints_refuse_a_resume_unless_restart(run_dir, bundled_prepared, capsys):
    for path in RunDir(run_dir).step_checkpoints() + [run_dir / "checkpoints" / "best.pt"]:
        path.write_bytes(path.read_bytes()[:-64])  # cut short, sidecars intact
    before = _snapshot(run_dir)
    with pytest.raises(
        CheckpointError, match=r"no checkpoint can be used \(step_00000002.pt, step_00000001.pt, best.pt"
    ):
        _resume(run_dir, bundled_prepared)
    assert _snapshot(run_dir) == before
    capsys.readouterr()
    assert main(["pretrain", "--run-dir", str(run_dir), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: cannot resume {run_dir}: no checkpoint can be used") and "--restart" in err[-1]
    assert _snapshot(run_dir) == before
    capsys.readouterr()
    _resume(run_dir, bundled_prepared, restart=True, stop_after_steps=1)  # the user's word: start again
    assert "starting from scratch" in capsys.readouterr().err
    aside = next((run_dir / "checkpoints" / "set-aside").iterdir())
    for name, data in before.items():  # the damaged files are kept, as they were
        if name.startswith("checkpoints/"):
            assert (aside / Path(name).name).read_bytes() == data
    assert _steps(run_dir) == [1]


# -------------------------------------------------------------------------------------- other runs' files
def test_a_checkpoint_of_another_method_is_refused_before_anything_changes(runs, run_dir, bundled_prepared, capsys):
    """It used to cut metrics.jsonl back, then fail with a RuntimeError traceback in load_state_dict."""
    foreign = runs["simclr"] / "checkpoints"
    for name in ("step_00000002.pt", "step_00000002.pt.sha256"):
        shutil.copy(foreign / name, run_dir / "checkpoints" / name)
    before = _snapshot(run_dir)
    with pytest.raises(CheckpointError) as info:
        _resume(run_dir, bundled_prepared)
    message = str(info.value)
    assert "step_00000002.pt (from another run: method simclr (this run: acl_ecg)" in message, message
    assert "nothing was changed" in message and "\n" not in message
    assert _snapshot(run_dir) == before
    capsys.readouterr()
    assert main(["pretrain", "--run-dir", str(run_dir), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot resume") and "Traceback" not in "\n".join(err)
    assert _snapshot(run_dir) == before
    # --restart sets the foreign file aside (intact) and continues from this run's newest checkpoint
    _resume(run_dir, bundled_prepared, restart=True, stop_after_steps=1)
    assert "resuming from step_00000001.pt" in capsys.readouterr().err
    aside = next((run_dir / "checkpoints" / "set-aside").iterdir())
    assert (aside / "step_00000002.pt").read_bytes() == before["checkpoints/step_00000002.pt"]
    assert _steps(run_dir) == [1, 2]


def _recorded(payload, **values):
    """Set what a run records about itself: its stored configuration and its provenance."""
    payload["config"] = json.dumps({**json.loads(payload["config"]), **values})
    payload.setdefault("provenance", {}).update(values)


def _seed(payload):
    _recorded(payload, seed=5)


def _data(payload):
    payload["data_fingerprint"] = "f" * 64
    payload.setdefault("provenance", {})["data_fingerprint"] = "f" * 64


def _folds(payload):
    _recorded(payload, exclude_folds=[9])


def _widths(payload):
    payload["encoder_config"] = {**payload["encoder_config"], "widths": [16]}


def _step(payload):
    payload["step"] = 40


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_seed, "seed 5 (this run: 3)"),
        (_data, "data_fingerprint ffffffffffff… (this run: "),
        (_folds, "exclude_folds [9] (this run: [])"),
        (_widths, "encoder_config.widths [16] (this run: [8])"),
        (_step, "step 40 (this run: 0..4)"),
    ],
    ids=["seed", "data", "folds", "encoder", "step"],
)
def test_a_checkpoint_of_another_run_is_refused_naming_what_differs(change, named, run_dir, bundled_prepared):
    """Same architecture, other seed or data: this used to be resumed silently."""
    _forge(run_dir / "checkpoints" / "step_00000002.pt", change)
    before = _snapshot(run_dir)
    with pytest.raises(CheckpointError, match="from another run") as info:
        _resume(run_dir, bundled_prepared)
    assert named in str(info.value), str(info.value)
    assert _snapshot(run_dir) == before


def test_a_foreign_older_checkpoint_is_refused_too(run_dir, bundled_prepared):
    """An older foreign file would be pruned by keep_last once the run moves on: it stops the resume as well."""
    _forge(run_dir / "checkpoints" / "step_00000001.pt", _seed)
    before = _snapshot(run_dir)
    with pytest.raises(CheckpointError, match=r"step_00000001.pt \(from another run: seed 5"):
        _resume(run_dir, bundled_prepared)
    assert _snapshot(run_dir) == before
