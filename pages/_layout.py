"""The app's responsive layout: one style block for every page (called once per run from ``app.py``) and the ECG
paper chart whose height follows its width.

* Columns wrap instead of squeezing: a column narrower than 9 rem moves to the next line (Streamlit only
  stacks columns below 640 px of window, whatever the sidebar leaves), so control columns stack on a tablet and
  side-by-side charts go one per row.
* Button labels wrap rather than being cut with an ellipsis ("◀ pre…"), and the sidebar is narrower below 1000 px.
* :func:`paper_chart`: a plotly figure stretched to its column has a fixed height, so a paper ECG (square mm cells)
  left blank bands above and below its rows when the column was narrower than the height assumed. Its container's
  height is ``(width - side margins) × paper height / paper width + top and bottom margins`` (a CSS container
  query, ``cqw``), so the rows always fill the figure.
"""

from __future__ import annotations

import re
from typing import Any

import plotly.graph_objects as go
import streamlit as st

#: The columns' narrowest width before they wrap to the next line.
MIN_COLUMN_REM = 9
#: The narrowest a column holding a chart gets before it wraps (the sweep charts, a map beside another).
CHART_COLUMN_REM = 24

LAYOUT_CSS = f"""
<style>
/* columns wrap instead of squeezing their widgets (buttons cut to "Fin…") */
[data-testid="stHorizontalBlock"] {{ flex-wrap: wrap; }}
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"] {{ min-width: min({MIN_COLUMN_REM}rem, 100%); }}
/* a column holding a chart (plotly, or an SVG drawn on the server) needs more room: side-by-side charts go one
   per row on a narrow screen */
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has([data-testid="stPlotlyChart"]),
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has(img[src^="data:image/svg"]) {{
  min-width: min({CHART_COLUMN_REM}rem, 100%);
}}
/* a button's label wraps onto a second line rather than being cut */
[data-testid="stBaseButton-secondary"] p, [data-testid="stBaseButton-primary"] p,
[data-testid="stBaseButton-secondary"] div, [data-testid="stBaseButton-primary"] div {{
  white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: anywhere;
}}
[data-testid="stBaseButton-secondary"], [data-testid="stBaseButton-primary"] {{ height: auto; min-width: 0; }}
/* the main area never scrolls sideways */
[data-testid="stMain"] {{ overflow-x: hidden; }}
[data-testid="stMainBlockContainer"] {{ max-width: 100%; }}
@media (max-width: 1000px) {{
  section[data-testid="stSidebar"] {{ width: 13rem !important; min-width: 13rem !important; }}
  [data-testid="stMainBlockContainer"] {{ padding-left: 1rem; padding-right: 1rem; }}
}}
</style>
"""


def apply_layout_css() -> None:
    """The shared style block (once per page run, from ``app.py``)."""
    st.markdown(LAYOUT_CSS, unsafe_allow_html=True)


def _paper_ratio(fig: go.Figure) -> tuple[float, float, float]:
    """(paper height / paper width, side margins px, top + bottom margins px) of a paper figure."""
    x0, x1 = fig.layout.xaxis.range
    y0, y1 = fig.layout.yaxis.range
    m = fig.layout.margin
    side = float((m.l or 0) + (m.r or 0))
    return abs(y1 - y0) / abs(x1 - x0), side, float((m.t or 0) + (m.b or 0))


def paper_chart(fig: go.Figure, key: str, **kwargs: Any) -> Any:
    """``st.plotly_chart`` of an ECG paper figure (:func:`aclecg.viz.ecg_paper_figure`) whose height follows the
    width of its column, so its rows fill it at any screen size; returns what ``st.plotly_chart`` returns."""
    ratio, side, top_bottom = _paper_ratio(fig)
    name = re.sub(r"[^A-Za-z0-9_-]", "-", key)
    height = f"calc((100cqw - {side:.0f}px) * {ratio:.5f} + {top_bottom:.0f}px)"
    fixed = f"height: {height} !important; max-height: {height} !important; min-height: 0 !important; flex: none;"
    st.markdown(  # the fixed-height container and the wrapper Streamlit puts around it both take the paper's height
        f"<style>.st-key-paperwrap-{name} {{ container-type: inline-size; }}"
        f".st-key-paperwrap-{name} > div:has(> .st-key-paper-{name}), .st-key-paper-{name} {{ {fixed} }}</style>",
        unsafe_allow_html=True,
    )
    # a fixed-height container lets a "stretch" chart take its height; the style above then sets that height
    with st.container(key=f"paperwrap-{name}"), st.container(key=f"paper-{name}", height=400, border=False):
        return st.plotly_chart(fig, width="stretch", height="stretch", key=key, **kwargs)
