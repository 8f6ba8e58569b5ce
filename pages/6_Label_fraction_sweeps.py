"""Label-fraction sweeps: launch a sweep as a background job, watch it, plot macro AUROC/AUPRC vs label fraction."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from aclecg import access, jobs, viz
from aclecg.constraints import PROTOCOLS
from aclecg.errors import AclEcgError
from aclecg.evaluation import parse_sweep_form
from aclecg.evaluation.arms import ARM_KINDS, arm_display_name
from aclecg.evaluation.form import LONG_CELL_S, STEP_SECONDS, job_cell_count, trained_cell_estimate
from aclecg.joblimits import app_bounds
from aclecg.metrics import METRICS, titles
from aclecg.results.study import default_rows
from aclecg.results.study_report import chosen_baselines, published_study, published_sweeps, study_verdict_line
from pages._access import acting, session_actor
from pages._common import HOW_TO_CHECKPOINT, checkpoint_paths, dataset_paths, open_dataset, runs_root, user_errors

st.title("Label-fraction sweeps")
st.caption(
    "Linear probe (and optionally fine-tuning) of each checkpoint at several label fractions, against a "
    "supervised-from-scratch arm, a plain 12-lead CNN and a random-init linear probe; bootstrap CIs and "
    "DeLong tests."
)

COLUMN_NAMES = {
    "arm": "arm",
    "method": "method",
    "fraction": "label fraction",
    "metric": "metric",
    "mean": "mean",
    "std": "s.d. over seeds",
    "n_seeds": "seeds",
    "ci_low": "95 % CI low",
    "ci_high": "95 % CI high",
    "boot_ci_low_mean": "bootstrap CI low (mean)",
    "boot_ci_high_mean": "bootstrap CI high (mean)",
    "n_train_mean": "training records",
    "best_step_mean": "best step (mean)",
    "steps_run_mean": "steps run (mean)",
    "n_not_converged": "not converged",
    "n_first_look": "best at first validation",
    "seed": "seed",
    "value": "value",
    "p_vs_supervised": "p vs supervised (DeLong)",
    "p_vs_random_init": "p vs random init (DeLong)",
    "n_train": "training records",
    "n_test": "test records",
    "lr": "learning rate",
    "best_step": "best step",
    "steps_run": "steps run",
    "converged": "converged",
}


def readable(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Rounded, with readable column names and "–" where a value does not apply (e.g. steps of a probe); also the
    number columns that became text for their gaps."""
    out = table.round(4).rename(columns=COLUMN_NAMES)
    numbers = []
    for column in out.columns[out.isna().any()]:
        if pd.api.types.is_numeric_dtype(out[column]):
            numbers.append(column)
        # a column with gaps becomes text ("–" for the gaps): a column mixing numbers and text cannot be displayed
        out[column] = [("–" if pd.isna(v) else (f"{v:g}" if isinstance(v, float) else str(v))) for v in out[column]]
    return out, numbers


def show_table(table: pd.DataFrame, **kwargs) -> None:
    """:func:`readable` as a dataframe, its gapped number columns right-aligned like the other numbers."""
    out, numbers = readable(table)
    config = {c: st.column_config.Column(alignment="right") for c in numbers}
    st.dataframe(out, column_config=config, width="stretch", **kwargs)


#: The width a sweep picture is drawn at (about as tall as the plotly chart was; at most its column's width).
SWEEP_PX = 640


def sweep_chart(where, summary: pd.DataFrame, metric: str, key: str, **columns) -> None:
    """A sweep chart in ``where``: a picture drawn on the server (the page opens without the chart library), or
    the interactive plotly chart when "interactive charts" is on. Both draw :func:`aclecg.viz.sweep_series`."""
    if st.session_state.get("sw_interactive"):
        figure = viz.sweep_figure(summary, metric=metric, fraction_col="fraction", **columns)
        where.plotly_chart(figure, width="stretch", key=key)
    else:
        picture = viz.sweep_svg(viz.sweep_series(summary, metric, fraction_col="fraction", **columns), metric)
        where.image(picture, width=SWEEP_PX)  # at most its column's width: narrower where two charts share a row


st.toggle(
    "interactive charts",
    key="sw_interactive",
    help="Draw the charts with plotly (values on hover, zoom). Off, they are pictures drawn on the server, which "
    "open faster; the tables below them give every value.",
)
study = published_study()
if study is not None:
    table, primary = study
    with st.expander("The study: every method, pooled over test-fold rotations (docs/results.md)", expanded=True):
        s1, s2 = st.columns(2)
        protocol_s = s1.selectbox("protocol", sorted(set(table["protocol"])), key="st_protocol")
        metric_s = s2.selectbox(
            "metric", [m for m in METRICS.names() if m in set(table["metric"])] or METRICS.names(), key="st_metric"
        )
        part = table[(table["protocol"] == protocol_s) & (table["metric"] == metric_s)].copy()
        part["ci_low"], part["ci_high"] = part["mean"] - part["sd"].fillna(0), part["mean"] + part["sd"].fillna(0)
        all_rows = list(dict.fromkeys(part["row"]))
        drawn = st.multiselect(
            "arms drawn",
            all_rows,
            default=default_rows(all_rows, chosen_baselines(primary)),
            key="st_rows",
            help="the table below lists every arm; the chart starts with ACL-ECG, the baselines the rotations chose "
            "and the references",
        )
        sweep_chart(st, part[part["row"].isin(drawn)], metric_s, "st_fig", method_col="row", metric_col=None)
        wide = part.pivot_table(index="row", columns="fraction", values="mean").round(3)
        wide.index.name = "arm"
        wide.columns = [f"{c * 100:g} %" for c in wide.columns]
        show_table(wide)
        st.write(
            f"**Primary comparison** (declared before the runs): {study_verdict_line(primary)} "
            "Bands: ± one standard deviation over test folds."
        )
