"""Several prepared datasets as one table: the rows of a joint 2-D map or a joint search, in stacking order.

>>> from aclecg.data import PreparedDataset, ensure_bundled            # doctest: +SKIP
>>> table = stack_records({n: PreparedDataset(p) for n, p in ensure_bundled().items()})   # doctest: +SKIP
>>> table[["dataset", "row", "record_id"]].iloc[0].tolist()           # doctest: +SKIP
['ptbxl', 0, '1']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["stack_records"]


def stack_records(datasets: Mapping[str, Any]) -> pd.DataFrame:
    """The records of ``datasets`` (name -> prepared dataset) stacked in order, with ``dataset`` (its name) and
    ``row`` (the row within that dataset) first; ``age`` is numeric (unknown ages are NaN)."""
    frames = []
    for name, dataset in datasets.items():
        records = dataset.records.copy()
        records.insert(0, "row", range(len(records)))
        records.insert(0, "dataset", name)
        frames.append(records)
    if not frames:
        return pd.DataFrame(columns=["dataset", "row"])
    table = pd.concat(frames, ignore_index=True)
    if "age" in table:
        table["age"] = pd.to_numeric(table["age"], errors="coerce")
    return table
