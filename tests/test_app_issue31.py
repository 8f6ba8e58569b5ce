"""Unit tests of issue 31's app defects (the app as its users judge it): the library functions the pages call.
The browser checks of the same defects are in ``tests/test_browser_app.py``."""

from __future__ import annotations

import pytest

from aclecg.joblimits import app_bounds, pretrain_form
from aclecg.training import PRESETS


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_pretrain_form_takes_the_presets_epochs_batch_and_name(preset):
    form = pretrain_form(preset, "simclr", "0101-0000")
    assert form["epochs"] == min(PRESETS[preset]["epochs"], app_bounds("epochs")[1])
    assert form["batch_size"] == min(PRESETS[preset]["batch_size"], app_bounds("batch_size")[1])
    assert form["name"] == f"simclr-{preset}-0101-0000"


def test_pretrain_form_differs_between_presets():
    assert pretrain_form("gpu-base", "acl_ecg", "x")["epochs"] != pretrain_form("cpu-quick", "acl_ecg", "x")["epochs"]


def test_embedding_map_lets_a_single_click_select_a_point():
    """A lasso or box drag mode turns a click into an empty selection: the map pans, and clicks select."""
    import numpy as np
    import pandas as pd

    from aclecg import viz

    fig = viz.embedding_scatter(np.zeros((3, 2)), pd.DataFrame({"label": ["a", "b", "a"]}), "label", ["label"])
    assert fig.layout.dragmode not in ("lasso", "select") and "select" in fig.layout.clickmode


def _run(root, name: str, job: dict, status: dict | None = None, cancel: bool = False):
    import json
    import socket
    import time

    run = root / name
    run.mkdir()
    (run / "job.json").write_text(json.dumps({"kind": "pretrain", "host": socket.gethostname(), **job}))
    if status is not None:
        (run / "status.json").write_text(json.dumps({"host": socket.gethostname(), **status}))
    if cancel:
        (run / "cancel_requested").write_text(str(time.time()))
    return run


def test_a_run_asked_to_cancel_is_cancelling_until_its_process_is_gone(tmp_path):
    """Between Cancel and the process's exit the run is neither "running" nor resumable: "cancelling…"."""
    import os

    from aclecg import jobs, procs

    me = procs.own_record(os.getpid())  # a live process standing for the job's wrapper
    run = _run(tmp_path, "r", {**me, "args": ["--method", "simclr"]}, {"state": "cancelled"}, cancel=True)
    info = jobs.run_info(run)
    assert (info.state, info.alive, info.resumable) == ("cancelling", True, False)
    assert jobs.run_label(info) == "r · cancelling… · simclr"
    assert jobs.state_text(info.state) == "cancelling…"
    (run / "exit_code").write_text("0\n")  # the wrapper recorded the end; the status says cancelled
    assert jobs.run_info(run).state == "cancelling"  # its process still runs: still on the way


def test_a_cancelled_job_whose_wrapper_left_no_exit_code_is_cancelled_not_interrupted(tmp_path):
    from aclecg import jobs

    dead = {"pid": 2**22 + 4321, "start": 1.0, "args": ["--method", "simclr"]}
    info = jobs.run_info(_run(tmp_path, "s", {**dead, "kind": "sweep"}, cancel=True))
    assert (info.state, info.resumable) == ("cancelled", True)
    assert (tmp_path / "s" / "exit_code").read_text().strip() == "143"  # recorded how it ended
    assert jobs.run_info(tmp_path / "s").state == "cancelled"
    assert jobs.run_info(_run(tmp_path, "t", {**dead, "kind": "sweep"})).state == "interrupted"


def test_run_label_and_state_metric_read_the_same_state(tmp_path):
    from aclecg import jobs

    dead = {"pid": 2**22 + 4321, "start": 1.0}
    for name, status in (("f", {"state": "finished"}), ("c", {"state": "cancelled"}), ("x", {"state": "running"})):
        _run(tmp_path, name, dead, status)
    for info in jobs.list_runs(tmp_path):
        assert jobs.run_label(info).split(" · ")[1] == jobs.state_text(info.state)


def _mask_boxes_per_view(fig, n_views: int) -> list[list[tuple[float, float]]]:
    """The x spans of each view's "masked cycle" boxes (view k is subplot k + 2: axes x2, x3, ...)."""
    boxes: list[list[tuple[float, float]]] = [[] for _ in range(n_views)]
    for shape in fig.layout.shapes:
        if shape.name == "masked cycle":
            boxes[int(shape.xref[1:]) - 2].append((shape.x0, shape.x1))
    return boxes


