"""The Lead regions page's pictures drawn on the server (:mod:`aclecg.viz.static`): the region diagram and the
similarity heatmap, as SVG documents that parse and show what the plotly versions showed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from aclecg import viz
from aclecg.leads import REGION_COLOURS, RegionMap, default_region_map

SVG = "{http://www.w3.org/2000/svg}"


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_region_diagram_colours_every_lead_by_its_region_and_names_the_regions():
    root = ET.fromstring(viz.region_diagram_svg())
    rmap = default_region_map()
    electrodes = {
        c.find(f"{SVG}title").text.split(":")[0]: c.get("fill")
        for c in root.iter(f"{SVG}circle")
        if c.find(f"{SVG}title") is not None
    }
    assert set(electrodes) == {"V1", "V2", "V3", "V4", "V5", "V6"}
    assert all(electrodes[lead] == REGION_COLOURS[rmap.region_of(lead)] for lead in electrodes)
    texts = _texts(root)
    for label in ("I +0°", "II +60°", "III +120°", "aVR -150°", "aVL -30°", "aVF +90°"):
        assert label in texts
    assert "septal: V1, V2" in texts and "inferior: II, III, aVF" in texts


def test_region_diagram_follows_an_edited_map_and_a_colour_override():
    rmap = RegionMap.from_dict({"front": ["V1", "V2", "V3", "V4"], "side": ["I", "aVL", "V5", "V6"]})
    texts = _texts(ET.fromstring(viz.region_diagram_svg(rmap)))
    assert "front: V1, V2, V3, V4" in texts and not any(t.startswith("septal") for t in texts)
    root = ET.fromstring(viz.region_diagram_svg(colour_of=lambda lead: "#123456"))
    assert {c.get("fill") for c in root.iter(f"{SVG}circle") if c.find(f"{SVG}title") is not None} == {"#123456"}


def test_heatmap_cells_carry_the_values_and_the_reversed_red_blue_scale():
    sim = np.array([[1.0, -1.0], [-1.0, np.nan]])
    root = ET.fromstring(viz.similarity_heatmap(sim, ["a<b", "c"], title="t & u"))  # escaped: it parses
    cells = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [c.find(f"{SVG}title").text for c in cells][:2] == ["a<b · a<b: 1.000", "a<b · c: -1.000"]
    assert cells[0].get("fill") == "rgb(103, 0, 31)" and cells[1].get("fill") == "rgb(5, 48, 97)"  # red 1, blue -1
    assert {"1.00", "-1.00", "–", "t & u", "a<b", "c"} <= set(_texts(root))


def test_heatmap_refuses_a_matrix_that_does_not_match_its_names():
    with pytest.raises(ValueError, match=r"sim must be \(3, 3\)"):
        viz.similarity_heatmap(np.eye(2), ["a", "b", "c"])


def test_sweep_svg_draws_the_series_the_plotly_chart_draws():
    import pandas as pd

    rows = [
        dict(
            arm=a,
            fraction=f,
            metric="macro_auroc",
            mean=m + f / 10,
            ci_low=m + f / 10 - 0.01,
            ci_high=m + f / 10 + 0.01,
        )
        for a, m in (("acl_ecg", 0.8), ("supervised", 0.7))
        for f in (0.01, 0.1, 1.0)
    ] + [dict(arm="random_init", fraction=0.1, metric="macro_auroc", mean=0.6, ci_low=0.55, ci_high=0.65)]
    summary = pd.DataFrame(rows)
    series = viz.sweep_series(summary, "macro_auroc", method_col="arm", fraction_col="fraction")
    fig = viz.sweep_figure(summary, "macro_auroc", method_col="arm", fraction_col="fraction")
    assert [s.name for s in series] == [t.name for t in fig.data if t.mode == "lines+markers"]
    root = ET.fromstring(viz.sweep_svg(series, "macro_auroc"))
    texts = _texts(root)
    assert "macro AUROC vs label fraction" in texts and {"1 %", "10 %", "100 %"} <= set(texts)
    points = [c.find(f"{SVG}title").text for c in root.iter(f"{SVG}circle")]
    assert "acl_ecg, 10 %: 0.8100" in points and len(points) == 7  # one per (arm, fraction), value in its title
    assert len(list(root.iter(f"{SVG}polygon"))) == 2  # two CI bands; the one-fraction arm has an error bar
    dotted = {p.get("stroke") for p in root.iter(f"{SVG}polyline") if p.get("stroke-dasharray")}
    assert dotted == {s.colour for s in series if s.name in ("supervised", "random_init")}
    ys = [float(c.get("cy")) for c in root.iter(f"{SVG}circle")][:3]
    assert ys[0] > ys[1] > ys[2]  # acl_ecg rises with the fraction: drawn higher (smaller y) to the right
