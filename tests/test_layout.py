"""Responsive layout helpers (issue 31): the paper figure's scale note is readable and clear of the plot toolbar,
and the paper chart's container height is computed from the figure's own paper size and margins."""

from __future__ import annotations

import numpy as np
import pytest

from aclecg import viz


@pytest.mark.parametrize("layout", ["3x4", "stacked"])
def test_scale_note_is_readable_and_away_from_the_toolbar(layout):
    fig = viz.ecg_paper_figure(np.zeros((12, 1000), dtype=np.float32), 100, layout=layout, title="record 1")
    note = next(a for a in fig.layout.annotations if str(a.text).startswith("25 mm/s"))
    assert note.font.size >= 13  # was 11 px, grey
    assert note.x == 0 and note.xanchor == "left"  # the toolbar sits at the top right
    assert fig.layout.title.x == 0.5  # the title moves to the centre, leaving the left to the note


def test_paper_chart_height_follows_the_paper_size():
    from pages._layout import _paper_ratio

    fig = viz.ecg_paper_figure(np.zeros((12, 1000), dtype=np.float32), 100, colours="black")
    ratio, side, top_bottom = _paper_ratio(fig)
    width_mm = fig.layout.xaxis.range[1] - fig.layout.xaxis.range[0]
    height_mm = fig.layout.yaxis.range[1] - fig.layout.yaxis.range[0]
    assert ratio == pytest.approx(height_mm / width_mm)
    assert (side, top_bottom) == (fig.layout.margin.l + fig.layout.margin.r, fig.layout.margin.t + fig.layout.margin.b)
