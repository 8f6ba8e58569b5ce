"""The Augmentations page's views drawn on the server (:func:`aclecg.viz.subplots_svg`): the SVG shows what the
plotly figure shows, shape for shape, trace for trace and title for title, at the places the figure puts them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from aclecg import viz
from aclecg.augment import build_augmentation
from aclecg.augment.synthetic import make_synthetic_batch

SVG = "{http://www.w3.org/2000/svg}"
SHAPE_NAMES = ("masked cycle", "crop window", "time-out", "outside the crop", "shift seam", "shift padding")


def _figure(mode: str = "circular", seed: int = 0, show=("II", "V2", "III")):
    x, rp = make_synthetic_batch(1, fs=100, generator=torch.Generator().manual_seed(seed))
    physio = build_augmentation(
        [
            {"name": "random_scale_crop", "scale": [0.5, 0.9], "resample": False},
            {"name": "cardiac_cycle_mask", "n_cycles": [2, 3], "scope": "inferior"},
            {"name": "temporal_shift", "max_shift": 1.5, "mode": mode},
        ],
        fs=100,
    )
    baseline = build_augmentation(
        [{"name": "random_resized_crop", "scale": [0.5, 0.9]}, {"name": "time_out", "fraction": [0.2, 0.4]}], fs=100
    )
    views = []
    for k, aug in enumerate((physio, physio, baseline)):
        y, info = aug.forward_with_info(x, rp, generator=torch.Generator().manual_seed(seed + k))
        views.append((f"view {k + 1}", y[0].numpy(), viz.marks_from_info(info, x.shape[-1], shift_mode=mode)))
    peaks = rp[0].numpy()
    return viz.augmentation_figure(x[0].numpy(), views, 100.0, show_leads=list(show), rpeaks=peaks[peaks >= 0])


@pytest.mark.parametrize("mode", ["circular", "zero", "edge"])
def test_every_shape_of_the_figure_is_in_the_svg_under_its_name(mode):
    fig = _figure(mode)
    root = ET.fromstring(viz.subplots_svg(fig, label="a & b"))
    assert root.get("aria-label") == "a & b"
    drawn = [el.get("data-name") for el in root.iter() if el.get("data-name")]
    for name in SHAPE_NAMES:
        assert drawn.count(name) == viz.count_shapes(fig, name), name
    assert len(drawn) == len(fig.layout.shapes)


def test_titles_notes_and_traces_are_the_figures():
    fig = _figure()
    root = ET.fromstring(viz.subplots_svg(fig))
    titles = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "title"]
    assert titles == [a.text for a in fig.layout.annotations if a.xref == "paper"]
    notes = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "note"]
    assert notes == [a.text for a in fig.layout.annotations if a.xref != "paper"] and len(notes) == 3
    paths = [p for p in root.iter(f"{SVG}path") if p.find(f"{SVG}title") is not None]
    assert [p.find(f"{SVG}title").text for p in paths] == [tr.name for tr in fig.data]
    for p, tr in zip(paths, fig.data):
        if tr.mode == "lines":  # one vertex per sample
            assert len(re.findall(r"[ML]", p.get("d"))) == len(tr.x)
        else:  # one triangle per R-peak
            assert p.get("d").count("Z") == len(tr.x)
    legend = {t.text for t in root.iter(f"{SVG}text")}
    assert {"II", "V2", "III", "R-peak", "time (s)"} <= legend


def test_a_crop_window_is_drawn_where_its_view_was_cut():
    fig = _figure()
    width = 1000.0
    root = ET.fromstring(viz.subplots_svg(fig, width=width))
    crops = [s for s in fig.layout.shapes if s.name == "crop window"]
    boxes = [r for r in root.iter(f"{SVG}rect") if r.get("data-name") == "crop window"]
    t_end = float(np.max(fig.data[0].x))
    left = float(fig.layout.margin.l)
    plot_w = width - left - float(fig.layout.margin.r)
    for shape, box in zip(crops, boxes):
        x_px = int(box.get("x")) / 10
        assert x_px == pytest.approx(left + shape.x0 / t_end * plot_w, abs=0.2)
        assert int(box.get("width")) / 10 == pytest.approx((shape.x1 - shape.x0) / t_end * plot_w, abs=0.2)
        assert box.get("stroke-dasharray") and box.get("fill") == "rgb(0,0,0)" and box.get("fill-opacity") == "0"


def test_the_views_summary_is_a_markdown_table_with_escaped_cells():
    import pandas as pd

    text = viz.markdown_table(pd.DataFrame({"view": ["a|b", "c\nd"], "shift (s)": [0.5, float("nan")], "n": [1, None]}))
    assert text.splitlines() == [
        "| view | shift (s) | n |",
        "|---|---|---|",
        "| a\\|b | 0.5 | 1 |",
        "| c d | – | – |",
    ]
