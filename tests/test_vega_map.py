"""The Representations map as Vega-Lite (:mod:`aclecg.viz.vega`): the same points and colours as the plotly map,
the marked records on top, and selections read back into the map's positions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aclecg import viz
from aclecg.viz.charts import SVG_MAX_POINTS

pytest.importorskip("altair")


def _table(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "record_id": [f"r{k}" for k in range(n)],
            "labels_superdiagnostic": rng.choice(["NORM", "MI", "", None], n, p=[0.5, 0.3, 0.1, 0.1]),
            "age": rng.integers(20, 90, n),
            "a.b": ["x"] * n,  # a name Vega would read as a path
        }
    )


def _layers(chart) -> tuple[dict, list[dict]]:
    spec = chart.to_dict()
    return spec, spec["layer"]


def test_points_colours_and_tooltips_are_those_of_the_plotly_map():
    table, xy = _table(), np.random.default_rng(1).normal(size=(30, 2))
    hover = ["record_id", "labels_superdiagnostic", "a.b"]
    spec, (points,) = _layers(viz.embedding_map(xy, table, "labels_superdiagnostic", hover, title="t"))
    data = pd.DataFrame(spec["datasets"][points.get("data", spec.get("data"))["name"]])
    np.testing.assert_allclose(data[["x", "y"]].to_numpy(), xy)
    assert data["pos"].tolist() == list(range(30))
    plotly = viz.embedding_scatter(xy, table, "labels_superdiagnostic", hover)
    scale = points["encoding"]["color"]["scale"]
    assert scale["domain"] == [tr.name for tr in plotly.data]  # the same categories, largest first
    assert scale["range"] == [tr.marker.color for tr in plotly.data]  # in the same colours
    assert [t["title"] for t in points["encoding"]["tooltip"]] == [viz.column_title(h) for h in hover]
    assert all("." not in t["field"] for t in points["encoding"]["tooltip"])
    assert {p["name"] for p in spec.get("params", []) + points.get("params", [])} == set(viz.MAP_SELECTIONS)
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg" and spec["title"] == "t"


def test_a_numeric_column_is_a_continuous_scale_and_large_maps_draw_on_a_canvas():
    n = SVG_MAX_POINTS + 1
    table = pd.DataFrame({"age": np.arange(n) % 80})
    spec, (points,) = _layers(viz.embedding_map(np.zeros((n, 2)), table, "age", legend="age (years)"))
    colour = points["encoding"]["color"]
    assert colour["type"] == "quantitative" and colour["scale"]["scheme"] == "viridis"
    assert colour["title"] == "age (years)"
    assert spec["usermeta"]["embedOptions"]["renderer"] == "canvas"


def test_marked_records_are_layers_on_top_named_in_their_tooltips():
    table = _table()
    marks = {"uploaded JS00001": (np.array([0.5, 0.5]), "upload"), "record r3": (np.ones((1, 2)), "found")}
    spec, layers = _layers(viz.embedding_map(np.zeros((30, 2)), table, "age", marks=marks))
    assert len(layers) == 3
    named = [spec["datasets"][layer["data"]["name"]][0]["what"] for layer in layers[1:]]
    assert named == ["uploaded JS00001", "record r3"]
    assert layers[2]["mark"]["shape"] == "diamond" and layers[1]["mark"]["shape"].startswith("M0,-1")


def test_coords_must_match_the_table():
    with pytest.raises(ValueError, match=r"coords must be \(len\(table\)=30, 2\)"):
        viz.embedding_map(np.zeros((29, 2)), _table(), "age")


def test_a_selection_is_read_back_into_map_positions():
    xy = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 0.0]])
    pick = {"selection": {"pick": [{"pos": 3}, {"pos": 1.0}, {"pos": 3}], "box": {}}}
    assert viz.map_selection(pick, xy) == [3, 1]
    box = {"selection": {"pick": [], "box": {"x": [2.5, 0.5], "y": [0.5, 2.5]}}}
    assert viz.map_selection(box, xy) == [1, 2]
    both = {"selection": {"pick": [{"pos": 0}], "box": {"x": [0.5, 1.5], "y": [0.5, 1.5]}}}
    assert viz.map_selection(both, xy) == [0, 1]


@pytest.mark.parametrize(
    "event",
    [None, {}, {"selection": None}, {"selection": {"pick": [{"pos": 99}, {"pos": -1}, {"x": 1}, "a"]}},
     {"selection": {"pick": "a", "box": {"x": ["a", 1], "y": [0, 1]}}}, {"selection": {"box": {"x": [1]}}}],
)  # fmt: skip
def test_a_malformed_or_foreign_selection_picks_nothing(event):
    assert viz.map_selection(event, np.zeros((4, 2))) == []
