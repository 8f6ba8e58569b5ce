"""The ECG paper figure drawn on the server as SVG (:func:`aclecg.viz.paper_svg`): the same drawing as the
interactive chart, each element where the figure puts it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import plotly.graph_objects as go
import pytest

from aclecg import viz
from aclecg.leads import LEADS
from aclecg.viz.paper_svg import UNITS_PER_MM

NS = {"s": "http://www.w3.org/2000/svg"}


def _ecg(t: int = 1000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((12, t))).astype(np.float32)


def _paths(root: ET.Element) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in root.iter("{http://www.w3.org/2000/svg}path"):
        title = p.find("s:title", NS)
        if title is not None:
            out.setdefault(title.text or "", []).append(p.get("d", ""))
    return out


def _points(d: str) -> np.ndarray:
    return np.array([[int(a), int(b)] for a, b in re.findall(r"[ML](-?\d+) (-?\d+)", d)])


@pytest.mark.parametrize("layout", ["3x4", "stacked"])
def test_every_trace_of_the_figure_is_drawn_at_its_paper_position(layout):
    fig = viz.ecg_paper_figure(_ecg(), 100.0, LEADS, layout=layout, rpeaks=np.array([100, 500]), title="record 7")
    root = ET.fromstring(viz.paper_svg(fig))
    paths = _paths(root)
    lines = [t for t in fig.data if t.mode == "lines" and t.x is not None and t.x[0] is not None]
    for trace in lines:  # every lead segment and calibration pulse, point for point (to a tenth of a mm)
        drawn = paths[trace.name].pop(0)
        want = np.column_stack(
            [np.rint(np.asarray(trace.x) * UNITS_PER_MM), np.rint(-np.asarray(trace.y) * UNITS_PER_MM)]
        )
        np.testing.assert_array_equal(_points(drawn), want.astype(int))
    assert set(LEADS) <= set(_paths(root))
    peaks = [t for t in fig.data if t.name == "R-peak"]
    assert len(_paths(root)["R-peak"]) == len(peaks) > 0
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "record 7" in texts and "25 mm/s, 10 mm/mV" in texts and "10 mm/mV" in texts
    assert root.get("aria-label") == "record 7"


def test_the_view_box_keeps_square_millimetres_and_the_grid_is_two_patterns():
    fig = viz.ecg_paper_figure(_ecg(), 100.0, LEADS, layout="3x4")
    root = ET.fromstring(viz.paper_svg(fig))
    _, _, w, h = (int(v) for v in root.get("viewBox", "").split())
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    assert w == round((x1 - x0) * UNITS_PER_MM)
    assert h > (y1 - y0) * UNITS_PER_MM  # the paper, plus the title band above it
    sizes = sorted(int(p.get("width", 0)) for p in root.iter("{http://www.w3.org/2000/svg}pattern"))
    assert sizes == [1 * UNITS_PER_MM, 5 * UNITS_PER_MM]  # 1 mm and 5 mm squares, not hundreds of lines


def test_shaded_leads_separators_and_region_legend_are_drawn():
    fig = viz.ecg_paper_figure(_ecg(), 100.0, LEADS, layout="3x4", colours="region", highlight=("V1", "V2"))
    svg = viz.paper_svg(fig)
    root = ET.fromstring(svg)
    rects = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if "rgb(255,196,0)" in (r.get("fill") or "")]
    assert len(rects) == 2
    assert len(list(root.iter("{http://www.w3.org/2000/svg}line"))) >= 3  # column separators (and legend swatches)
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any(t.startswith("septal: V1, V2") for t in texts)
    assert "<b>" not in svg  # plotly's markup becomes SVG attributes


def test_a_gap_in_the_signal_starts_a_new_sub_path_and_text_is_escaped():
    x = _ecg()
    x[0, 30:40] = np.nan
    fig = viz.ecg_paper_figure(x, 100.0, LEADS, layout="stacked", title="a <b>&</b> b")
    root = ET.fromstring(viz.paper_svg(fig))  # parses: the title's "&" is escaped
    lead_i = _paths(root)["I"][0]
    assert lead_i.count("M") == 2
    assert "a & b" in [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_only_paper_figures_are_drawn():
    with pytest.raises(ValueError, match="ecg_paper_figure"):
        viz.paper_svg(go.Figure())


def test_traces_are_clipped_to_the_paper_as_the_chart_clips_them():
    x = _ecg()
    x[1, 200:210] = 40.0  # 40 mV: 400 mm above its baseline, far off the paper
    root = ET.fromstring(viz.paper_svg(viz.ecg_paper_figure(x, 100.0, LEADS, layout="3x4")))
    clip = root.find("s:defs/s:clipPath/s:rect", NS)
    groups = [g for g in root.iter(f"{{{NS['s']}}}g") if g.get("clip-path") == "url(#paper)"]
    assert clip is not None and len(groups) == 1
    assert {p.find("s:title", NS).text for p in groups[0].iter(f"{{{NS['s']}}}path")} >= set(LEADS)
