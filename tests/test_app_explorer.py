"""The Explorer's viewer tools through AppTest: navigating away from an upload (issue 31), the gain, the enlarged
lead and the measurements line."""

from __future__ import annotations

import base64
import json

import pytest

pytest.importorskip("streamlit")
from test_app import PAGES, _app, upload_js00001_on_the_explorer  # tests/ is on sys.path (rootdir conftest)


@pytest.fixture
def empty_project(tmp_path, monkeypatch):
    """No runs, no checkpoints, caches in a temp folder (as tests/test_app.py's fixture)."""
    for name, sub in (("RUNS", "runs"), ("CHECKPOINTS", "checkpoints"), ("UMAP_CACHE", "cache/umap")):
        monkeypatch.setenv(f"ACLECG_{name}", str(tmp_path / sub))
    monkeypatch.setenv("ACLECG_PUBLISHED", str(tmp_path / "published"))
    return tmp_path


def _title(at) -> str:
    return json.dumps(json.loads(at.get("plotly_chart")[0].proto.spec)["layout"].get("title"))


@pytest.mark.slow  # about 6 s: the upload is parsed in the sandbox
def test_next_after_an_upload_shows_the_chosen_record(empty_project):
    at = upload_js00001_on_the_explorer()
    assert "uploaded JS00001" in _title(at)
    at.button(key="explorer_next").click().run()
    record = at.selectbox(key="explorer_record").value
    assert "uploaded" not in _title(at) and f"record {record.split(' ')[0]}" in _title(at)
    assert at.toggle(key="explorer_use").value is False  # the upload is still there, one switch away
    at.toggle(key="explorer_use").set_value(True).run()
    assert "uploaded JS00001" in _title(at)
    at.selectbox(key="explorer_record").set_value(at.selectbox(key="explorer_record").options[3]).run()
    assert "uploaded" not in _title(at)


def test_gain_zoom_and_measurements_on_the_explorer(empty_project):
    at = _app()
    at.session_state["explorer_calipers"] = True  # the interactive chart, whose spec is read below
    at.switch_page(PAGES[0]).run()
    assert any(m.value.startswith("**Heart rate ") and " · QRS " in m.value for m in at.markdown)
    at.selectbox(key="explorer_gain").set_value(20.0).run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [a["text"] for a in spec["layout"]["annotations"] if a.get("name") == "calibration label"] == [
        f"{spec['layout']['meta']['mm_per_unit']:g} mm/{'mV' if spec['layout']['meta']['units'] == 'mV' else 'SD'}"
    ]
    assert spec["layout"]["meta"]["mm_per_unit"] in (20.0, 5.0)  # 20 mm/mV, or 5 mm/SD for a prepared signal
    at.toggle(key="explorer_zoom").set_value(True).run()
    zoom = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert zoom["layout"]["title"]["text"] == "lead II, enlarged"
    assert any(s.get("name") == "QRS" for s in zoom["layout"]["shapes"])


def test_the_explorer_opens_on_the_print_drawn_by_the_server(empty_project):
    """By default the ECG is one SVG image (no plotly chart: the page opens without the chart library); the
    "calipers and zoom" toggle swaps in the interactive chart of the same figure."""
    at = _app()
    at.switch_page(PAGES[0]).run()
    assert not at.exception and not at.get("plotly_chart")
    images = at.get("image")
    assert len(images) == 1
    url = images[0].proto.imgs[0].url
    assert url.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(url.split(",", 1)[1]).decode()
    record = at.selectbox(key="explorer_record").value.split(" ")[0]
    assert f'aria-label="ptbxl · record {record}"' in svg
    at.toggle(key="explorer_calipers").set_value(True).run()
    assert not at.get("image")
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["title"]["text"] == f"ptbxl · record {record}"
