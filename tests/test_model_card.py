"""A shipped checkpoint carries its whole loss curve (issue 28): `ship_checkpoint` copies the run's metrics.jsonl
beside the encoder and the model card sums the curve up in ten numbers."""

from __future__ import annotations

import json
from pathlib import Path

from aclecg.results.report import loss_by_tenth, ship_checkpoint


def test_loss_by_tenth_is_the_mean_of_each_tenth():
    rows = [{"step": i + 1, "loss": float(i // 10)} for i in range(100)]  # 0 for ten steps, then 1, ...
    assert loss_by_tenth(rows) == " → ".join(f"{v:.3f}" for v in range(10))
    assert loss_by_tenth([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}]) == "2.000 → 1.000"
    assert loss_by_tenth([{"step": 1}]) == "not recorded"


def _toy_encoder(folder: Path, prepared: Path) -> dict:
    """A tiny simclr encoder for the bundled data saved as ``folder/encoder.pt``; returns its configuration."""
    from aclecg import checkpoint as ckpt
    from aclecg.data import PreparedDataset
    from aclecg.models import build_encoder
    from aclecg.training.config import PretrainConfig

    data = PreparedDataset(prepared)
    enc = build_encoder({"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8, "leads": list(data.leads)})
    payload = {"format_version": 1, "method": "simclr", "hparams": {}, "encoder_config": enc.config.to_dict()}
    payload |= {"leads": list(data.leads), "fs": data.fs, "n_samples": data.n_samples, "step": 40}
    ckpt.save_checkpoint(
        folder / "encoder.pt", payload | {"data_fingerprint": data.fingerprint, "encoder": enc.state_dict()}
    )
    return PretrainConfig(method="simclr", epochs=2).to_dict()


def test_shipping_copies_the_loss_curve_and_the_card_shows_it(tmp_path, bundled_prepared):
    run = tmp_path / "runs" / "ship-toy"
    config = _toy_encoder(run, bundled_prepared)
    (run / "config.json").write_text(json.dumps({"run": "ship-toy", "config": config}))
    (run / "status.json").write_text(json.dumps({"state": "finished", "started": 0, "finished": 60}))
    curve = "".join(json.dumps({"step": i, "loss": 3.0 - i / 20}) + "\n" for i in range(1, 41))
    (run / "metrics.jsonl").write_text(curve)

    dest = ship_checkpoint(run, tmp_path / "checkpoints" / "toy")
    assert (dest / "metrics.jsonl").read_text() == curve
    card = (dest / "README.md").read_text()
    assert "| loss curve | 2.875 → 2.675 → " in card and "every step in `metrics.jsonl`" in card


def test_a_committed_checkpoint_gets_its_card_in_place_from_its_loss_curve(tmp_path, bundled_prepared):
    """A committed folder (plain config, metrics.jsonl, no status.json): `aclecg study ship` writes its card in place;
    the time comes from the steps' clock, and the precision is not guessed."""
    from aclecg.results.study import ship_official

    folder = tmp_path / "checkpoints" / "toy"
    config = _toy_encoder(folder, bundled_prepared)
    (folder / "config.json").write_text(json.dumps(config))
    rows = [{"step": i, "loss": 3.0 - i / 20, "time": 1000.0 + 3 * i, "device": "cpu"} for i in range(1, 41)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = (folder / "encoder.pt").read_bytes()
    (tmp_path / "checkpoints" / "old").mkdir()  # a committed folder without its curve keeps its card
    (tmp_path / "checkpoints" / "old" / "config.json").write_text(json.dumps(config))

    assert ship_official(tmp_path / "sweeps", tmp_path / "runs", tmp_path / "checkpoints") == [folder]
    card = (folder / "README.md").read_text()
    assert "| time | 1.9 min on cpu, timed from its first to its last step (1 process" in card  # 39 steps of 3 s
    assert "| precision | not recorded (`amp=" in card and "| loss curve | 2.875 → " in card
    assert (folder / "encoder.pt").read_bytes() == before and json.loads((folder / "config.json").read_text()) == config
    assert not (tmp_path / "checkpoints" / "old" / "README.md").exists()