root = runs_root()
ckpts = checkpoint_paths()
datasets = dataset_paths()
actor = session_actor()


def warn_long(arms: list[str], n_checkpoints: int, fractions: str, seeds: int) -> None:
    """A warning when the form's trained-arm cells may take long on this machine (a rough upper bound)."""
    try:
        n_fractions = len(parse_sweep_form(fractions, arms, n_checkpoints, seeds)[0])
    except AclEcgError:
        return  # the Start button says what is wrong
    device = "cuda" if jobs.visible_gpus() else "cpu"
    estimate = trained_cell_estimate(arms, n_checkpoints, n_fractions, seeds, device)
    if estimate is None or estimate[1] < LONG_CELL_S:
        return
    cells, cell_s, total_s = estimate
    st.warning(
        f"{cells} trained-arm cell(s) (fine-tune / supervised / reference CNN) on the {device.upper()}: each may take "
        f"up to ~{cell_s / 60:.0f} min, about {total_s / 3600:.1f} h in all at most (the first seed of each arm "
        "and fraction tries every learning rate). A rough estimate from a per-step cost "
        f"({STEP_SECONDS[device]} s/step); early stopping often ends cells sooner."
    )


def launch_form() -> None:
    """The sweep form; the Start button checks it as the CLI does, then starts the sweep as this session's user."""
    if not ckpts:
        st.info(HOW_TO_CHECKPOINT + " Without a checkpoint a sweep runs only the supervised and random-init arms.")
    with user_errors("Could not start the sweep: "):
        chosen = st.multiselect("checkpoints", list(ckpts), default=list(ckpts)[:1], key="sw_ckpts")
        c1, c2, c3 = st.columns(3)
        data = c1.selectbox("dataset", list(datasets), key="sw_data")
        ds = open_dataset(datasets[data]) if data else None
        label_set = c2.selectbox("label set", list(ds.label_sets) if ds else [], key="sw_label_set")
        protocol = c3.selectbox("protocol", list(PROTOCOLS), key="sw_protocol")
        c4, c5, c6 = st.columns(3)
        fractions = c4.text_input("label fractions", "0.05,0.1,0.25,1", key="sw_fractions")
        seeds = c5.number_input("seeds", *app_bounds("seeds"), 2, key="sw_seeds")
        default_arms = ["linear_probe", "random_init", "supervised"] if chosen else ["random_init", "supervised"]
        arms = c6.multiselect("arms", ARM_KINDS.names(), default=default_arms, key="sw_arms")
        name = st.text_input("sweep name", value=f"sweep-{label_set}-{time.strftime('%m%d-%H%M')}", key="sw_name")
        if not (data and label_set):
            st.caption("Choose a dataset and a label set to start a sweep.")
        warn_long(arms, len(chosen), fractions, int(seeds))
        if st.button("Start sweep", type="primary", disabled=not (data and label_set), key="sw_start"):
            parse_sweep_form(fractions, arms, len(chosen), int(seeds))  # the CLI's checks, before launching
            args = [
                "--data",
                datasets[data],
                "--label-set",
                label_set,
                "--protocol",
                protocol,
                "--fractions",
                fractions,
                "--seeds",
                str(int(seeds)),
                "--arms",
                ",".join(arms),
                "--device",
                "auto",
            ]
            for c in chosen:
                args += ["--checkpoint", ckpts[c]]
            with acting():
                run_dir = jobs.launch("sweep", args, root, jobs.sanitize_name(name))
            st.session_state["sw_run"] = run_dir.name  # show the new sweep below
            st.success(f"Started {run_dir.name}.")


if actor.can_write:
    with st.expander("Launch a sweep", expanded=False):
        launch_form()
else:
    st.info(f"Read-only: {actor.read_only_reason}. Sweeps are shown; launching, cancelling and resuming are off.")


def sweep_dirs() -> dict[str, Path]:
    """Sweep jobs, any folder under the runs root that holds a summary.csv, then the published study's sweeps."""
    out = {r.name: r.path for r in jobs.list_runs(root) if r.kind == "sweep"}
    if root.is_dir():
        for path in sorted(root.glob("*/summary.csv")):
            out.setdefault(path.parent.name, path.parent)
    for name, path in published_sweeps().items():
        out.setdefault(f"published: {name}", path)
    return out


