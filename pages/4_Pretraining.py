"""Pretraining: launch, watch, cancel and resume background runs (they keep going when the tab is closed)."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import streamlit as st

from aclecg import access, jobs, jobs_watch, paths, viz
from aclecg.joblimits import app_bounds, pretrain_form
from aclecg.methods import loss_terms
from pages._access import acting, session_actor
from pages._common import dataset_paths, open_dataset, runs_root, user_errors

st.title("Pretraining")
st.caption(
    "Runs are detached processes (`python -m aclecg pretrain …`) writing into `runs/<name>`; closing the "
    "tab does not stop them, and this page shows them again when reopened."
)


@st.cache_data
def _methods() -> list[dict]:
    from aclecg.methods import list_methods

    return [m.to_dict() for m in list_methods()]


@st.cache_data
def _presets() -> dict[str, dict]:
    from aclecg.training import PRESETS

    return {k: dict(v) for k, v in PRESETS.items()}


@st.cache_data
def _step_costs() -> dict[tuple[str, str], jobs_watch.StepCost]:
    """Measured seconds per step, from the loss curves committed in the project's checkpoints/ (read once)."""
    return jobs_watch.measured_step_costs(paths.project_root() / "checkpoints")


@st.cache_data
def _committed(root: str) -> dict[str, str]:
    """The loss curves committed with encoders under ``root`` (checkpoints/): option label -> folder (listed once)."""
    curves = jobs_watch.committed_curves(root)
    return {f"{label} (committed)": str(folder) for label, folder in curves.items()}


@st.cache_data(max_entries=32)
def _committed_curve(folder: str):  # a committed curve never changes: parsed once
    return jobs.read_metrics(folder)


def cost_caption(method: str, device: str, data: list[str], epochs: int, batch: int) -> str:
    """A rough duration of the run the form describes, and where its figure comes from."""
    n_records = sum(jobs_watch.training_records(open_dataset(datasets[d]).records) for d in data)
    device = device if device != "auto" else ("cuda" if _cuda_count() else "cpu")
    est = jobs_watch.estimate_pretrain(_step_costs(), method, device, n_records, epochs, batch)
    if est is None:
        return (
            f"No measured step time for {jobs_watch.device_class(device)} in this project's committed curves: "
            "no estimate (`benchmarks/bench_train.py` measures one)."
        )
    return (
        f"Estimated time, rough: ~{jobs_watch.format_duration(est.seconds)} = {epochs} epochs × "
        f"{est.steps_per_epoch} steps/epoch ({n_records} training records ÷ batch {batch}) × "
        f"{est.seconds_per_step:.2f} s/step. The step time is {est.basis}, measured on a 2-core CPU with the small "
        "encoder; another machine, encoder or load changes it."
    )


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


root = runs_root()
methods = _methods()
presets = _presets()
datasets = dataset_paths()
actor = session_actor()
EPOCHS, BATCH = app_bounds("epochs"), app_bounds("batch_size")  # what a launch from the app may ask for
QUEUED = "it starts when a job slot frees (one job per GPU, or one on a CPU machine)."
DEFAULT_PRESET = "cpu-quick" if "cpu-quick" in presets else next(iter(presets))


def fill_from_preset(numbers: bool = True) -> None:
    """Fill the run name (and with ``numbers`` epochs and batch size) from the chosen preset and method.

    Called when the preset (everything) or the method (the name only: presets do not depend on it) changes. A name
    the user typed is kept; only the name the form made itself follows the choice."""
    state = st.session_state
    form = pretrain_form(state.get("pt_preset", DEFAULT_PRESET), state.get("pt_method", "acl_ecg"), "")
    if numbers:
        state["pt_epochs"], state["pt_batch"] = form["epochs"], form["batch_size"]
    if state.get("pt_name") in (None, "", state.get("pt_auto_name")):
        state["pt_name"] = state["pt_auto_name"] = f"{form['name']}{time.strftime('%m%d-%H%M')}"


