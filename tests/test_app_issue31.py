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
