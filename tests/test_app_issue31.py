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
