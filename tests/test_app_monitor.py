"""The Pretraining page's run monitoring (issue 31) through Streamlit's AppTest: progress figures of the watched
run, the loss of several runs on one chart, and the rough cost estimate before a launch."""

from __future__ import annotations

import json
import shutil

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
