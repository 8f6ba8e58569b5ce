"""The Pretraining page's run monitoring (issue 31) through Streamlit's AppTest: progress figures of the watched
run, the loss of several runs on one chart, and the rough cost estimate before a launch."""

from __future__ import annotations

import base64
import json
import shutil

import numpy as np
from test_app import PAGES, _app, _assert_clean, empty_project, project

__all__ = ["empty_project", "project"]  # fixtures


def test_pretraining_page_shows_progress_compares_runs_and_estimates_the_cost(project):
    runs = project / "runs"
    shutil.copytree(runs / "acl-demo", runs / "acl-demo-2")  # a second finished run to compare with
    at = _app()
    at.switch_page(PAGES[3]).run()
    _assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert {"elapsed", "ETA", "steps/s", "learning rate"} <= set(metrics)
    last = json.loads((runs / "acl-demo-2" / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics["learning rate"] == f"{last['lr']:.2e}"
    assert metrics["ETA"] == "–"  # finished: nothing left
    assert any("Trained to the end" in c.value for c in at.caption)
    compare = next(m for m in at.multiselect if m.label == "compare the loss of runs")
    compare.set_value(["acl-demo", "acl-demo-2"]).run()
    _assert_clean(at)
    chart = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert sorted(t["name"] for t in chart["data"]) == ["acl-demo", "acl-demo-2"]
    estimate = [c.value for c in at.caption if c.value.startswith("Estimated time, rough")]
    assert estimate and "steps/epoch" in estimate[0] and "s/step" in estimate[0] and "2-core CPU" in estimate[0]


def test_pretraining_page_compares_the_loss_curves_committed_with_encoders(project, monkeypatch):
    """Issue 28: every committed encoder's whole loss curve can be drawn beside live runs."""
    from aclecg import jobs_watch

    curve_dir = project / "checkpoints" / "e120" / "rotations" / "test8" / "acl_ecg"
    curve_dir.mkdir(parents=True)
    rows = [{"step": i, "loss": 2.0 - i / 100, "lr": 1e-3, "time": 1000.0 + i} for i in range(1, 121)]
    (curve_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert jobs_watch.committed_curves(project / "checkpoints")["e120/rotations/test8/acl_ecg"] == curve_dir
    monkeypatch.setenv("ACLECG_CHECKPOINTS", str(project / "checkpoints"))
    at = _app()
    at.switch_page(PAGES[3]).run()
    _assert_clean(at)
    compare = next(m for m in at.multiselect if m.label == "compare the loss of runs")
    label = "e120/rotations/test8/acl_ecg (committed)"
    assert label in compare.options
    compare.set_value(["acl-demo", label]).run()
    _assert_clean(at)
    chart = json.loads(at.get("plotly_chart")[-1].proto.spec)
    drawn = {t["name"]: t for t in chart["data"]}
    x = drawn[label]["x"]  # plotly ships numeric arrays as typed binary
    steps = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]) if isinstance(x, dict) else np.asarray(x)
    assert set(drawn) == {"acl-demo", label} and steps.tolist() == list(range(1, 121))  # every step of the curve