def launch_form() -> None:
    """The launch form; the Start button starts the run as this session's user."""
    with user_errors("Could not start the run: "):
        by_name = {m["name"]: m for m in methods}
        if "pt_epochs" not in st.session_state:  # first draw: the default preset's values; later the callbacks'
            fill_from_preset()
        c1, c2 = st.columns(2)
        method = c1.selectbox(
            "method",
            list(by_name),
            index=list(by_name).index("acl_ecg") if "acl_ecg" in by_name else 0,
            key="pt_method",
            on_change=fill_from_preset,
            kwargs={"numbers": False},
        )
        info = by_name[method]
        c2.markdown(
            f"**{info['title']}** — {info['description']}  \n*{info['paper']}*"
            + ("  \n**Reconstruction** — details not public." if info.get("reconstruction") else "")
        )
        data = st.multiselect("data", list(datasets), default=list(datasets)[:1], key="pt_data")
        c3, c4, c5, c6 = st.columns(4)
        preset = c3.selectbox(
            "preset",
            list(presets),
            index=list(presets).index(DEFAULT_PRESET),
            key="pt_preset",
            on_change=fill_from_preset,
            help="Sets epochs, batch size and the run name below; the run uses what the form shows.",
        )
        # the values live in session state (set from the preset); the run gets exactly what these fields show
        epochs = c4.number_input("epochs", *EPOCHS, key="pt_epochs")
        batch = c5.number_input("batch size", *BATCH, key="pt_batch")
        n_gpu = _cuda_count()
        device = c6.selectbox("device", ["auto", "cpu"] + [f"cuda:{i}" for i in range(n_gpu)], key="pt_device")
        gpus = st.number_input(
            "GPUs",
            0,
            max(n_gpu, 0),
            min(n_gpu, 1),
            key="pt_gpus",
            disabled=n_gpu < 2,
            help="Several GPUs run with DistributedDataParallel (one process per GPU, torchrun).",
        )
        if gpus > 1 and device.startswith("cuda:"):
            device = "cuda"  # under torchrun each process takes the GPU of its rank (launch assigns the GPUs)
        name = st.text_input("run name", key="pt_name")
        args = [
            "--method",
            method,
            "--preset",
            preset,
            "--epochs",
            str(int(epochs)),
            "--batch-size",
            str(int(batch)),
            "--device",
            device,
            "--no-progress",
        ]
        for d in data:
            args += ["--data", datasets[d]]
        if gpus > 1:  # the datasets by name: the browser is not shown the server's folders
            shown = jobs.without_server_paths(" ".join(args), root)
            st.caption(f"Runs as: torchrun --nproc_per_node {gpus} -m aclecg pretrain {shown}")
        if not data:
            st.caption("Choose at least one dataset above to start a run.")
        else:
            st.caption(cost_caption(method, device, data, int(epochs), int(batch)))
        if st.button("Start run", type="primary", disabled=not data, key="pt_start"):
            with acting():
                run_dir = jobs.launch("pretrain", args, root, jobs.sanitize_name(name), gpus=max(int(gpus), 1))
            queued = jobs.run_info(run_dir).state == "queued"
            st.session_state["pt_run_choice"] = run_dir.name  # the monitor below shows the new run
            st.success(f"Started {run_dir.name}." + (f" It is queued: {QUEUED}" if queued else ""))


if actor.can_write:
    with st.expander("Launch a run", expanded=not jobs.list_runs(root)):
        launch_form()
else:
    st.info(f"Read-only: {actor.read_only_reason}. Runs are shown; launching, cancelling and resuming are off.")


def controls(info: jobs.RunInfo, run_dir: Path) -> None:
    """Cancel and Resume, for the run's owner only (the library checks again: a second session is refused)."""
    with acting():
        mine = access.may_act_on(info.owner)
    why = None if mine else "started by another user or browser session"
    if not mine:
        st.caption(f"This run was {why}: only its owner can cancel or resume it.")
    b1, b2, _ = st.columns([1, 1, 4])
    if b1.button("Cancel", disabled=not (info.alive and mine), key="pt_cancel", help=why):
        with user_errors("Could not cancel: "), acting():
            jobs.cancel(run_dir)
            st.toast(f"Cancel requested for {info.name}")
            st.rerun(scope="fragment")  # picker and state show "cancelling…" at once
    if b2.button("Resume", disabled=not info.resumable or info.alive or not mine, key="pt_resume", help=why):
        with user_errors("Could not resume: "), acting():
            jobs.resume(run_dir)
            st.toast(f"Resumed {info.name}")
            st.rerun(scope="fragment")