def expected_cells(run_dir: Path) -> int | None:
    """Number of (arm, fraction, seed) cells a sweep job will compute, from its command line."""
    try:
        args = json.loads((run_dir / "job.json").read_text())["args"]
    except (OSError, ValueError, KeyError):
        return None
    return job_cell_count(args)


sweeps = sweep_dirs()
if not sweeps:
    st.info("No sweeps yet. Launch one above, or from a terminal: `python -m aclecg sweep --help`.")
    st.stop()
selected = st.selectbox("sweep", list(sweeps), key="sw_run")
run_dir = sweeps[selected]


@st.fragment(run_every=5)
def progress(run_dir: Path) -> None:
    info = jobs.run_info(run_dir)
    done = len(list((run_dir / "cells").glob("*.json"))) if (run_dir / "cells").is_dir() else 0
    total = expected_cells(run_dir)
    st.write(f"state: **{jobs.state_text(info.state)}** · cells done: {done}" + (f" / {total}" if total else ""))
    if total:
        st.progress(min(done / total, 1.0))
    if info.error:
        st.error(f"Sweep failed: {jobs.without_server_paths(info.error, root)}")
    if info.state == "queued":
        st.info("Queued: it starts when a job slot frees (one job per GPU, or one on a CPU machine).")
    log = jobs.without_server_paths(jobs.tail_log(run_dir, 6), root)
    if log:
        # the sweep's two progress bars, labelled: all cells, and the running cell's own training steps
        st.code(log, language=None)
    # when the job stops, redraw the whole page so its results appear without a reload
    seen = st.session_state.setdefault("sw_alive", {})
    was_alive, seen[str(run_dir)] = seen.get(str(run_dir)), info.alive
    if was_alive and not info.alive:
        st.rerun(scope="app")
    if not actor.can_write:
        return
    with acting():
        mine = access.may_act_on(info.owner)
    why = None if mine else "started by another user or browser session"
    if not mine and (run_dir / "job.json").is_file():
        st.caption(f"This sweep was {why}: only its owner can cancel or resume it.")
    b1, b2, _ = st.columns([1, 1, 4])
    if b1.button("Cancel", disabled=not (info.alive and mine), key="sw_cancel", help=why):
        with user_errors("Could not cancel: "), acting():
            jobs.cancel(run_dir)
            st.rerun(scope="fragment")  # "cancelling…" at once, then "cancelled"
    if b2.button("Resume", disabled=info.alive or info.state == "finished" or not mine, key="sw_resume", help=why):
        with user_errors("Could not resume: "), acting():
            jobs.resume(run_dir)


if (run_dir / "job.json").is_file():
    progress(run_dir)
else:
    st.caption("A sweep folder written outside the app (no job record): results only.")

summary_path, results_path = run_dir / "summary.csv", run_dir / "results.csv"
if not summary_path.is_file():
    st.info("Results appear here when the sweep has finished its first pass (summary.csv).")
    st.stop()
with user_errors():
    summary = pd.read_csv(summary_path)
    shown_summary = summary.assign(arm=summary["arm"].map(arm_display_name))  # the study chart's arm names
    plot = shown_summary.copy()
    for side in ("low", "high"):
        if f"boot_ci_{side}_mean" in plot.columns:
            plot[f"ci_{side}"] = plot[f"ci_{side}"].fillna(plot[f"boot_ci_{side}_mean"])
    macro = [m for m in titles("macro_") if m in set(plot["metric"])]
    cols = st.columns(max(len(macro), 1))
    for col, metric in zip(cols, macro):
        sweep_chart(col, plot, metric, f"sw_fig_{metric}", method_col="arm")
    st.subheader("Summary over seeds (mean, 95 % CI)")
    shown = shown_summary[shown_summary["metric"].isin(macro)]
    keep = [
        c
        for c in (
            "arm",
            "method",
            "fraction",
            "metric",
            "mean",
            "std",
            "n_seeds",
            "ci_low",
            "ci_high",
            "boot_ci_low_mean",
            "boot_ci_high_mean",
            "n_train_mean",
            "best_step_mean",
            "steps_run_mean",
            "n_not_converged",
            "n_first_look",
        )
        if c in shown.columns
    ]
    show_table(shown[keep], hide_index=True)
    st.download_button(
        "Download summary.csv",
        summary_path.read_bytes(),
        file_name=f"{selected}-summary.csv",
        mime="text/csv",
        key="sw_dl_summary",
    )
    if results_path.is_file():
        results = pd.read_csv(results_path)
        results["arm"] = results["arm"].map(arm_display_name)
        st.subheader("Per seed, with bootstrap CI and DeLong p-values")
        res = results[results["metric"].isin(macro)]
        keep = [
            c
            for c in (
                "arm",
                "fraction",
                "seed",
                "metric",
                "value",
                "ci_low",
                "ci_high",
                "p_vs_supervised",
                "p_vs_random_init",
                "n_train",
                "n_test",
                "lr",
                "best_step",
                "steps_run",
                "converged",
            )
            if c in res.columns
        ]
        show_table(res[keep], hide_index=True)
        st.download_button(
            "Download results.csv",
            results_path.read_bytes(),
            file_name=f"{selected}-results.csv",
            mime="text/csv",
            key="sw_dl_results",
        )
