"""Figures for ACL-ECG Studio as pure functions: arrays and DataFrames in, a plotly ``go.Figure`` out (or, for
pictures the pages draw without a chart library, an SVG document as a string).

Nothing here imports Streamlit, so every figure can be unit-tested and reused in notebooks or reports:

* :mod:`~aclecg.viz.paper`: the ECG on clinical paper (3x4 + rhythm strip, or stacked);
* :mod:`~aclecg.viz.paper_svg`: that figure drawn on the server as one SVG (the Explorer's print view);
* :mod:`~aclecg.viz.augmentations`: an augmentation's views with their crop, mask and shift marks;
* :mod:`~aclecg.viz.subplots_svg`: such a figure of stacked subplots drawn on the server as one SVG (the
  Augmentations page's first view);
* :mod:`~aclecg.viz.diagrams`: the pipeline and the anatomical lead-region diagrams;
* :mod:`~aclecg.viz.attribution`: region / lead occlusion attribution (bars, the diagram coloured by effect);
* :mod:`~aclecg.viz.charts`: embedding maps, training curves, sweeps;
* :mod:`~aclecg.viz.tables`: small tables as Markdown (no data grid to load);
* :mod:`~aclecg.viz.vega`: the embedding map as a Vega-Lite chart (the Representations page's first view: click
  or box to pick records);
* :mod:`~aclecg.viz.static`: SVG documents drawn on the server: the region diagram, the similarity heatmap and the
  sweep charts.

The numbers behind the similarity heatmap come from :mod:`aclecg.analysis.similarity`.
"""

from aclecg.viz.attribution import attribution_bars, region_effect_diagram, region_effects, strongest_region
from aclecg.viz.augmentations import ViewMarks, augmentation_figure, count_shapes, marks_from_info
from aclecg.viz.charts import (
    CATEGORY_COLOURS,
    category_colours,
    column_title,
    compared_loss_curves,
    embedding_scatter,
    sweep_figure,
    sweep_series,
    training_curves,
)
from aclecg.viz.diagrams import HEXAXIAL_ANGLES, PIPELINE_STEPS, PRECORDIAL_POSITIONS, pipeline_diagram, region_diagram
from aclecg.viz.paper import (
    GRID_MAJOR_COLOUR,
    GRID_MAJOR_MM,
    GRID_MINOR_COLOUR,
    GRID_MINOR_MM,
    LAYOUT_3X4,
    MM_PER_MV,
    MM_PER_S,
    PAPER_COLOUR,
    ROW_HEIGHT_MM,
    TRACE_COLOUR,
    ecg_paper_figure,
    fallback_colour,
    lead_colour,
)
from aclecg.viz.paper_svg import paper_svg
from aclecg.viz.static import region_diagram_svg, similarity_heatmap, sweep_svg
from aclecg.viz.subplots_svg import subplots_svg
from aclecg.viz.tables import markdown_table
from aclecg.viz.vega import MAP_SELECTIONS, embedding_map, map_selection

__all__ = [
    "CATEGORY_COLOURS",
    "GRID_MAJOR_COLOUR",
    "GRID_MAJOR_MM",
    "GRID_MINOR_COLOUR",
    "GRID_MINOR_MM",
    "HEXAXIAL_ANGLES",
    "LAYOUT_3X4",
    "MAP_SELECTIONS",
    "MM_PER_MV",
    "MM_PER_S",
    "PAPER_COLOUR",
    "PIPELINE_STEPS",
    "PRECORDIAL_POSITIONS",
    "ROW_HEIGHT_MM",
    "TRACE_COLOUR",
    "ViewMarks",
    "attribution_bars",
    "augmentation_figure",
    "category_colours",
    "column_title",
    "compared_loss_curves",
    "count_shapes",
    "ecg_paper_figure",
    "embedding_map",
    "embedding_scatter",
    "fallback_colour",
    "lead_colour",
    "map_selection",
    "markdown_table",
    "marks_from_info",
    "paper_svg",
    "pipeline_diagram",
    "region_diagram",
    "region_diagram_svg",
    "region_effect_diagram",
    "region_effects",
    "similarity_heatmap",
    "strongest_region",
    "subplots_svg",
    "sweep_figure",
    "sweep_series",
    "sweep_svg",
    "training_curves",
]