@pytest.mark.parametrize("mode", ["circular", "zero", "edge"])
def test_one_mask_box_per_masked_cycle_and_one_crop_box_per_view_in_every_shift_mode(mode):
    """The page's case of issue 31 (cycles 1-4, pqrst window, inferior leads, shift up to 1.3 s), 12 views: a
    zero/edge shift draws one box per masked cycle still in the view and none over its padding; a circular shift
    splits at most the one cycle crossing its seam."""
    import torch

    from aclecg import viz
    from aclecg.augment import build_augmentation, make_synthetic_batch

    fs, n = 100.0, 12
    x, rp = make_synthetic_batch(1, fs=fs, generator=torch.Generator().manual_seed(1))
    spec = [
        {"name": "random_scale_crop"},
        {"name": "cardiac_cycle_mask", "n_cycles": [1, 4], "window": "pqrst", "scope": "inferior"},
        {"name": "temporal_shift", "max_shift": 1.3, "mode": mode},
    ]
    aug = build_augmentation(spec, fs=fs)
    views = []
    for seed in range(n):
        y, info = aug.forward_with_info(x, rp, generator=torch.Generator().manual_seed(seed))
        views.append((f"view {seed}", y[0].numpy(), viz.marks_from_info(info, x.shape[-1], shift_mode=mode)))
    fig = viz.augmentation_figure(x[0].numpy(), views, fs, show_leads=["II"])
    assert viz.count_shapes(fig, "crop window") == n
    length = x.shape[-1] / fs
    for (_, _, marks), boxes in zip(views, _mask_boxes_per_view(fig, n)):
        split = any(b[1] == pytest.approx(length) for b in boxes) and any(b[0] == 0 for b in boxes)
        expected = marks.n_cycles + (1 if mode == "circular" and split else 0)
        assert len(boxes) == expected, (marks.shift, boxes)
        _, padding = marks.shift_marks(x.shape[-1])
        if padding is not None:  # no box reaches into the padding
            assert all(b[1] <= padding[0] / fs + 1e-9 or b[0] >= padding[1] / fs - 1e-9 for b in boxes), boxes
    assert sum(marks.n_cycles for _, _, marks in views) > 0


#: What a sweep job really writes (tqdm's two bars, the inner one redrawn with cursor-up codes), cut short.
_SWEEP_LOG = (
    "[aclecg] job slot(s) [0]: starting\n"
    "sweep cells (ETA from finished cells):   0%|          | 0/6 [00:00<?, ?it/s]\r"
    "sweep cells (ETA from finished cells):   0%|          | 0/6 [00:00<?, ?it/s, supervised f=0.1 s=0]\n"
    "\rthis cell: supervised s0 lr=0.0001:   0%|          | 1/2000 [00:02<1:05:34,  1.01it/s]\x1b[A\n"
    "\n\rthis cell: supervised s0 lr=0.0001:   0%|          | 2/2000 [00:04<1:05:34,  1.01it/s]\x1b[A\n"
    "\n\rthis cell: supervised s0 lr=0.0001:   0%|          | 3/2000 [00:05<50:00,  1.10it/s]\x1b[A\x1b[K\n"
)


def test_sweep_log_box_shows_no_control_codes_and_one_line_per_bar(tmp_path):
    from aclecg import jobs

    (tmp_path / "stdout.log").write_bytes(_SWEEP_LOG.encode())
    lines = jobs.tail_log(tmp_path, 6).splitlines()
    assert not any("\x1b" in line or "\r" in line or "[A" in line for line in lines), lines
    assert lines[0] == "[aclecg] job slot(s) [0]: starting"
    assert [line.split(":")[0] for line in lines[1:]] == ["sweep cells (ETA from finished cells)", "this cell"]
    assert lines[-1].endswith("3/2000 [00:05<50:00,  1.10it/s]")  # the last redraw of the cell's bar


def test_sweep_form_estimates_trained_arm_cells_roughly():
    from aclecg.evaluation.form import LONG_CELL_S, STEP_SECONDS, trained_cell_estimate

    assert trained_cell_estimate(["linear_probe", "random_init"], 2, 4, 3) is None
    cells, cell_s, total_s = trained_cell_estimate(["supervised", "fine_tune"], 2, 4, 3, "cpu")
    assert cells == (1 + 2) * 4 * 3 and cell_s == 2000 * STEP_SECONDS["cpu"] > LONG_CELL_S
    assert total_s > cells * cell_s  # the first seeds try every learning rate
    assert trained_cell_estimate(["supervised"], 0, 1, 1, "cuda:0")[1] < cell_s


def _attribution_table():
    import pandas as pd

    from aclecg.leads import LEADS

    units = ["septal", "anterior", "lateral", "inferior", *LEADS]
    drops = [0.3, -0.2, 0.0, 0.1] + [0.02 * (i - 6) for i in range(12)]
    return pd.DataFrame(
        {"unit": units, "kind": ["region"] * 4 + ["lead"] * 12, "class": "MI", "score": 0.7, "drop": drops}
    )


