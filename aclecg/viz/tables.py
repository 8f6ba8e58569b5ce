"""Small tables as Markdown text: a page shows them with ``st.markdown``, without the data grid.

Streamlit's data grid (``st.dataframe``) loads about 1.2 MB of JavaScript (the grid and its Arrow formatting) the
first time a browser meets one, which a new browser's first page then waits for (docs/app.md, "page timings"); a
table of a few rows reads as well as plain Markdown.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["markdown_table"]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or " "


def markdown_table(table: pd.DataFrame) -> str:
    """``table`` as a GitHub-flavoured Markdown table: its columns as the header, its rows (not its index) below;
    pipes and line breaks inside cells escaped, missing values as "–".

    >>> print(markdown_table(pd.DataFrame({"view": ["a|b"], "shift (s)": [0.5], "n": [None]})))
    | view | shift (s) | n |
    |---|---|---|
    | a\\|b | 0.5 | – |
    """
    head = "| " + " | ".join(_cell(c) for c in table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *rows])