@st.fragment(run_every=3)
def monitor() -> None:
    """The run picker and the picked run's live state, curves and log; reruns on its own every 3 s without
    blocking the page. Picker labels and state come from one read of the runs, so they always agree."""
    runs = [r for r in jobs.list_runs(root) if r.kind == "pretrain"]
    if not runs:
        st.info("No pretraining runs yet. Launch one above (preset `cpu-quick` takes a few minutes on a CPU).")
        compare([], None)
        return
    by_name = {r.name: r for r in runs}
    names, labels = list(by_name), [jobs.run_label(r) for r in runs]
    chosen = st.session_state.get("pt_run_choice")
    # options are run names; the labels show state and method. The browser keeps showing a selectbox's old label
    # when only the labels change, so the widget is keyed by its labels (a new state draws a new one) and the
    # choice itself lives in "pt_run_choice"
    selected = st.selectbox(
        "run",
        names,
        index=names.index(chosen) if chosen in names else 0,
        format_func=dict(zip(names, labels)).__getitem__,
        key=f"pt_run_{zlib.crc32(chr(10).join(labels).encode()):08x}",
    )
    st.session_state["pt_run_choice"] = selected
    watch(by_name[selected])
    compare(names, selected)


def compare(names: list[str], selected: str | None) -> None:
    """The loss of several runs on one chart, chosen from the runs list (the watched run by default) and the
    curves committed with the project's encoders."""
    committed = _committed(str(paths.checkpoints_root()))
    options = names + list(committed)
    chosen = st.multiselect(
        "compare the loss of runs",
        options,
        default=[n for n in st.session_state.get("pt_compare_choice", [selected]) if n in options],
        key=f"pt_compare_{zlib.crc32(chr(10).join(names).encode()):08x}",  # a new run list draws a new widget
        help="Their total loss against step on one chart; '(committed)' curves are every step of the encoders "
        "committed under checkpoints/ (metrics.jsonl beside each encoder)",
    )
    st.session_state["pt_compare_choice"] = chosen
    if chosen:
        curves = {n: _committed_curve(committed[n]) if n in committed else jobs.read_metrics(root / n) for n in chosen}
        st.plotly_chart(viz.compared_loss_curves(curves), width="stretch", key="pt_compare_chart")


def watch(info: jobs.RunInfo) -> None:
    """State, curves and log of one run."""
    run_dir = info.path
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("state", jobs.state_text(info.state), help=jobs_watch.state_help(info.state) or None)
    c2.metric("step", f"{info.step}" + (f" / {info.total_steps}" if info.total_steps else ""))
    c3.metric("epoch", info.epoch)
    c4.metric("method", info.method or "?")
    metrics = jobs.read_metrics(run_dir)
    progress = jobs_watch.run_progress(metrics, jobs_watch.read_status(run_dir), info.state)
    p1, p2, p3, p4 = st.columns(4)
    p1.metric("elapsed", jobs_watch.format_duration(progress.elapsed_s))
    p2.metric("ETA", jobs_watch.format_duration(progress.eta_s), help="steps left at the speed of the last steps")
    p3.metric("steps/s", f"{progress.steps_per_s:.2f}" if progress.steps_per_s else "–")
    p4.metric("learning rate", f"{progress.lr:.2e}" if progress.lr is not None else "–")
    st.caption(jobs_watch.state_help(info.state))
    if info.total_steps:
        st.progress(min(info.step / max(int(info.total_steps), 1), 1.0))
    if info.error:
        st.error(f"Run failed: {jobs.without_server_paths(info.error, root)}")
    if info.state == "queued":
        st.info(f"Queued: {QUEUED}")
    if info.state == "cancelling":
        st.info("Cancelling: the run saves a checkpoint and stops; then it can be resumed.")
    if actor.can_write:
        controls(info, run_dir)
    st.plotly_chart(viz.training_curves(metrics, loss_terms(info.method)), width="stretch", key="pt_curves")
    ckpts = sorted((run_dir / "checkpoints").glob("*.pt")) if (run_dir / "checkpoints").is_dir() else []
    if (run_dir / "encoder.pt").is_file():
        st.success(
            f"Exported encoder: `{run_dir.name}/encoder.pt` in the runs folder (use it on the Representations and "
            "Sweeps pages)"
        )
    if ckpts:
        st.caption("checkpoints: " + ", ".join(p.name for p in ckpts))
    with st.expander("log (last 40 lines)"):
        st.code(jobs.without_server_paths(jobs.tail_log(run_dir, 40), root) or "(empty)")


monitor()
