"""The Explorer's viewer tools as library code: calipers (paper millimetres -> lead, time, mV -> Δt, rate, ΔmV),
the gain on the paper figure's calibration pulse, and the enlarged lead with its measurements marked."""

from __future__ import annotations

import numpy as np
import pytest

from aclecg import viz
from aclecg.errors import DataError
from aclecg.leads import LEADS
from aclecg.measure import measure_record, synthetic_ecg
from aclecg.viz import calipers
from aclecg.viz.leadzoom import lead_zoom_figure


@pytest.fixture(scope="module")
def ecg():
    x, _ = synthetic_ecg(fs=100, hr_bpm=75, pr_ms=160, qrs_ms=90, qt_ms=380)
    return x


def _at(fig, lead: str, t_s: float, value: float, rhythm: bool = False) -> tuple[float, float]:
    """Paper mm of (t_s, value) in ``lead``'s panel, computed independently from the drawn trace's own x/y."""
    fs = 100.0
    traces = [t for t in fig.data if t.name == lead and t.mode == "lines"]
    trace = (
        max(traces, key=lambda t: len(t.x))
        if rhythm
        else next(t for t in traces if t.customdata[0][0] <= t_s <= t.customdata[-1][0])
    )
    i = int(round(t_s * fs - trace.customdata[0][0] * fs))
    gain = fig.layout.meta["mm_per_unit"]
    baseline = trace.y[i] - trace.customdata[i][1] * gain
    return float(trace.x[i]), float(baseline + value * gain)


@pytest.mark.parametrize("gain", [5.0, 10.0, 20.0])
def test_a_click_in_any_3x4_panel_maps_to_its_leads_time_and_mv(ecg, gain):
    fig = viz.ecg_paper_figure(ecg, 100.0, LEADS, layout="3x4", gain_mm=gain)
    for lead, t_s, mv in [("I", 0.5, 0.3), ("aVR", 3.1, -0.4), ("V1", 6.0, 1.2), ("V6", 9.5, -0.8), ("aVF", 4.0, 0)]:
        x_mm, y_mm = _at(fig, lead, t_s, mv)
        p = calipers.locate(x_mm, y_mm, fig.layout.meta)
        assert p.lead == lead and p.t_s == pytest.approx(t_s) and p.value == pytest.approx(mv)
    x_mm, y_mm = _at(fig, "II", 7.3, 0.9, rhythm=True)  # the rhythm strip runs the whole record
    p = calipers.locate(x_mm, y_mm, fig.layout.meta)
    assert p.lead == "II" and p.t_s == pytest.approx(7.3) and p.value == pytest.approx(0.9)


def test_stacked_layout_and_z_units_locate_too(ecg):
    fig = viz.ecg_paper_figure(ecg, 100.0, LEADS, layout="stacked", units="z")
    x_mm, y_mm = _at(fig, "V3", 2.0, 1.5)
    p = calipers.locate(x_mm, y_mm, fig.layout.meta)
    assert p.lead == "V3" and p.t_s == pytest.approx(2.0) and p.value == pytest.approx(1.5)


def test_two_points_give_interval_rate_and_amplitude(ecg):
    fig = viz.ecg_paper_figure(ecg, 100.0, LEADS, layout="3x4", gain_mm=10.0)
    a = calipers.locate(*_at(fig, "II", 1.0, 0.1, rhythm=True), fig.layout.meta)
    b = calipers.locate(*_at(fig, "II", 1.8, 1.3, rhythm=True), fig.layout.meta)
    r = calipers.measure(a, b)
    assert r.dt_ms == pytest.approx(800.0) and r.rate_bpm == pytest.approx(75.0) and r.d_value == pytest.approx(1.2)
    assert r.same_lead and r.text() == "Δt 800 ms · 75 bpm · ΔmV +1.20 mV"
    back = calipers.measure(b, a)
    assert back.dt_ms == pytest.approx(800.0) and back.d_value == pytest.approx(-1.2)
    same = calipers.measure(a, a)
    assert same.dt_ms == 0 and same.rate_bpm is None and "–" in same.text()
    c = calipers.locate(*_at(fig, "V1", 6.0, 0.0), fig.layout.meta)
    assert not calipers.measure(a, c).same_lead and "two different leads" in calipers.measure(a, c).text()


def test_caliper_is_drawn_on_the_figure(ecg):
    fig = viz.ecg_paper_figure(ecg, 100.0, LEADS)
    a = calipers.locate(*_at(fig, "II", 1.0, 0.0, rhythm=True), fig.layout.meta)
    b = calipers.locate(*_at(fig, "II", 2.0, 1.0, rhythm=True), fig.layout.meta)
    calipers.draw(fig, [a, b], calipers.measure(a, b))
    ticks = [s for s in fig.layout.shapes if s.name == "caliper"]
    assert sorted(s.x0 for s in ticks) == pytest.approx(sorted([a.x_mm, b.x_mm]))
    assert any(t.name == "caliper" and list(t.x) == [a.x_mm, b.x_mm] for t in fig.data)
    assert any(an.name == "caliper reading" and an.text.startswith("Δt 1000 ms") for an in fig.layout.annotations)