def test_region_bars_use_the_diagrams_sign_colours_and_region_names_as_labels():
    from aclecg import viz
    from aclecg.leads import REGION_COLOURS, default_region_map

    table = _attribution_table()
    bars = viz.attribution_bars(table, "MI")
    effects = viz.region_effects(table, "MI")
    diagram = viz.region_effect_diagram(effects, class_name="MI")
    by_lead = {t.name: t.marker.color for t in diagram.data if t.name in ("V1", "V3", "V5", "II")}
    region_bar = dict(zip(bars.data[0].x, bars.data[0].marker.color))
    rmap = default_region_map()
    for lead, colour in by_lead.items():  # a region's bar has the colour of its leads on the diagram
        assert region_bar[rmap.region_of(lead)] == colour, lead
    colours = set(bars.data[0].marker.color) | set(bars.data[1].marker.color)
    assert not colours & set(REGION_COLOURS.values())  # no region colours: one meaning, the sign
    red = lambda c: int(c.strip("rgb()").split(",")[0])
    blue = lambda c: int(c.strip("rgb()").split(",")[2])
    assert red(region_bar["septal"]) > blue(region_bar["septal"]) and blue(region_bar["anterior"]) > red(
        region_bar["anterior"]
    )
    assert list(bars.data[0].x) == ["septal", "anterior", "lateral", "inferior"]


def test_bar_chart_title_starts_below_the_toolbar_band():
    from aclecg import viz

    for fig in (
        viz.attribution_bars(_attribution_table(), "MI"),
        viz.region_effect_diagram({"septal": 0.1}, class_name="MI"),
    ):
        height, title = fig.layout.height, fig.layout.title
        assert title.yanchor == "top" and (1 - title.y) * height >= 40  # Streamlit's toolbar is about 35 px
        assert fig.layout.margin.t >= (1 - title.y) * height + 40  # title lines above the subplot titles


def test_hexaxial_labels_are_not_clipped():
    from aclecg import viz

    fig = viz.region_diagram()
    labels = [t for t in fig.data if t.text is not None and any("°" in str(x) for x in t.text)]
    assert {str(t.text[-1]).split()[0] for t in labels} == {"I", "II", "III", "aVR", "aVL", "aVF"}
    assert all(t.cliponaxis is False for t in labels)
    half = fig.layout.xaxis2.range[1]
    # a 9-character label at 12 px beside an axis end at |x| <= 1: the panel keeps over a unit of room for it
    assert half - 1 >= 1.2 and fig.layout.xaxis2.range[0] == -half


def test_probe_training_records_counts_the_train_split_and_the_app_warns_below_50():
    import numpy as np
    import pandas as pd

    from aclecg.analysis.attribution_eval import FEW_PROBE_RECORDS, probe_training_records

    class Data:
        records = pd.DataFrame({"split": ["train"] * 15 + ["val"] * 3 + ["test"] * 3 + ["train"] * 2})

        def labels(self, label_set, protocol):
            return np.arange(21), np.zeros((21, 2)), ["a", "b"]  # the last two train records are unlabelled

    assert probe_training_records(Data(), "snomed") == 15 < FEW_PROBE_RECORDS == 50


def test_every_label_on_the_map_gets_its_own_colour():
    """30 labels (the Challenge's SNOMED codes are more than 12): no two share a colour (NORM and ILMI did)."""
    import numpy as np
    import pandas as pd

    from aclecg import viz

    labels = [f"L{i:02d}" for i in range(30)]
    table = pd.DataFrame({"label": [lab for i, lab in enumerate(labels) for _ in range(30 - i)]})
    fig = viz.embedding_scatter(np.zeros((len(table), 2)), table, "label", ["label"])
    colours = [t.marker.color for t in fig.data]
    assert len(colours) == 30 and len(set(c.lower() for c in colours)) == 30
    assert len(set(viz.category_colours(200))) == 200


def test_one_display_name_for_arms():
    from aclecg.evaluation.config import arm_display_name
    from aclecg.results.study import _row_label

    assert (
        arm_display_name("acl_ecg:fine_tune") == _row_label("acl_ecg:fine_tune", "fine_tune") == "acl_ecg (fine-tuned)"
    )
    assert arm_display_name("acl_ecg:linear_probe") == _row_label("acl_ecg:linear_probe", "linear_probe") == "acl_ecg"
    assert arm_display_name("reference_cnn") == "reference_cnn"


def test_snomed_233917008_is_named_atrioventricular_block():
    from aclecg.data.labels import describe_labels, label_descriptions
    from aclecg.data.snomed import abbreviation, snomed_table

    assert abbreviation("233917008") == "AVB" and snomed_table()["233917008"]["name"] == "atrioventricular block"
    words = label_descriptions({"format": "challenge"})
    assert describe_labels("AVB;233917008", words) == "AVB (Atrioventricular block); 233917008 (Atrioventricular block)"
