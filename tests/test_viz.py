"""aclecg.viz figures, tested without Streamlit against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from aclecg import viz
from aclecg.analysis.similarity import region_similarity
from aclecg.augment import build_augmentation, make_synthetic_batch
from aclecg.leads import LEADS, REGION_COLOURS, RegionMap, default_region_map
from aclecg.viz.augmentations import shift_spans


def _record(seed: int = 0, fs: float = 100.0):
    x, rp = make_synthetic_batch(1, fs=fs, generator=torch.Generator().manual_seed(seed))
    return x[0].numpy(), rp[0].numpy()


def _lead_traces(fig, lead):
    return [t for t in fig.data if t.name == lead and t.mode == "lines"]


def test_paper_grid_is_1mm_and_5mm_with_square_cells():
    x, _ = _record()
    fig = viz.ecg_paper_figure(x, 100.0)
    xa, ya = fig.layout.xaxis, fig.layout.yaxis
    assert xa.dtick == 5 and ya.dtick == 5  # major squares: 5 mm
    assert xa.minor.dtick == 1 and ya.minor.dtick == 1  # minor squares: 1 mm
    assert xa.showgrid and xa.minor.showgrid and ya.minor.showgrid
    assert ya.scaleanchor == "x" and ya.scaleratio == 1  # 1 mm is as tall as it is wide
    assert "255" in xa.minor.gridcolor or "235" in xa.gridcolor  # pink


@pytest.mark.parametrize("fs", [100.0, 500.0])
def test_trace_scale_is_25mm_per_s_and_10mm_per_mv(fs):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, int(10 * fs)))
    fig = viz.ecg_paper_figure(x, fs, layout="stacked")
    lead = "V3"
    (trace,) = _lead_traces(fig, lead)
    xs, ys = np.asarray(trace.x, float), np.asarray(trace.y, float)
    # one second of signal spans 25 mm; one mV spans 10 mm (independent of the baseline offset)
    np.testing.assert_allclose(xs[int(fs)] - xs[0], 25.0)
    i = LEADS.index(lead)
    np.testing.assert_allclose(ys - ys[0], (x[i] - x[i, 0]) * 10.0, atol=1e-9)


def test_3x4_layout_has_four_2_5s_columns_and_rhythm_strip():
    x, rp = _record()
    fig = viz.ecg_paper_figure(x, 100.0, layout="3x4", rpeaks=rp)
    names = [t.name for t in fig.data if t.mode == "lines" and t.name in LEADS]
    assert sorted(names) == sorted(list(LEADS) + ["II"])  # every lead once + the lead II rhythm strip
    column = _lead_traces(fig, "V4")[0]
    assert len(column.x) == 250  # 2.5 s at 100 Hz
    strip = max(_lead_traces(fig, "II"), key=lambda t: len(t.x))
    assert len(strip.x) == 1000
    peaks = [t for t in fig.data if t.name == "R-peak"][0]
    assert len(peaks.x) == int((rp >= 0).sum())


def test_leads_are_coloured_by_region():
    x, _ = _record()
    rmap = default_region_map()
    fig = viz.ecg_paper_figure(x, 100.0, layout="stacked", region_map=rmap)
    for lead in LEADS:
        region = rmap.region_of(lead)
        expected = REGION_COLOURS[region] if region else REGION_COLOURS["aVR"]
        assert _lead_traces(fig, lead)[0].line.color == expected
    custom = RegionMap({"septal": ("V1", "V2", "V3")})
    assert viz.lead_colour("V3", custom) == REGION_COLOURS["septal"]
    assert viz.lead_colour("II", custom) == REGION_COLOURS["aVR"]


def test_black_traces_are_the_clinical_print_and_the_height_sets_the_width():
    x, _ = _record()
    black = viz.ecg_paper_figure(x, 100.0, colours="black", px_per_mm=5.0)
    assert {_lead_traces(black, lead)[0].line.color for lead in LEADS} == {viz.TRACE_COLOUR}
    assert not any(str(t.name).startswith("septal") for t in black.data)  # no region legend
    small = viz.ecg_paper_figure(x, 100.0, colours="black", px_per_mm=4.0)
    assert black.layout.height - small.layout.height == pytest.approx((4.2 * 30) * 1.0, abs=1)
    with pytest.raises(ValueError, match="colours"):
        viz.ecg_paper_figure(x, 100.0, colours="blue")


def test_hover_gives_each_sample_its_time_and_value_in_the_signals_units():
    x, _ = _record()
    for units in ("mV", "z"):
        fig = viz.ecg_paper_figure(x, 100.0, layout="3x4", units=units)
        column = _lead_traces(fig, "V4")[0]  # the fourth column: 7.5-10 s of V4
        custom = np.asarray(column.customdata, dtype=float)
        np.testing.assert_allclose(custom[:, 0], np.arange(750, 1000) / 100.0)
        np.testing.assert_allclose(custom[:, 1], x[LEADS.index("V4"), 750:1000])
        assert f"%{{customdata[1]:.2f}} {units}" in column.hovertemplate


def test_paper_figure_rejects_wrong_shape():
    with pytest.raises(ValueError, match="n_leads"):
        viz.ecg_paper_figure(np.zeros((8, 100)), 100.0)


@pytest.mark.parametrize("seed", range(6))
def test_shaded_masked_cycles_match_the_augmentation_info(seed):
    """One shaded rectangle per masked span, and the shaded samples are exactly the zeroed ones."""
    x, rp = make_synthetic_batch(1, fs=100, generator=torch.Generator().manual_seed(seed))
    aug = build_augmentation("physio_v1", fs=100)  # its crop resamples: every zero is a masked cycle's
    y, info = aug.forward_with_info(x, rp, generator=torch.Generator().manual_seed(seed + 10))
    marks = viz.marks_from_info(info, x.shape[-1])
    spans = info["1:cardiac_cycle_mask"]["cycles"][0].numpy()
    n_masked = int(((spans[:, 0] >= 0) & (spans[:, 1] > spans[:, 0])).sum())
    wraps = sum(1 for s, e in marks.masked if s == 0 or e == x.shape[-1])  # a span cut by the circular seam
    assert len(marks.masked) in (n_masked, n_masked + min(wraps, 1))
    fig = viz.augmentation_figure(x[0].numpy(), [("v", y[0].numpy(), marks)], 100.0)
    assert viz.count_shapes(fig, "masked cycle") == len(marks.masked)
    assert viz.count_shapes(fig, "crop window") == 1
    shaded = np.zeros(x.shape[-1], dtype=bool)
    for s, e in marks.masked:
        shaded[s:e] = True
    zeroed = (y[0].abs().sum(0) == 0).numpy()
    np.testing.assert_array_equal(shaded, zeroed)


def test_masks_without_shift_count_equals_info():
    x, rp = make_synthetic_batch(2, fs=100, generator=torch.Generator().manual_seed(3))
    aug = build_augmentation([{"name": "cardiac_cycle_mask", "n_cycles": [3, 3]}], fs=100)
    y, info = aug.forward_with_info(x[:1], rp[:1], generator=torch.Generator().manual_seed(0))
    marks = viz.marks_from_info(info, x.shape[-1])
    fig = viz.augmentation_figure(x[0].numpy(), [("v", y[0].numpy(), marks)], 100.0)
    expected = int((info["0:cardiac_cycle_mask"]["cycles"][0, :, 0] >= 0).sum())
    assert expected == 3 and viz.count_shapes(fig, "masked cycle") == expected


def test_shift_spans_wrap_into_two():
    assert shift_spans([(90, 100)], 5, 100) == [(95, 100), (0, 5)]
    assert shift_spans([(0, 10)], -5, 100) == [(95, 100), (0, 5)]
    assert shift_spans([(10, 20)], 30, 100) == [(40, 50)]


def test_region_similarity_against_loop_reference():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(7, 12, 5))
    rmap = default_region_map()
    sim, names, summary = region_similarity(feats, LEADS, rmap)
    assert names == list(rmap.regions)
    regions = [feats[:, [LEADS.index(lead) for lead in rmap.regions[r]]].mean(1) for r in names]
    for a in range(len(names)):
        for b in range(len(names)):
            ref = np.mean(
                [
                    np.dot(regions[a][n], regions[b][n])
                    / (np.linalg.norm(regions[a][n]) * np.linalg.norm(regions[b][n]))
                    for n in range(7)
                ]
            )
            assert sim[a, b] == pytest.approx(ref)
    within = [
        np.mean(
            [
                np.dot(feats[n, i], feats[n, j]) / np.linalg.norm(feats[n, i]) / np.linalg.norm(feats[n, j])
                for n in range(7)
            ]
        )
        for r in names
        for i in [LEADS.index(x) for x in rmap.regions[r]]
        for j in [LEADS.index(x) for x in rmap.regions[r]]
        if i != j
    ]
    assert summary["within"] == pytest.approx(np.mean(within))


def test_embedding_scatter_customdata_and_groups():
    table = pd.DataFrame({"record_id": list("abcdef"), "lab": ["x", "y", "x", "", "y", "x"]})
    coords = np.arange(12, dtype=float).reshape(6, 2)
    fig = viz.embedding_scatter(coords, table, "lab", ["record_id"], highlight=np.array([[0.0, 1.0]]))
    groups = {t.name: t for t in fig.data}
    assert set(groups) == {"x", "y", "(none)", "uploaded"}
    rows = sorted(int(float(c[0])) for t in fig.data if t.customdata is not None for c in t.customdata)
    assert rows == list(range(6))
    x_trace = groups["x"]
    assert [c[1] for c in x_trace.customdata] == ["a", "c", "f"]
    np.testing.assert_allclose(x_trace.x, coords[[0, 2, 5], 0])
    with pytest.raises(ValueError):
        viz.embedding_scatter(coords[:3], table, "lab")


def test_embedding_scatter_colours_are_distinct_and_hover_reads_as_words():
    table = pd.DataFrame({"dataset": ["ptbxl"] * 5 + ["challenge"] * 3, "labels_superdiagnostic": ["NORM"] * 8})
    fig = viz.embedding_scatter(np.zeros((8, 2)), table, "dataset", ["labels_superdiagnostic"])
    colours = [t.marker.color for t in fig.data]
    assert len(colours) == 2 and len(set(colours)) == 2 and None not in colours
    assert "labels (superdiagnostic): " in fig.data[0].hovertemplate
    assert "labels_superdiagnostic" not in fig.data[0].hovertemplate
    assert fig.layout.clickmode == "event+select"


def test_embedding_scatter_draws_small_maps_as_svg_and_large_ones_with_webgl():
    """WebGL redraws cost ~1 s more per map in a browser without GPU rendering; only large maps need it."""
    from aclecg.viz.charts import SVG_MAX_POINTS

    for n, kind in ((SVG_MAX_POINTS, "scatter"), (SVG_MAX_POINTS + 1, "scattergl")):
        table = pd.DataFrame({"lab": np.where(np.arange(n) % 2, "a", "b"), "age": np.arange(n) % 90})
        for colour in ("lab", "age"):  # categorical groups and the continuous trace
            fig = viz.embedding_scatter(np.zeros((n, 2)), table, colour, highlight=np.zeros((1, 2)))
            assert {t.type for t in fig.data if t.name != "uploaded"} == {kind}
            assert sum(len(t.x) for t in fig.data if t.name != "uploaded") == n


def test_sweep_figure_log_axis_and_bands():
    summary = pd.DataFrame(
        {
            "arm": ["acl", "acl", "supervised", "supervised"],
            "fraction": [0.1, 1.0, 0.1, 1.0],
            "metric": "macro_auroc",
            "mean": [0.8, 0.9, 0.7, 0.88],
            "ci_low": [0.75, 0.85, 0.6, 0.8],
            "ci_high": [0.85, 0.95, 0.8, 0.9],
        }
    )
    fig = viz.sweep_figure(summary, metric="macro_auroc", method_col="arm", fraction_col="fraction")
    assert fig.layout.xaxis.type == "log"
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2
    acl_band = [t for t in bands if t.name == "acl CI"][0]
    np.testing.assert_allclose(acl_band.y, [0.85, 0.95, 0.85, 0.75])
    # a band is an area: no markers at its corners (plotly's default mode draws them, in other colours, as dots)
    assert all(t.mode == "lines" for t in bands)


def test_sweep_figure_one_fraction_is_an_error_bar_not_dots():
    summary = pd.DataFrame(
        {"arm": ["acl"], "fraction": [0.1], "metric": "macro_auroc", "mean": [0.8], "ci_low": [0.7], "ci_high": [0.85]}
    )
    fig = viz.sweep_figure(summary, metric="macro_auroc", method_col="arm", fraction_col="fraction")
    assert not [t for t in fig.data if t.fill == "toself"]
    (line,) = fig.data
    np.testing.assert_allclose(line.error_y.array, [0.05])
    np.testing.assert_allclose(line.error_y.arrayminus, [0.1])


def test_training_curves_and_diagrams_build():
    metrics = pd.DataFrame(
        {
            "step": [1, 2, 3],
            "loss": [3.0, 2.0, 1.5],
            "region": [1.0, 0.8, 0.7],
            "instance": [2.0, 1.2, 0.8],
            "lr": [1e-3] * 3,
            "samples_per_s": [100.0, 110.0, 120.0],
            "rss_mb": [900.0] * 3,
            "epoch_float": [0.1, 0.2, 0.3],
            "world_size": [1] * 3,
        }
    )  # bookkeeping: not plotted
    fig = viz.training_curves(metrics, ("loss", "region", "not_logged"))
    assert {t.name for t in fig.data} == {"loss", "region", "lr", "samples/s"}  # declared and logged only
    assert {t.name for t in viz.training_curves(metrics).data} == {"loss", "lr", "samples/s"}
    from aclecg.methods import loss_terms
    from aclecg.methods.acl_ecg import ACLECG

    assert loss_terms("ACL-ECG") == ACLECG.LOSS_TERMS  # an alias finds the method's declared terms
    assert loss_terms("no-such-method") == loss_terms(None) == ("loss",)
    assert len(viz.training_curves(pd.DataFrame()).layout.annotations) >= 1
    diagram = viz.region_diagram()
    leads_drawn = {t.name for t in diagram.data if t.name in LEADS}
    assert leads_drawn == set(LEADS)


def test_region_similarity_centring_equals_precentred_input():
    rng = np.random.default_rng(2)
    feats = rng.uniform(0, 1, size=(9, 12, 4))  # all positive, like post-ReLU features
    centred = feats - feats.mean(axis=0, keepdims=True)
    a = region_similarity(feats, LEADS, default_region_map(), centre=True)
    b = region_similarity(centred, LEADS, default_region_map(), centre=False)
    np.testing.assert_allclose(a[0], b[0])
    raw = region_similarity(feats, LEADS, default_region_map())[0]
    assert raw.min() > 0.5 and a[0][~np.eye(4, dtype=bool)].mean() < raw[~np.eye(4, dtype=bool)].mean()


def test_z_scored_signals_use_a_smaller_gain():
    x = np.random.default_rng(0).normal(size=(12, 1000))
    fig = viz.ecg_paper_figure(x, 100.0, layout="stacked", units="z")
    (trace,) = _lead_traces(fig, "I")
    np.testing.assert_allclose(np.diff(np.asarray(trace.y, float)), np.diff(x[0]) * 2.5)
    assert fig.layout.meta["mm_per_unit"] == 2.5


def _views_with(spec, seeds, x, rp, shift_mode="circular"):
    aug = build_augmentation(spec, fs=100)
    out = []
    for k in seeds:
        y, info = aug.forward_with_info(x, rp, generator=torch.Generator().manual_seed(k))
        out.append((f"view {k}", y[0].numpy(), viz.marks_from_info(info, x.shape[-1], shift_mode=shift_mode)))
    return out


def test_region_mask_shades_only_the_masked_leads_rows():
    x, rp = make_synthetic_batch(1, fs=100, generator=torch.Generator().manual_seed(5))
    spec = [{"name": "cardiac_cycle_mask", "n_cycles": [2, 2], "scope": "inferior"}]
    views = _views_with(spec, [0], x, rp)
    marks = views[0][2]
    assert sorted(marks.masked_leads) == ["II", "III", "aVF"]
    fig = viz.augmentation_figure(x[0].numpy(), views, 100.0, show_leads=["II", "V2", "III"])
    # two shown leads (II, III) are inferior: one rectangle per span and masked row, none over V2's row
    assert viz.count_shapes(fig, "masked cycle") == 2 * len(marks.masked)
    rows = {round(s.y0 + s.y1, 3) for s in fig.layout.shapes if s.name == "masked cycle"}
    assert rows == {0.0, -16.0}  # rows 0 (II) and 2 (III) at offset 4: centres 0 and -8, doubled
    hidden = viz.augmentation_figure(x[0].numpy(), views, 100.0, show_leads=["V2"])
    assert viz.count_shapes(hidden, "masked cycle") == 0
    assert "masked leads not shown" in hidden.layout.annotations[1].text


def test_a_cycle_split_by_the_circular_seam_counts_once():
    x, rp = make_synthetic_batch(1, fs=100, generator=torch.Generator().manual_seed(1))
    spec = [{"name": "cardiac_cycle_mask", "n_cycles": [1, 1]}, {"name": "temporal_shift", "max_shift": 3.0}]
    for seed in range(40):
        ((_, _, marks),) = _views_with(spec, [seed], x, rp)
        if len(marks.masked) == 2:
            break
    assert len(marks.masked) == 2 and marks.n_cycles == 1


def test_shift_seam_and_padding_are_marked():
    x, rp = make_synthetic_batch(1, fs=100, generator=torch.Generator().manual_seed(2))
    spec = [{"name": "temporal_shift", "max_shift": 2.0, "mode": "circular"}]
    views = _views_with(spec, [3], x, rp)
    fig = viz.augmentation_figure(x[0].numpy(), views, 100.0)
    seam = [s for s in fig.layout.shapes if s.name == "shift seam"]
    assert len(seam) == 1 and seam[0].x0 == pytest.approx((views[0][2].shift % 1000) / 100)
    assert views[0][2].shift != 0
    spec[0]["mode"] = "zero"
    views = _views_with(spec, [3], x, rp, shift_mode="zero")
    fig = viz.augmentation_figure(x[0].numpy(), views, 100.0)
    (pad,) = [s for s in fig.layout.shapes if s.name == "shift padding"]
    zeroed = np.flatnonzero(np.abs(views[0][1]).sum(0) == 0)
    assert (pad.x0, pad.x1) == pytest.approx((zeroed.min() / 100, (zeroed.max() + 1) / 100))


def test_crop_labels_of_three_views_do_not_overlap_and_take_the_view_colour():
    x, rp = make_synthetic_batch(1, fs=100, generator=torch.Generator().manual_seed(0))
    views = _views_with([{"name": "random_scale_crop", "scale": [0.3, 0.6]}], [0, 1, 2], x, rp)
    fig = viz.augmentation_figure(x[0].numpy(), views, 100.0)
    labels = [a for a in fig.layout.annotations if str(a.text).startswith("crop: ")]
    assert len(labels) == 3 and len({a.y for a in labels}) == 3
    boxes = [s for s in fig.layout.shapes if s.name == "crop window"]
    titles = fig.layout.annotations[1:4]
    assert [b.line.color for b in boxes] == [a.font.color for a in labels] == [t.font.color for t in titles]
    assert len({b.line.color for b in boxes}) == 3
    assert not {b.line.color for b in boxes} & set(REGION_COLOURS.values())  # never a trace's region colour


def test_attribution_figures_follow_the_table():
    import pandas as pd

    from aclecg import viz
    from aclecg.leads import LEADS

    units = ["septal", "anterior", "lateral", "inferior", *LEADS]
    drops = [0.3, -0.2, 0.0, 0.1] + [0.01 * i for i in range(12)]
    table = pd.DataFrame(
        {
            "unit": units,
            "kind": ["region"] * 4 + ["lead"] * 12,
            "class": "MI",
            "score": 0.7,
            "occluded_score": [0.7 - d for d in drops],
            "drop": drops,
        }
    )
    bars = viz.attribution_bars(table, "MI")
    assert list(bars.data[0].x) == units[:4] and list(bars.data[0].y) == drops[:4]
    assert len(bars.data[1].x) == 12
    effects = viz.region_effects(table, "MI")
    assert viz.strongest_region(effects) == "septal"
    assert viz.strongest_region({"septal": -0.1}) is None  # nothing lowers the score
    diagram = viz.region_effect_diagram(effects, class_name="MI")
    colour = {t.name: t.marker.color for t in diagram.data if t.name in ("V1", "V3")}
    # V1 (septal, +0.3, the largest) is at the red end of the scale, V3 (anterior, -0.2) on the blue side
    red = lambda c: int(c.strip("rgb()").split(",")[0])
    blue = lambda c: int(c.strip("rgb()").split(",")[2])
    assert red(colour["V1"]) > blue(colour["V1"]) and blue(colour["V3"]) > red(colour["V3"])
    grid = viz.ecg_paper_figure(np.zeros((12, 1000)), 100.0, LEADS, highlight=("II", "III", "aVF"))
    shaded = [s for s in grid.layout.shapes if s.name == "highlighted lead"]
    assert len(shaded) == 4  # II, III, aVF panels and lead II's rhythm strip
    with pytest.raises(ValueError, match="class 'XYZ'"):
        viz.attribution_bars(table, "XYZ")


def test_pipeline_diagram_is_an_svg_with_one_box_per_step_and_every_word():
    import xml.etree.ElementTree as ET

    ns = {"svg": "http://www.w3.org/2000/svg"}
    steps = (*viz.PIPELINE_STEPS, ("a <b> & c", "x\ny"))  # text that needs escaping
    root = ET.fromstring(viz.pipeline_diagram(steps, pretraining=5))
    boxes = [r for r in root.iterfind("svg:rect", ns) if r.get("class") == "step"]
    assert len(boxes) == len(steps)
    assert sorted(float(b.get("x")) for b in boxes) == [float(b.get("x")) for b in boxes]  # left to right
    lines = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}tspan")]
    for head, sub in steps:
        for line in (*head.split("\n"), *sub.split("\n")):
            assert line in lines
    labels = ["".join(t.itertext()) for t in root.iterfind("svg:text", ns) if not list(t)]
    assert labels == ["self-supervised pretraining (no labels)", "evaluation with labels"]
    assert len(list(root.iterfind("svg:line", ns))) == len(steps) - 1  # one arrow between neighbours


@pytest.mark.parametrize("seed", range(4))
def test_physio_views_shade_every_zero_their_crop_and_masks_made(seed):
    """Physio-AUG's crop keeps the rate and zeroes outside its window: the view shades that too ("outside the
    crop"), so the shaded samples are exactly the zeroed ones, and the crop box stays one per view."""
    x, rp = make_synthetic_batch(1, fs=100, generator=torch.Generator().manual_seed(seed))
    y, info = build_augmentation("physio", fs=100).forward_with_info(
        x, rp, generator=torch.Generator().manual_seed(seed)
    )
    marks = viz.marks_from_info(info, x.shape[-1])
    assert marks.outside or marks.crop == (0, x.shape[-1])
    fig = viz.augmentation_figure(x[0].numpy(), [("v", y[0].numpy(), marks)], 100.0)
    assert viz.count_shapes(fig, "crop window") == 1
    assert viz.count_shapes(fig, "outside the crop") == len(marks.outside)
    shaded = np.zeros(x.shape[-1], dtype=bool)
    for s, e in [*marks.masked, *marks.outside]:
        shaded[s:e] = True
    np.testing.assert_array_equal(shaded, (y[0].abs().sum(0) == 0).numpy())
