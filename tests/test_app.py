"""Every page of the Streamlit app through ``streamlit.testing.v1.AppTest`` on the bundled data.

Runs, checkpoints and caches are redirected to temporary folders with environment variables, so the tests see
an empty project (no runs, no checkpoint) or one with a tiny checkpoint, a fake run and a fake sweep.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from aclecg.app_pages import app_pages

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
#: each page's file by its URL path, and the files in the sidebar's order (the app's pages registry)
PAGE = {page.url_path: page.file for page in app_pages()}
PAGES = list(PAGE.values())
TINY = {"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8}


@pytest.fixture
def empty_project(tmp_path, monkeypatch):
    """No runs, no checkpoints, caches in a temp folder."""
    monkeypatch.setenv("ACLECG_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("ACLECG_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("ACLECG_UMAP_CACHE", str(tmp_path / "cache" / "umap"))
    monkeypatch.setenv("ACLECG_PUBLISHED", str(tmp_path / "published"))
    return tmp_path


_DEMO: dict[str, Path] = {}


def _build_demo(folder: Path) -> None:
    """A tiny real pretraining run, its exported encoder as a shipped checkpoint, and a tiny real sweep of it."""
    import shutil

    from aclecg.data import ensure_bundled
    from aclecg.evaluation import EvalConfig, run_sweep
    from aclecg.training import PretrainConfig, pretrain

    data = ensure_bundled(["ptbxl"])["ptbxl"]
    run = folder / "runs" / "acl-demo"
    config = PretrainConfig(
        method="acl_ecg",
        data=[str(data)],
        encoder=dict(TINY),
        epochs=1,
        max_steps=3,
        batch_size=16,
        checkpoint_every=3,
        warmup_steps=1,
        device="cpu",
        seed=0,
    )
    pretrain(config, run, progress=False)
    ckpt = folder / "checkpoints" / "tiny"
    ckpt.mkdir(parents=True)
    for name in ("encoder.pt", "encoder.pt.sha256"):
        shutil.copy(run / name, ckpt / name)
    run_sweep(
        [ckpt / "encoder.pt"],
        data,
        "superdiagnostic",
        fractions=(0.1, 1.0),
        seeds=1,
        arms=("linear_probe", "supervised", "random_init"),
        out_dir=folder / "runs" / "sweep-demo",
        config=EvalConfig(max_steps=6, eval_every=3, patience=3, batch_size=32, lr_grid=(1e-3,), n_bootstrap=50),
        encoder_config=dict(TINY),
        cache_dir=folder / "cache" / "embeddings",
        show_progress=False,
    )


def make_demo_project(root: Path) -> None:
    """What the pages need to draw everything, made by the real code: a finished pretraining run
    (``root/runs/acl-demo``, 3 steps of ACL-ECG with a tiny encoder), its encoder as a shipped checkpoint
    (``root/checkpoints/tiny``) and a finished sweep of it (``root/runs/sweep-demo``). Built once per process,
    then copied."""
    import shutil
    import tempfile

    if "demo" not in _DEMO:
        folder = Path(tempfile.mkdtemp(prefix="aclecg-demo-"))
        _build_demo(folder)
        _DEMO["demo"] = folder
    for part in ("runs", "checkpoints"):
        # the records of the process that made the run (this one, still alive) are left behind: in the copy the
        # run is a finished run of a process that has exited, as it is for a user
        shutil.copytree(_DEMO["demo"] / part, root / part, dirs_exist_ok=True, ignore=shutil.ignore_patterns("procs"))


@pytest.fixture
def project(empty_project):
    """The empty project plus :func:`make_demo_project`."""
    make_demo_project(empty_project)
    return empty_project


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    return at


def _length(array) -> int:
    """Length of a plotly JSON array, plain or base64-typed (``{"dtype": "f4", "bdata": ...}``)."""
    if isinstance(array, dict) and "bdata" in array:
        import base64

        return len(base64.b64decode(array["bdata"])) // np.dtype(array["dtype"]).itemsize
    return len(array)


def _values(array) -> np.ndarray:
    """Values of a plotly JSON array, plain or base64-typed."""
    if isinstance(array, dict) and "bdata" in array:
        import base64

        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).astype(float)
    return np.asarray(array, dtype=float)


def _assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_home_without_runs_or_checkpoints(empty_project):
    at = _app()
    _assert_clean(at)
    assert at.title[0].value == "ACL-ECG Studio"
    infos = " ".join(i.value for i in at.info)
    assert "No runs yet" in infos and "No checkpoint yet" in infos
    datasets = at.dataframe[0].value
    assert {"ptbxl", "challenge"} <= set(datasets["dataset"])
    from aclecg.data import PreparedDataset, ensure_bundled

    n = len(PreparedDataset(ensure_bundled(["ptbxl"])["ptbxl"]))
    assert int(datasets.set_index("dataset").loc["ptbxl", "records (windows)"]) == n
    # the pipeline diagram is an SVG image, so Home loads no plotly chart
    assert not at.get("plotly_chart")
    assert len(at.get("image")) == 1


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_in_an_empty_project(empty_project, page):
    at = _app()
    at.switch_page(page).run()
    _assert_clean(at)
    if page.endswith(("3_Lead_regions.py", "5_Representations.py")):
        assert any("No checkpoint yet" in i.value for i in at.info)


def test_explorer_changes_record_and_layout(empty_project):
    from aclecg.data import PreparedDataset, ensure_bundled

    records = PreparedDataset(ensure_bundled(["ptbxl"])["ptbxl"]).records
    at = _app()
    at.session_state["explorer_calipers"] = True  # the interactive chart, whose spec is read below
    at.switch_page(PAGE["explorer"]).run()
    _assert_clean(at)
    target = records.iloc[[i for i in range(len(records)) if "MI" in records.iloc[i]["labels_superdiagnostic"]][0]]
    at.selectbox(key="explorer_record").set_value(str(target["record_id"])).run()
    _assert_clean(at)
    labels = next(m.value for m in at.markdown if m.value.startswith("**Labels"))
    assert "MI (Myocardial infarction)" in labels
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert chart["layout"]["xaxis"]["dtick"] == 5
    at.radio(key="explorer_layout").set_value("stacked 12-lead").run()
    _assert_clean(at)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert sum(1 for t in chart["data"] if t.get("name") in ("I", "V6")) == 2
    at.text_input(key="explorer_query").set_value("no-such-record").run()
    assert any("No record matches" in w.value for w in at.warning)


def test_explorer_steps_through_records_in_black_with_the_heart_rate(empty_project):
    at = _app()
    at.session_state["explorer_calipers"] = True  # the interactive chart, whose spec is read below
    at.switch_page(PAGE["explorer"]).run()
    first = at.selectbox(key="explorer_record").value
    at.button(key="explorer_next").click().run()
    _assert_clean(at)
    second = at.selectbox(key="explorer_record").value
    assert second != first
    at.button(key="explorer_prev").click().run()
    assert at.selectbox(key="explorer_record").value == first
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    colours = {t["line"]["color"] for t in chart["data"] if t.get("name") in ("I", "V1", "II")}
    assert colours == {"#111111"}
    assert any(m.value.startswith("**Heart rate ") and " bpm · RR " in m.value for m in at.markdown)
    at.radio(key="explorer_colours").set_value("region colours").run()
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len({t["line"]["color"] for t in chart["data"] if t.get("name") in ("I", "V1", "II")}) == 3


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_explorer_finds_similar_ecgs_of_the_record(project):
    """The button lists the k nearest records (the library's answer, query left out) and draws the pick."""
    from aclecg.analysis.neighbours import NeighbourIndex
    from aclecg.checkpoint import discover_checkpoints
    from aclecg.data import PreparedDataset, ensure_bundled
    from aclecg.evaluation import cached_embeddings, load_source

    at = _app()
    at.session_state["explorer_calipers"] = True  # the interactive chart, whose spec is read below
    at.session_state["explorer_dataset"] = "challenge"  # 21 windows: a small index to build
    at.switch_page(PAGE["explorer"]).run()
    record = at.selectbox(key="explorer_record").value
    assert not at.dataframe  # nothing searched yet
    at.number_input(key="explorer_sim_k").set_value(4).run()
    at.button(key="explorer_sim_go").click().run()
    _assert_clean(at)
    table = at.dataframe[0].value
    ds = PreparedDataset(ensure_bundled(["challenge"])["challenge"])
    ckpt = next(iter(discover_checkpoints(project / "checkpoints", project / "runs").values()))
    emb, _ = cached_embeddings(load_source(ckpt), ds, cache_dir=project / "check-embeddings")
    row = int(np.flatnonzero(ds.records["record_id"].astype(str).to_numpy() == record.split(" ")[0])[0])
    want, _ = NeighbourIndex(emb).query(emb[row : row + 1], k=4, exclude=[row])
    assert table["record_id"].tolist() == ds.records["record_id"].astype(str).to_numpy()[want[0]].tolist()
    assert record.split(" ")[0] not in table["record_id"].tolist()
    assert table["similarity"].is_monotonic_decreasing
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")[1:]]
    assert titles[0].startswith("query: ") and titles[1].startswith(f"#1 {table['record_id'].iloc[0]}")
    at.radio(key="explorer_sim_pick").set_value(3).run()
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")[1:]]
    assert titles[1].startswith(f"#3 {table['record_id'].iloc[2]}")


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_explorer_explains_the_record_by_region(project):
    """The button draws the library's occlusion attribution: one bar per region and lead, the strongest region's
    leads shaded on the grid, the diagram coloured by the same effects."""
    from aclecg.analysis.attribution_eval import cached_probe, explain
    from aclecg.checkpoint import discover_checkpoints
    from aclecg.data import PreparedDataset, ensure_bundled
    from aclecg.evaluation import load_source
    from aclecg.leads import default_region_map

    at = _app()
    at.session_state["explorer_calipers"] = True  # the interactive chart, whose spec is read below
    at.switch_page(PAGE["explorer"]).run()
    record = at.selectbox(key="explorer_record").value
    metas = [json.loads(c.proto.spec)["layout"].get("meta", {}) for c in at.get("plotly_chart")]
    assert not any("class" in m for m in metas if isinstance(m, dict))  # nothing explained yet
    at.button(key="explorer_attr_go").click().run()
    _assert_clean(at)
    pick = at.radio(key="explorer_attr_class").value
    charts = {json.loads(c.proto.spec)["layout"].get("meta", {}).get("class"): c for c in at.get("plotly_chart")}
    bars = json.loads(charts[pick].proto.spec)
    ds = PreparedDataset(ensure_bundled(["ptbxl"])["ptbxl"])
    ckpt = next(iter(discover_checkpoints(project / "checkpoints", project / "runs").values()))
    source = load_source(ckpt)
    row = int(np.flatnonzero(ds.records["record_id"].astype(str).to_numpy() == record.split(" ")[0])[0])
    probe = cached_probe(source, ds, at.selectbox(key="explorer_label_set").value, cache_dir=project / "check-probe")
    want = explain(source, probe, ds.signals[row : row + 1], ds.leads, ds.fs).table(0)
    want = want[want["class"] == pick]
    region_bar = bars["data"][0]
    assert list(region_bar["x"]) == ["septal", "anterior", "lateral", "inferior"]
    np.testing.assert_allclose(_values(region_bar["y"]), want[want["kind"] == "region"]["drop"], atol=1e-5)
    assert _length(bars["data"][1]["y"]) == 12
    effects = dict(zip(region_bar["x"], _values(region_bar["y"])))
    top = max(effects, key=effects.get)
    specs = [json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")]
    grid = next(s for s in specs if str(s.get("title", {}).get("text", "")).startswith(("shaded", "no region lowers")))
    shaded = [s for s in grid.get("shapes", []) if s.get("name") == "highlighted lead"]
    if effects[top] > 0:
        leads = default_region_map().regions[top]
        assert len(shaded) == len(leads) + ("II" in leads)  # lead II's rhythm strip is shaded too
    else:
        assert not shaded
    diagram = next(s for s in specs if "score drop by region" in str(s.get("title", {}).get("text", "")))
    assert diagram["meta"]["effects"] == pytest.approx(effects, abs=1e-5)


def test_explorer_label_filter(empty_project):
    at = _app()
    at.switch_page(PAGE["explorer"]).run()
    option = next(o for o in at.multiselect(key="explorer_labels").options if o.startswith("HYP"))
    at.multiselect(key="explorer_labels").set_value([option]).run()
    _assert_clean(at)
    assert any("97 of" in c.value for c in at.caption)  # the bundled PTB-XL subset has 97 HYP records


def _aug_summary(at: AppTest) -> pd.DataFrame:
    """The views' summary table, read back from the Markdown the page shows."""
    text = next(m.value for m in at.markdown if m.value.startswith("| view |"))
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in text.splitlines() if line.startswith("| ")]
    table = pd.DataFrame(rows[1:], columns=rows[0])
    table["masked cycles"] = table["masked cycles"].astype(int)
    return table


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_augmentations_sliders_seed_and_determinism(empty_project):
    at = _app()
    at.switch_page(PAGE["augmentations"]).run()
    _assert_clean(at)
    # the views open drawn on the server (an SVG image, no plotly); the switch brings the interactive chart
    assert not at.get("plotly_chart") and len(at.get("image")) == 1
    svg = base64.b64decode(at.get("image")[0].proto.imgs[0].url.split(",", 1)[1]).decode()
    assert 'class="title"' in svg and "Physio-AUG view 1" in svg and 'data-name="crop window"' in svg
    at.toggle(key="aug_interactive").set_value(True).run()
    first = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    at.run()
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"] == first  # same record + seed = same views
    at.slider(key="aug_cycles").set_value((3, 3)).run()
    _assert_clean(at)
    summary = _aug_summary(at)
    physio = summary[summary["view"].str.startswith("Physio")]
    assert (physio["masked cycles"] >= 3).all()
    measured = [m.value for m in at.markdown if " bpm, QRS " in m.value]  # each view's rate and intervals
    assert measured[0].startswith("Physio-AUG view 1: HR ") and " ms, QT " in measured[0], measured
    assert measured[-1].startswith("baseline view: HR ") and any("not a diagnosis" in c.value for c in at.caption)
    at.button(key="aug_new").click().run()
    assert at.number_input(key="aug_seed").value == 1
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"] != first


def test_lead_regions_invalid_map_shows_error(empty_project):
    at = _app()
    at.switch_page(PAGE["regions"]).run()
    assert any("Valid map" in s.value for s in at.success)
    at.session_state["regions_editor"] = {"edited_rows": {1: {"leads": "V3, V1"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and "V1 is in two regions" in errors[0]
    at.session_state["regions_editor"] = {"edited_rows": {1: {"leads": "V3, V7"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert any("unknown lead name 'V7'" in e.value for e in at.error)


def test_lead_regions_similarity_with_checkpoint(project):
    at = _app()
    at.switch_page(PAGE["regions"]).run()
    _assert_clean(at)
    at.selectbox(key="regions_dataset").set_value("challenge").run()
    at.slider(key="regions_n_challenge").set_value(16).run()  # one slider per dataset, capped by its size
    _assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["records"] == "16"
    within = float(metrics["within-region lead similarity"])
    assert -1.0 <= within <= 1.0
    assert not at.get("plotly_chart")  # no chart library: both pictures are drawn on the server
    svgs = [base64.b64decode(i.proto.imgs[0].url.split(",", 1)[1]).decode() for i in at.get("image")]
    assert len(svgs) == 2 and "lead regions" in svgs[0] and svgs[1].count("<rect x=") == 16  # diagram, 4x4 heatmap
    assert "mean cosine similarity of region embeddings" in svgs[1] and ">1.00<" in svgs[1]  # the diagonal


def test_pretraining_page_shows_runs_and_curves(project):
    at = _app()
    at.switch_page(PAGE["pretraining"]).run()
    _assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["state"] == "finished" and metrics["step"].startswith("3")
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {t.get("name") for t in curves["data"]}
    logged = json.loads((project / "runs" / "acl-demo" / "metrics.jsonl").read_text().splitlines()[0])
    from aclecg.methods import loss_terms

    terms = set(loss_terms("acl_ecg"))
    assert terms <= set(logged)  # the engine really logs every declared term
    assert names == terms | {"lr", "samples/s"}  # and the chart draws those, no bookkeeping column
    assert at.button(key="pt_cancel").disabled


def _vega_map(at: AppTest, k: int = 0) -> tuple[dict, dict[str, pd.DataFrame]]:
    """The ``k``-th Vega-Lite chart's spec and its datasets (by name), as the page sent them."""
    import pyarrow as pa

    chart = at.get("vega_lite_chart")[k].proto
    frames = {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.datasets}
    return json.loads(chart.spec), frames


def _map_layers(at: AppTest, k: int = 0) -> list[pd.DataFrame]:
    """The data of each layer of the ``k``-th map: the points first, then the marked ones (upload, found)."""
    spec, frames = _vega_map(at, k)
    return [frames[layer.get("data", spec.get("data"))["name"]] for layer in spec["layer"]]  # one: at the top


def test_representations_map_with_checkpoint(project):
    at = _app()
    at.session_state["rep_datasets"] = ["challenge"]  # the small dataset from the first render on
    at.switch_page(PAGE["representations"]).run()
    _assert_clean(at)
    from aclecg.data import PreparedDataset, ensure_bundled

    n_records = len(PreparedDataset(ensure_bundled(["challenge"])["challenge"]))
    # the map opens as a Vega-Lite chart, no plotly: a click picks a point, a drag a box
    assert not at.get("plotly_chart") and len(at.get("vega_lite_chart")) == 1
    assert list(at.get("vega_lite_chart")[0].proto.selection_mode) == ["box", "pick"]
    assert len(_map_layers(at)[0]) == n_records
    at.selectbox(key="rep_colour").set_value("sex").run()
    _assert_clean(at)
    spec, _ = _vega_map(at)
    assert set(spec["layer"][0]["encoding"]["color"]["scale"]["domain"]) <= {"M", "F", "(none)", "nan"}
    assert list((project / "cache" / "umap").glob("umap_*.npz"))  # cached on disk
    caption = " ".join(c.value for c in at.caption)
    assert "Drawn with **fast**" in caption and "trustworthiness at k = 10: 0." in caption
    # nothing picked yet: no record is shown, the page says how to pick one
    assert any("Click a point on the map" in i.value for i in at.info)
    # "zoom and lasso": the same points as a plotly chart
    at.toggle(key="rep_zoom").set_value(True).run()
    _assert_clean(at)
    scatter = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert sum(_length(t["x"]) for t in scatter["data"] if t.get("customdata")) == n_records
    assert not at.get("vega_lite_chart")


@pytest.mark.slow
def test_representations_switches_to_umap_learn(project):
    """The method radio draws umap-learn's map (its first fit compiles numba kernels) and names it."""
    pytest.importorskip("umap")
    at = _app()
    at.session_state["rep_datasets"] = ["challenge"]
    at.switch_page(PAGE["representations"]).run()
    fast = _map_layers(at)[0]
    at.radio(key="rep_method").set_value("umap-learn").run()
    _assert_clean(at)
    learned = _map_layers(at)[0]
    assert "Drawn with **umap-learn**" in " ".join(c.value for c in at.caption)
    assert len(learned) == len(fast) and not np.allclose(learned["x"], fast["x"])
    assert len(list((project / "cache" / "umap").glob("umap_*.npz"))) == 2  # one entry per method


def test_sweep_page_plots_and_downloads(project):
    at = _app()
    at.switch_page(PAGE["sweeps"]).run()
    at.selectbox(key="sw_run").set_value("sweep-demo").run()
    _assert_clean(at)
    assert not at.get("plotly_chart")  # pictures drawn on the server: the page opens without the chart library
    svgs = [base64.b64decode(i.proto.imgs[0].url.split(",", 1)[1]).decode() for i in at.get("image")]
    assert len(svgs) == 2 and all(">label fraction<" in svg for svg in svgs)
    assert all(f">{arm}<" in svgs[0] for arm in ("tiny", "supervised", "random_init"))
    at.toggle(key="sw_interactive").set_value(True).run()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 2 and all(c["layout"]["xaxis"]["type"] == "log" for c in charts)
    arms = {t.get("name") for t in charts[0]["data"] if t.get("mode") == "lines+markers"}
    assert arms == {"tiny", "supervised", "random_init"}  # named as the study chart names arms (tiny:linear_probe)
    assert len(at.get("download_button")) == 2
    shown = at.dataframe[-1].value
    assert "p vs supervised (DeLong)" in shown.columns and "None" not in shown.astype(str).to_numpy()
    # the reference arm has no p-value against itself: shown as "–" (a real sweep leaves it empty)
    assert "–" in shown["p vs supervised (DeLong)"].astype(str).to_numpy()
    # ... and that column, text now, stays right-aligned like the numbers it holds
    columns = json.loads(at.dataframe[-1].proto.columns)
    assert columns["p vs supervised (DeLong)"]["alignment"] == "right"


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_sweep_page_shows_the_published_study(empty_project, tiny_study):
    """What `make results` exports (here from tiny real sweeps) is listed and plotted without running anything."""
    from aclecg.results.study_report import build_study_report

    build_study_report(tiny_study, empty_project / "results.md", export=empty_project / "published" / "sweeps")
    table_csv = empty_project / "published" / "paper_table.csv"
    table = pd.read_csv(table_csv)  # one arm without its 10 % entry, as while make results is still running
    table[~((table["arm"] == "supervised") & np.isclose(table["fraction"], 0.1))].to_csv(table_csv, index=False)
    at = _app()
    at.session_state["sw_interactive"] = True  # the interactive charts, whose specs are read below
    at.switch_page(PAGE["sweeps"]).run()
    _assert_clean(at)

    def drawn() -> set:
        chart = json.loads(at.get("plotly_chart")[0].proto.spec)
        return {t.get("name") for t in chart["data"] if t.get("mode") == "lines+markers"}

    # the chart starts with ACL-ECG, every baseline a rotation chose and the references; the table lists every arm
    from aclecg.results.study_report import chosen_baselines

    chosen = set(chosen_baselines(json.loads((empty_project / "published" / "primary.json").read_text())))
    assert {"acl_ecg", "reference_cnn", "supervised", "random_init"} <= drawn()
    assert not ({"simclr", "lcd"} - chosen) & drawn() and {"simclr", "lcd"} & chosen <= drawn()
    assert {"acl_ecg", "simclr", "lcd"} <= set(at.dataframe[0].value.index)
    at.multiselect(key="st_rows").set_value(at.multiselect(key="st_rows").options).run()
    assert {"acl_ecg", "simclr", "lcd", "reference_cnn", "supervised", "random_init"} <= drawn()
    text = " ".join(m.value for m in at.markdown)
    assert "Primary comparison" in text
    # the page prints the report's verdict line, word for word
    from aclecg.results.study_report import study_verdict_line

    prim = json.loads((empty_project / "published" / "primary.json").read_text())
    assert study_verdict_line(prim).split(" Linear probe")[0] in text
    shown = at.dataframe[0].value
    assert shown.loc["supervised", "10 %"] == "–" and "None" not in shown.astype(str).to_numpy()
    listed = at.selectbox(key="sw_run").options
    assert "published: multilabel-test8-probe" in listed and "published: multilabel-test10-reference" in listed


def upload_js00001_on_the_explorer() -> AppTest:
    """The Explorer with the bundled Challenge record JS00001 uploaded as a .hea/.mat pair (skips where this
    Streamlit's AppTest cannot drive st.file_uploader)."""
    from aclecg.data import BUNDLED_RAW_DIR

    hea = next((BUNDLED_RAW_DIR / "challenge-2021").rglob("JS00001.hea"))
    at = _app()
    at.session_state["explorer_calipers"] = True  # the interactive chart, whose spec is read below
    at.switch_page(PAGE["explorer"]).run()
    uploader = at.get("file_uploader")
    if not uploader or not hasattr(uploader[0], "set_value"):
        pytest.skip("this Streamlit's AppTest cannot drive st.file_uploader")
    files = [(p.name, p.read_bytes(), "application/octet-stream") for p in (hea, hea.with_suffix(".mat"))]
    uploader[0].set_value(files).run()
    return at


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_upload_on_explorer(empty_project):
    """An uploaded record appears in the explorer (AppTest file_uploader)."""
    at = upload_js00001_on_the_explorer()
    _assert_clean(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "uploaded JS00001" in json.dumps(spec["layout"].get("title"))


def test_bad_upload_shows_readable_error(empty_project):
    at = _app()
    at.switch_page(PAGE["augmentations"]).run()
    uploader = at.get("file_uploader")
    if not uploader or not hasattr(uploader[0], "set_value"):
        pytest.skip("this Streamlit's AppTest cannot drive st.file_uploader")
    uploader[0].set_value([("../evil.hea", b"x", "application/octet-stream")]).run()
    assert not at.exception
    assert any("Upload rejected" in e.value and "contains a path" in e.value for e in at.error)


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_sweep_form_is_validated_before_launch_and_the_new_sweep_is_shown(project, monkeypatch):
    from aclecg import jobs

    launched = []

    def fake_launch(kind, args, runs_root, name, gpus=1):
        launched.append(list(args))
        folder = Path(runs_root) / name
        folder.mkdir(parents=True)
        (folder / "job.json").write_text(json.dumps({"kind": kind, "args": args}))
        return folder

    monkeypatch.setattr(jobs, "launch", fake_launch)
    at = _app()
    at.switch_page(PAGE["sweeps"]).run()
    at.text_input(key="sw_fractions").set_value("abc, 2").run()
    at.text_input(key="sw_name").set_value("bad-form").run()
    at.button(key="sw_start").click().run()
    assert not at.exception and not launched
    assert any("fractions must be" in e.value for e in at.error)
    assert not (project / "runs" / "bad-form").exists()  # the name is not used up
    at.text_input(key="sw_fractions").set_value("0.1,1").run()
    at.multiselect(key="sw_arms").set_value([]).run()
    at.button(key="sw_start").click().run()
    assert not launched and any("at least one arm" in e.value for e in at.error)
    at.multiselect(key="sw_arms").set_value(["random_init"]).run()
    at.text_input(key="sw_name").set_value("good-form").run()
    at.button(key="sw_start").click().run()
    assert len(launched) == 1 and "0.1,1" in launched[0]
    assert at.selectbox(key="sw_run").value == "good-form"


def test_corrupted_checkpoint_is_an_error_box_not_a_traceback(project):
    ckpt = project / "checkpoints" / "tiny" / "encoder.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:-100] + b"\0" * 100)
    at = _app()
    at.session_state["rep_datasets"] = ["challenge"]
    at.switch_page(PAGE["representations"]).run()
    assert not at.exception
    assert at.error and "tiny" in at.error[0].value


def test_pretraining_launch_passes_the_form_to_jobs(empty_project, monkeypatch):
    """The Start button calls aclecg.jobs.launch with the chosen method, preset, data, epochs and batch size."""
    from aclecg import jobs

    calls = []

    def fake_launch(kind, args, runs_root, name, gpus=1):
        calls.append((kind, list(args), Path(runs_root), name))
        assert gpus == 1  # no GPU here: one process
        return Path(runs_root) / name

    monkeypatch.setattr(jobs, "launch", fake_launch)
    at = _app()
    at.switch_page(PAGE["pretraining"]).run()
    at.selectbox(key="pt_method").set_value("simclr")
    at.number_input(key="pt_epochs").set_value(3)
    at.text_input(key="pt_name").set_value("my run!").run()
    at.button(key="pt_start").click().run()
    _assert_clean(at)
    assert len(calls) == 1
    kind, args, root, name = calls[0]
    assert kind == "pretrain" and root == empty_project / "runs" and name == "my-run"
    get = {args[i]: args[i + 1] for i in range(0, len(args) - 1) if args[i].startswith("--")}
    assert get["--method"] == "simclr" and get["--epochs"] == "3" and get["--preset"] == "cpu-quick"
    assert Path(get["--data"]).name == "ptbxl"
    assert any("Started my-run" in s.value for s in at.success)


def test_explorer_reads_raw_challenge_record_in_mv(empty_project):
    at = _app()
    at.session_state["explorer_calipers"] = True  # the interactive chart, whose spec is read below
    at.switch_page(PAGE["explorer"]).run()
    at.selectbox(key="explorer_dataset").set_value("challenge").run()
    _assert_clean(at)
    assert not any("raw record is not available" in i.value for i in at.info)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["meta"]["units"] == "mV"


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_sweep_page_names_arms_as_the_study_does_and_heads_the_study_table_arm(empty_project, tiny_study):
    """Issue 31: the study table's first column is "arm" (was "row"), and a sweep's chart and tables name arms as
    the study chart does ("acl_ecg", "acl_ecg (fine-tuned)"), never by their ids ("acl_ecg:linear_probe")."""
    from aclecg.results.study_report import build_study_report

    build_study_report(tiny_study, empty_project / "results.md", export=empty_project / "published" / "sweeps")
    at = _app()
    at.session_state["sw_interactive"] = True  # the interactive charts, whose specs are read below
    at.switch_page(PAGE["sweeps"]).run()
    _assert_clean(at)
    assert at.dataframe[0].value.index.name == "arm"
    probe = next(o for o in at.selectbox(key="sw_run").options if o.endswith("-probe"))
    at.selectbox(key="sw_run").set_value(probe).run()
    _assert_clean(at)
    names = {t.get("name") for c in at.get("plotly_chart") for t in json.loads(c.proto.spec)["data"]}
    arms = set(at.dataframe[-1].value["arm"]) | set(at.dataframe[-2].value["arm"])
    assert "acl_ecg" in names and "acl_ecg" in arms
    assert not [n for n in names | arms if n and ":" in str(n)], names | arms


def test_home_lists_every_checkpoint_without_a_scrollbar(empty_project, monkeypatch):
    """Issue 31: the checkpoint table showed 10 of 12 rows (the default height); it is as tall as its rows."""
    import streamlit as st

    from aclecg import checkpoint

    many = {f"ckpt-{i:02d}": empty_project / f"c{i}" / "encoder.pt" for i in range(12)}
    monkeypatch.setattr(checkpoint, "discover_checkpoints", lambda *a, **k: many)
    heights, draw = {}, st.dataframe

    def dataframe(data, *args, **kwargs):  # AppTest's tree does not carry an element's height: record it
        rows = list(data) if isinstance(data, list) else []
        if rows and "checkpoint" in rows[0]:
            heights[len(rows)] = kwargs.get("height", "auto")
        return draw(data, *args, **kwargs)

    monkeypatch.setattr(st, "dataframe", dataframe)
    at = _app()
    _assert_clean(at)
    assert len(next(d for d in at.dataframe if "checkpoint" in d.value.columns).value) == 12
    assert heights == {12: "content"}  # "auto" shows ten rows


def test_lead_regions_sample_slider_is_capped_by_the_dataset(project):
    """Issue 31: on the bundled Challenge data (21 records) the slider offered 128 records."""
    from aclecg.data import PreparedDataset, ensure_bundled

    n = len(PreparedDataset(ensure_bundled(["challenge"])["challenge"]))
    at = _app()
    at.switch_page(PAGE["regions"]).run()
    at.selectbox(key="regions_dataset").set_value("challenge").run()
    _assert_clean(at)
    slider = next(s for s in at.slider if s.label == "records sampled")
    assert slider.max == n and slider.value == n
    assert next(m for m in at.metric if m.label == "records").value == str(n)


@pytest.mark.slow  # several seconds; the default suite must stay under 90 s
def test_explain_by_region_uses_the_region_map_edited_on_the_lead_regions_page(project):
    """Issue 31: the Lead regions page stored its edited map but nothing used it; Explain by region does now."""
    at = _app()
    at.switch_page(PAGE["regions"]).run()
    editor = at.session_state  # what the Lead regions page keeps for the session once a valid map is edited
    editor["region_map"] = {"front": ["V1", "V2", "V3", "V4"], "side": ["I", "aVL", "V5", "V6"], "low": ["II", "III"]}
    at.switch_page(PAGE["explorer"]).run()
    at.button(key="explorer_attr_go").click().run()
    _assert_clean(at)
    pick = at.radio(key="explorer_attr_class").value
    charts = {json.loads(c.proto.spec)["layout"].get("meta", {}).get("class"): c for c in at.get("plotly_chart")}
    assert list(json.loads(charts[pick].proto.spec)["data"][0]["x"]) == ["front", "side", "low"]
    at.switch_page(PAGE["regions"]).run()  # back on the page, the editor shows the session's map, not the default
    _assert_clean(at)
    assert at.session_state["region_map"]["low"] == ["II", "III"]
