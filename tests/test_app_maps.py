"""The Representations page at scale (Streamlit AppTest): a capped, stratified map; any record by its id; a map
recomputed only when something it depends on changes."""

from __future__ import annotations

import collections
import json

import pytest

pytest.importorskip("streamlit")

# the fixtures (a project with a tiny shipped checkpoint) and helpers of the app's own tests
from tests.test_app import PAGES, _app, _assert_clean, _map_layers, empty_project, project  # noqa: F401

# AppTests of the capped map (about 5 s): the slow suite (make test-slow), to keep make test under 90 s
pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("project")
def test_representations_caps_the_map_and_reaches_any_record_by_id(monkeypatch):
    from aclecg.analysis import record_map
    from aclecg.data import PreparedDataset, ensure_bundled

    monkeypatch.setattr(record_map, "MAX_MAP_POINTS", 12)
    records = PreparedDataset(ensure_bundled(["challenge"])["challenge"]).records
    at = _app()
    at.session_state["rep_datasets"] = ["challenge"]  # 21 records, 12 of them mapped
    at.switch_page(PAGES[4]).run()
    _assert_clean(at)
    assert len(_map_layers(at)[0]) == 12
    assert f"Showing 12 of {len(records)} records" in " ".join(c.value for c in at.caption)
    sample = record_map.sample_rows([0] * len(records), 12)
    hidden = next(r for r in range(len(records)) if r not in set(sample.tolist()))
    record_id = str(records["record_id"].iloc[hidden])
    at.text_input(key="rep_find").set_value(record_id).run()
    _assert_clean(at)
    marked = [what for layer in _map_layers(at)[1:] for what in layer["what"]]
    assert f"record {record_id}" in marked  # left out of the sample, yet placed on the map
    # besides it, at most an upload: AppTests of one process share one "browser session", so an upload made by an
    # earlier test can still be in the session-scoped upload store (a real server gives each browser its own)
    assert all(m == f"record {record_id}" or m.startswith("uploaded ") for m in marked), marked
    picked = next(s for s in at.selectbox if str(s.key or "").startswith("rep_pick_"))
    assert picked.value == hidden and f"challenge · {record_id}" in picked.options
    assert any(record_id in json.dumps(json.loads(c.proto.spec)["layout"].get("title")) for c in at.get("plotly_chart"))
    at.text_input(key="rep_find").set_value("no-such-record").run()
    assert any("No record 'no-such-record'" in w.value for w in at.warning)


@pytest.mark.usefixtures("project")
def test_representations_recomputes_nothing_for_widgets_the_map_does_not_depend_on(monkeypatch):
    """Colour, record search and the upload's star reuse the cached map and position; a new parameter does not."""
    from aclecg import evaluation
    from aclecg.analysis import embed2d
    from aclecg.data import BUNDLED_RAW_DIR

    calls: collections.Counter[str] = collections.Counter()

    def counted(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for module, name in [
        (embed2d, "cached_map"),
        (embed2d, "fit_map"),
        (embed2d, "place_points"),
        (evaluation, "cached_embeddings"),
        (evaluation, "encode_windows"),
    ]:
        counted(module, name)
    at = _app()
    at.session_state["rep_datasets"] = ["challenge"]
    at.switch_page(PAGES[4]).run()
    uploader = at.get("file_uploader")
    if not uploader or not hasattr(uploader[0], "set_value"):
        pytest.skip("this Streamlit's AppTest cannot drive st.file_uploader")
    hea = next((BUNDLED_RAW_DIR / "challenge-2021").rglob("JS00001.hea"))
    files = [(f.name, f.read_bytes(), "application/octet-stream") for f in (hea, hea.with_suffix(".mat"))]
    uploader[0].set_value(files).run()
    _assert_clean(at)
    assert "uploaded JS00001" in [what for layer in _map_layers(at)[1:] for what in layer["what"]]
    assert calls["place_points"] == 1 and calls["encode_windows"] == 1
    calls.clear()
    at.selectbox(key="rep_colour").set_value("sex").run()
    assert sum(calls.values()) == 0, dict(calls)  # recolouring: nothing embedded, mapped or placed again
    at.text_input(key="rep_find").set_value("JS00004").run()
    at.selectbox(key="rep_colour").set_value("fold").run()
    _assert_clean(at)
    assert "record JS00004" in [what for layer in _map_layers(at)[1:] for what in layer["what"]]
    assert sum(calls.values()) == 0, dict(calls)  # nothing embedded, mapped or placed again
    at.slider(key="rep_k").set_value(7).run()  # a parameter of the map: computed (and the upload placed) anew
    _assert_clean(at)
    assert calls["cached_map"] == 1 and calls["fit_map"] == 1 and calls["place_points"] == 1
    assert calls["cached_embeddings"] == 0 and calls["encode_windows"] == 1