def test_points_off_the_traces_are_refused_in_one_line(ecg):
    fig = viz.ecg_paper_figure(ecg, 100.0, LEADS)
    with pytest.raises(DataError, match="outside every lead"):
        calipers.locate(2.0, -20.0, fig.layout.meta)  # on the calibration pulse's margin
    with pytest.raises(DataError, match="finite"):
        calipers.locate(float("nan"), 0.0, fig.layout.meta)
    with pytest.raises(DataError, match="no lead panels"):
        calipers.locate(20.0, 0.0, {"mm_per_s": 25, "mm_per_unit": 10})


@pytest.mark.parametrize("gain", [5.0, 10.0, 20.0])
def test_calibration_pulse_follows_the_gain_and_is_labelled(ecg, gain):
    fig = viz.ecg_paper_figure(ecg, 100.0, LEADS, gain_mm=gain)
    pulses = [t for t in fig.data if t.name == "calibration"]
    assert len(pulses) == 4 and all(max(t.y) - min(t.y) == pytest.approx(gain) for t in pulses)
    labels = [a.text for a in fig.layout.annotations if a.name == "calibration label"]
    assert labels == [f"{gain:g} mm/mV"]
    assert fig.layout.meta["mm_per_s"] == 25.0 and fig.layout.xaxis.dtick == 5 and fig.layout.xaxis.minor.dtick == 1
    lead_i = next(t for t in fig.data if t.name == "I")
    assert np.ptp(lead_i.y) == pytest.approx(np.ptp(ecg[0, : len(lead_i.y)]) * gain)


def test_enlarged_lead_marks_each_beat_with_its_measured_boundaries():
    x, _ = synthetic_ecg(fs=500, hr_bpm=60, pr_ms=160, qrs_ms=100, qt_ms=400)
    m = measure_record(x, 500)
    from aclecg.data.rpeaks import detect_rpeaks

    peaks = detect_rpeaks(x, 500.0)
    lead = "V2"
    fig = lead_zoom_figure(x[LEADS.index(lead)], 500.0, lead, peaks, m.leads[lead], gain_mm=20.0)
    qrs = [s for s in fig.layout.shapes if s.name == "QRS"]
    qt = [s for s in fig.layout.shapes if s.name == "QT"]
    assert len(qrs) == len(qt) == len(peaks) == len([s for s in fig.layout.shapes if s.name == "P onset"])
    pts = m.leads[lead]
    for shape, r in zip(qrs, peaks, strict=True):
        assert (shape.x1 - shape.x0) / 25.0 * 1000 == pytest.approx(pts["qrs_off"] - pts["qrs_on"])
        assert shape.x0 == pytest.approx(10.0 + (r / 500.0 + pts["qrs_on"] / 1000.0) * 25.0)
    assert (qt[0].x1 - qt[0].x0) / 25.0 * 1000 == pytest.approx(pts["t_off"] - pts["qrs_on"])
    assert [t.name for t in fig.data].count("R-peak") == 1
    assert [a.text for a in fig.layout.annotations if a.name == "calibration label"] == ["20 mm/mV"]
    no_marks = lead_zoom_figure(x[0], 500.0, "I", peaks, None)
    assert not [s for s in no_marks.layout.shapes if s.name in ("QRS", "QT")]


def test_clickable_adds_one_invisible_selectable_target_trace_thinned_to_100_points_a_second():
    x, _ = synthetic_ecg(fs=500, hr_bpm=60)
    fig = calipers.clickable(viz.ecg_paper_figure(x, 500.0, LEADS))
    targets = [t for t in fig.data if t.name == calipers.TARGET_NAME]
    assert len(targets) == 1 and targets[0].mode == "markers" and targets[0].marker.opacity == 0
    target = targets[0]
    # 12 panels of 2.5 s and the 10 s rhythm strip, each thinned from 500 to 100 points a second
    assert len(target.x) == 12 * 250 + 1000 and list(target.text).count("II") == 250 + 1000
    rhythm = np.flatnonzero(np.asarray(target.text) == "II")[250:]  # the strip follows lead II's panel
    assert target.customdata[rhythm[1]][0] == pytest.approx(0.01)
    lines = [t for t in fig.data if t.name in LEADS and t.mode == "lines"]
    assert all(t.hoverinfo == "skip" for t in lines)
    assert target.hovertemplate.startswith("%{text}<br>")  # the hover label still names the lead
    i = rhythm[250]
    p = calipers.locate(target.x[i], target.y[i], fig.layout.meta)  # a target maps like its line
    assert p.lead == "II" and p.t_s == pytest.approx(2.5) and p.value == pytest.approx(target.customdata[i][1])


def test_the_clickable_paper_chart_draws_few_traces_and_markers():
    """Issue 31: the Explorer's chart in a new browser. Invisible markers cost as much to draw as visible ones
    (one SVG node each: 4000 of them made the first draw several times slower), so the click targets are one
    trace that draws a single marker; plotly hovers, clicks and selects on its data (tests/test_browser_explorer.py
    clicks the calipers with a real mouse)."""
    x, _ = synthetic_ecg(fs=100, hr_bpm=75)
    fig = calipers.clickable(viz.ecg_paper_figure(x, 100.0, LEADS, rpeaks=np.array([50, 130, 210]), colours="black"))
    assert len(fig.data) <= 19  # 13 lead segments, R-peaks, 4 calibration pulses, the click targets
    drawn_markers = sum(
        (t.marker.maxdisplayed or len(t.x)) for t in fig.data if t.mode and "markers" in t.mode and t.name != "R-peak"
    )
    assert drawn_markers <= 1
