"""The results report: ``docs/results.md`` and its figures, generated from sweep output folders.

Every number in the report is read from the sweeps' ``summary.csv``, ``results.csv``, ``comparisons.csv`` and
``sweep.json`` (written by :func:`aclecg.evaluation.run_sweep`); nothing is typed in by hand. Regenerate with::

    python -m aclecg report --sweep runs/sweeps/ptbxl-multilabel --sweep runs/sweeps/ptbxl-singlelabel \
        --out docs/results.md
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aclecg.errors import ConfigError, DataError
from aclecg.evaluation.arms import is_reference, reference_arms
from aclecg.metrics import titles


@dataclass
class Sweep:
    """One sweep folder, loaded."""

    path: Path
    meta: dict
    summary: pd.DataFrame
    results: pd.DataFrame
    comparisons: pd.DataFrame

    @property
    def name(self) -> str:
        return self.path.name

    def metric_titles(self) -> dict[str, str]:
        """``{macro_<name>: title}`` of the registered metrics in ``summary.csv`` (all when it has none); a metric
        registered after the tables were written appears once the sweep is run again (its cells are reused)."""
        present = set(self.summary["metric"]) if "metric" in self.summary else set()
        return {m: t for m, t in titles("macro_").items() if m in present or not present}

    @classmethod
    def load(cls, path: str | Path) -> Sweep:
        path = Path(path)
        needed = ["sweep.json", "summary.csv", "results.csv", "comparisons.csv"]
        missing = [f for f in needed if not (path / f).is_file()]
        if missing:
            raise DataError(f"{path} is not a finished sweep folder: missing {', '.join(missing)}")
        comparisons = (
            pd.read_csv(path / "comparisons.csv") if (path / "comparisons.csv").stat().st_size else pd.DataFrame()
        )
        return cls(
            path,
            json.loads((path / "sweep.json").read_text()),
            pd.read_csv(path / "summary.csv"),
            pd.read_csv(path / "results.csv"),
            comparisons,
        )


def _arm_order(arms: Sequence[str], focus: str) -> list[str]:
    references = [a.name for a in reference_arms()]

    def key(arm: str) -> tuple[int, str]:
        if arm.startswith(focus + ":"):
            return (0, arm)
        if is_reference(arm):
            return (3 + references.index(arm), arm)
        if arm.startswith(focus):  # ablations of the focus method
            return (2, arm)
        return (1, arm)

    return sorted(set(arms), key=key)


def _fmt_pct(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def metric_table(sweep: Sweep, metric: str, focus: str) -> str:
    """Markdown table: one row per arm, one column per label fraction: mean ± std over seeds [bootstrap 95 % CI].

    The interval is the bootstrap over test records (mean of the per-seed intervals): it shows how much the
    finite test set alone leaves open, which the spread over seeds does not (a linear probe on 100 % of the
    labels is deterministic, so its seeds agree exactly).
    """
    s = sweep.summary[sweep.summary["metric"] == metric]
    fractions = sorted(s["fraction"].unique())
    lines = ["| arm | " + " | ".join(_fmt_pct(f) for f in fractions) + " |", "|---|" + "---|" * len(fractions)]
    for arm in _arm_order(s["arm"].unique(), focus):
        cells = []
        for f in fractions:
            row = s[(s["arm"] == arm) & (s["fraction"] == f)]
            if row.empty:
                cells.append("–")
                continue
            r = row.iloc[0]
            text = f"{r['mean']:.3f}"
            if r["n_seeds"] > 1:
                text += f" ± {r['std']:.3f}"
            if np.isfinite(r.get("boot_ci_low_mean", np.nan)):
                text += f" [{r['boot_ci_low_mean']:.3f}, {r['boot_ci_high_mean']:.3f}]"
            cells.append(text)
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def delong_table(sweep: Sweep, focus_arm: str) -> str:
    """DeLong tests of ``focus_arm`` against every other arm: mean AUROC difference and per-seed p-values."""
    c = sweep.comparisons
    if c.empty:
        return "_No DeLong comparisons in this sweep._"
    c = c[(c["metric"] == "macro_auroc") & ((c["arm_a"] == focus_arm) | (c["arm_b"] == focus_arm))].copy()
    if c.empty:
        return f"_No comparisons involve {focus_arm}._"
    sign = np.where(c["arm_a"] == focus_arm, 1.0, -1.0)
    c["other"] = np.where(c["arm_a"] == focus_arm, c["arm_b"], c["arm_a"])
    c["diff_focus"] = c["diff"] * sign
    lines = [
        "| vs | label fraction | mean ΔAUROC (focus − other) | p per seed | seeds with p < 0.05 |",
        "|---|---|---|---|---|",
    ]
    for other in _arm_order(c["other"].unique(), focus_arm.split(":")[0]):
        for f in sorted(c["fraction"].unique()):
            sel = c[(c["other"] == other) & (c["fraction"] == f)].sort_values("seed")
            if sel.empty:
                continue
            ps = ", ".join(f"{p:.3f}" if p >= 0.001 else f"{p:.0e}" for p in sel["p_value"])
            wins = int(((sel["p_value"] < 0.05) & (sel["diff_focus"] > 0)).sum())
            losses = int(((sel["p_value"] < 0.05) & (sel["diff_focus"] < 0)).sum())
            lines.append(
                f"| {other} | {_fmt_pct(f)} | {sel['diff_focus'].mean():+.3f} | {ps} | "
                f"{wins} better, {losses} worse of {len(sel)} |"
            )
    return "\n".join(lines)


def plot_sweep(sweep: Sweep, metric: str, path: Path, focus: str) -> Path:
    """A PNG of ``metric`` against label fraction (log axis), the bootstrap 95 % CI over test records as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = sweep.summary[sweep.summary["metric"] == metric]
    title = titles("macro_")[metric]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for arm in _arm_order(s["arm"].unique(), focus):
        rows = s[s["arm"] == arm].sort_values("fraction")
        style = "--" if is_reference(arm) else "-"
        width = 2.6 if arm.startswith(focus + ":") else 1.4
        (line,) = ax.plot(rows["fraction"], rows["mean"], style, marker="o", lw=width, label=arm)
        if rows["boot_ci_low_mean"].notna().any():
            ax.fill_between(
                rows["fraction"],
                rows["boot_ci_low_mean"],
                rows["boot_ci_high_mean"],
                color=line.get_color(),
                alpha=0.10,
            )
    ax.set_xscale("log")
    fracs = sorted(s["fraction"].unique())
    ax.set_xticks(fracs, [_fmt_pct(f) for f in fracs])
    ax.set_xlabel("fraction of training labels")
    ax.set_ylabel(title)
    ax.set_title(f"{sweep.meta['label_set']}, {sweep.meta['protocol']}: {title} (test n={sweep.meta['n_test']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _value(sweep: Sweep, arm: str, fraction: float, metric: str = "macro_auroc") -> tuple[float, float, float] | None:
    s = sweep.summary
    row = s[(s["arm"] == arm) & (s["metric"] == metric) & np.isclose(s["fraction"], fraction)]
    if row.empty:
        return None
    r = row.iloc[0]
    return float(r["mean"]), float(r["boot_ci_low_mean"]), float(r["boot_ci_high_mean"])


def headline(sweep: Sweep, focus: str) -> list[str]:
    """Computed sentences: does the focus method with 10 % of labels match supervised with 100 %?"""
    out = []
    for kind in ("linear_probe", "fine_tune"):
        arm = f"{focus}:{kind}"
        mine, sup = _value(sweep, arm, 0.1), _value(sweep, "supervised", 1.0)
        if mine and sup:
            if mine[0] >= sup[0]:
                verdict = "matches or exceeds it"
            elif mine[0] >= sup[1]:
                verdict = "below its mean but inside its bootstrap 95 % CI"
            else:
                verdict = f"below its bootstrap 95 % CI by {sup[1] - mine[0]:.3f}"
            out.append(
                f"- {arm} with 10 % of labels: macro AUROC {mine[0]:.3f}; supervised with 100 %: "
                f"{sup[0]:.3f} [{sup[1]:.3f}, {sup[2]:.3f}] → {verdict}."
            )
    best = sweep.summary[(sweep.summary["metric"] == "macro_auroc")]
    for f in sorted(best["fraction"].unique()):
        rows = best[np.isclose(best["fraction"], f)].sort_values("mean", ascending=False)
        if not rows.empty:
            top = rows.iloc[0]
            out.append(f"- best arm at {_fmt_pct(f)} labels: {top['arm']} ({top['mean']:.3f}).")
    return out


def _test_fold(sweep: Sweep) -> int:
    return int(sweep.meta.get("test_fold") or 10)


def rotation_summary(sweeps: Sequence[Sweep], focus: str) -> list[str]:
    """Across sweeps that differ only in their test fold: mean macro AUROC per arm and fraction over the folds,
    and how often the focus method's linear probe was significantly better or worse than each other arm."""
    groups: dict[tuple[str, str], list[Sweep]] = {}
    for sweep in sweeps:
        if f"{focus}:linear_probe" not in set(sweep.summary["arm"]):
            continue  # e.g. a fine-tuning-only sweep: nothing to pool with the probes of other folds
        groups.setdefault((sweep.meta["label_set"], sweep.meta["protocol"]), []).append(sweep)
    parts: list[str] = []
    for (label_set, protocol), members in groups.items():
        folds = sorted({_test_fold(s) for s in members})
        if len(folds) < 2:
            continue
        frames = [s.summary.assign(test_fold=_test_fold(s)) for s in members]
        s_all = pd.concat(frames)
        s_all = s_all[s_all["metric"] == "macro_auroc"]
        shared_fr = sorted(set.intersection(*(set(f["fraction"]) for f in frames)))
        arms = [
            a
            for a in _arm_order(s_all["arm"].unique(), focus)
            if s_all[s_all["arm"] == a]["test_fold"].nunique() == len(folds)
        ]
        n_test = sum(int(s.meta["n_test"]) for s in members)
        parts += [
            f"## Test-fold rotation — {label_set}, {protocol} (test folds {', '.join(map(str, folds))}; "
            f"{n_test} test records in all)",
            "",
            "Macro AUROC, mean over the test folds of the mean over seeds (per fold in brackets). Each "
            "rotation's encoders were pretrained without its test fold.",
            "",
            "| arm | " + " | ".join(_fmt_pct(f) for f in shared_fr) + " |",
            "|---|" + "---|" * len(shared_fr),
        ]
        for arm in arms:
            cells = []
            for f in shared_fr:
                rows = s_all[(s_all["arm"] == arm) & np.isclose(s_all["fraction"], f)].sort_values("test_fold")
                per = ", ".join(f"{v:.3f}" for v in rows["mean"])
                cells.append(f"{rows['mean'].mean():.3f} ({per})")
            parts.append(f"| {arm} | " + " | ".join(cells) + " |")
        focus_arm = f"{focus}:linear_probe"
        comps = pd.concat([s.comparisons for s in members if not s.comparisons.empty] or [pd.DataFrame()])
        if not comps.empty and focus_arm in arms:
            c = comps[
                (comps["metric"] == "macro_auroc") & ((comps["arm_a"] == focus_arm) | (comps["arm_b"] == focus_arm))
            ]
            c = c[np.isin(c["fraction"], shared_fr)]
            sign = np.where(c["arm_a"] == focus_arm, 1.0, -1.0)
            other = np.where(c["arm_a"] == focus_arm, c["arm_b"], c["arm_a"])
            diff = c["diff"].to_numpy() * sign
            parts += [
                "",
                f"DeLong tests of `{focus_arm}` over every (test fold, seed) pair, macro AUROC (p < 0.05; "
                "at 100 % of labels a linear probe does not depend on the seed, so its counts move in threes):",
                "",
                "| vs | label fraction | mean ΔAUROC | significantly better | significantly worse | pairs |",
                "|---|---|---|---|---|---|",
            ]
            for arm in [a for a in arms if a != focus_arm]:
                for f in shared_fr:
                    sel = (other == arm) & np.isclose(c["fraction"].to_numpy(), f)
                    if not sel.any():
                        continue
                    p = c["p_value"].to_numpy()[sel]
                    d = diff[sel]
                    parts.append(
                        f"| {arm} | {_fmt_pct(f)} | {d.mean():+.3f} | {int(((p < 0.05) & (d > 0)).sum())} | "
                        f"{int(((p < 0.05) & (d < 0)).sum())} | {int(sel.sum())} |"
                    )
        parts.append("")
    return parts


def build_report(sweep_dirs: Sequence[str | Path], out: str | Path, focus: str = "acl_ecg", preamble: str = "") -> Path:
    """Write the Markdown report and its PNG figures (into ``<out stem>/`` beside it)."""
    sweeps = [Sweep.load(p) for p in sweep_dirs]
    if not sweeps:
        raise DataError("no sweep folders given")
    out = Path(out)
    fig_dir = out.parent / out.stem
    parts = [
        "# Results",
        "",
        "_Generated by `python -m aclecg report` from the sweep folders "
        + ", ".join(f"`{s.path}`" for s in sweeps)
        + ". Do not edit by hand._",
        "",
    ]
    if preamble:
        parts += [preamble.strip(), ""]
    parts += rotation_summary(sweeps, focus)
    for sweep in sweeps:
        m = sweep.meta
        fold_note = f", test fold {m['test_fold']}" if m.get("test_fold") else ""
        parts += [
            f"## {m['label_set']} — {m['protocol']} protocol{fold_note} (`{sweep.name}`)",
            "",
            f"Classes: {', '.join(m['classes'])}. Validation records: {m['n_val']}, test records: {m['n_test']}. "
            f"Seeds: {len(m['seeds'])} ({', '.join(map(str, m['seeds']))}). Label fractions: "
            f"{', '.join(_fmt_pct(f) for f in m['fractions'])}. Device: {m['device']}.",
            "",
        ]
        checkpoints = m.get("checkpoints", {})
        if checkpoints:
            parts += [
                "Checkpoints: "
                + "; ".join(
                    f"`{k}` ({v.get('method')}, sha256 {str(v.get('sha256'))[:12]}…)" for k, v in checkpoints.items()
                ),
                "",
            ]
        parts += ["### Headline", ""] + headline(sweep, focus) + [""]
        for metric, title in sweep.metric_titles().items():
            png = plot_sweep(sweep, metric, fig_dir / f"{sweep.name}_{metric}.png", focus)
            parts += [
                f"### {title} (mean ± std over seeds [bootstrap 95 % CI over test records])",
                "",
                metric_table(sweep, metric, focus),
                "",
                f"![{title}]({png.relative_to(out.parent).as_posix()})",
                "",
            ]
        for kind in ("linear_probe", "fine_tune"):
            arm = f"{focus}:{kind}"
            if arm in set(sweep.summary["arm"]):
                parts += [
                    f"### DeLong tests of `{arm}` (paired, same test records, macro AUROC)",
                    "",
                    delong_table(sweep, arm),
                    "",
                ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts) + "\n")
    return out


def _same_config(path: Path, config: dict) -> bool:
    from aclecg.training import PretrainConfig

    try:
        return PretrainConfig.from_file(path).to_dict() == PretrainConfig.from_dict(config).to_dict()
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        return False


def contract_row(payload: Mapping[str, Any]) -> str:
    """The model card's ``preprocessing`` row: the checkpoint's contract in words (an older checkpoint's implied one,
    marked as such)."""
    from aclecg.contract import Contract, implied

    recorded = payload.get("contract")
    if recorded is not None:
        return f"| preprocessing | {Contract.from_dict(recorded).describe()} |"
    found = implied(payload["fs"], payload["n_samples"], payload["leads"])
    return f"| preprocessing | {found.describe()} (implied: this checkpoint predates the recorded contract) |"


#: What the augmentation row says for an encoder that records ``physio`` but predates the recorded contract (and so
#: 2026-12-05, when Physio-AUG's crop stopped resampling): the preset it was really trained with.
LEGACY_PHYSIO = (
    "physio_v1: Physio-AUG with the resampling crop, as made before 2026-12-05 (recorded as `physio`; see "
    "docs/augmentations.md)"
)


def augmentation_cell(payload: Mapping[str, Any]) -> str:
    """The model card's augmentation value: the recorded one, with the legacy meaning of ``physio`` spelled out."""
    recorded = payload.get("augmentation")
    if recorded == "physio" and payload.get("contract") is None:
        return LEGACY_PHYSIO
    return str(recorded)


# long: the model card is one template filled in order; its parts read the same run files
def loss_by_tenth(metrics: list[dict]) -> str:
    """The loss curve in ten numbers: the mean loss over each tenth of the steps (a run's shape in one line)."""
    losses = [float(m["loss"]) for m in metrics if isinstance(m.get("loss"), (int, float))]
    if not losses:
        return "not recorded"
    parts = np.array_split(np.asarray(losses), min(10, len(losses)))
    return " → ".join(f"{chunk.mean():.3f}" for chunk in parts)


def ship_checkpoint(run_dir: str | Path, dest: str | Path, sweep_dirs: Sequence[str | Path] = ()) -> Path:
    """Copy a finished run's ``encoder.pt`` into ``dest`` and write its model card (``README.md``).

    The card records the data, the full configuration, epochs and steps, training time and hardware, the checksum,
    the whole loss curve, and the checkpoint's linear-probe results from any sweep folders given (rows whose arm is
    ``<dest name>:linear_probe``). ``run_dir`` may be ``dest`` itself, a committed checkpoint folder with its
    ``metrics.jsonl`` (see :mod:`aclecg.results.trainrecord`).
    """
    from aclecg import atomicio
    from aclecg.checkpoint import load_checkpoint
    from aclecg.methods import list_methods
    from aclecg.results.trainrecord import read_training_record

    run_dir, dest = Path(run_dir), Path(dest)
    encoder = run_dir / "encoder.pt"
    payload = load_checkpoint(encoder)  # verifies the checksum
    record = read_training_record(run_dir)
    config, metrics = record.config, record.metrics
    dest.mkdir(parents=True, exist_ok=True)
    if run_dir.resolve() != dest.resolve():
        atomicio.write_bytes(dest / "encoder.pt", encoder.read_bytes())
        atomicio.write_bytes(dest / "encoder.pt.sha256", (run_dir / "encoder.pt.sha256").read_bytes())
        atomicio.write_bytes(dest / "metrics.jsonl", (run_dir / "metrics.jsonl").read_bytes())  # the loss curve
    info = {m.name: m for m in list_methods()}.get(config["method"])
    lines = [
        f"# `{dest.name}`: {info.title if info else config['method']}",
        "",
        f"Method `{config['method']}`" + (f" — {info.paper}" if info else "") + ".",
        "**Reconstruction**: the paper's exact objective is not public; see docs/methods.md."
        if info and info.reconstruction
        else "",
        "",
        "| field | value |",
        "|---|---|",
        f"| file | `encoder.pt` ({(dest / 'encoder.pt').stat().st_size / 1024:.0f} KiB), sha256 "
        f"`{payload['checkpoint_sha256']}` |",
        f"| data | {', '.join(f'`{d}`' for d in config['data'])}, splits excluded: "
        f"{', '.join(config['exclude_splits']) or 'none'}; data fingerprint `{payload['data_fingerprint'][:16]}…` |",
        f"| input | {len(payload['leads'])} leads ({', '.join(payload['leads'])}), {payload['fs']:g} Hz, "
        f"{payload['n_samples']} samples |",
        contract_row(payload),
        f"| encoder | {json.dumps(payload['encoder_config'])} |",
        f"| augmentation | {augmentation_cell(payload)} |",
        f"| method hyper-parameters | `{json.dumps(payload.get('hparams', {}))}` |",
        f"| training | {config['epochs']} epochs, {payload['step']} steps, batch {config['batch_size']}, "
        f"AdamW lr {config['lr']} (cosine, {config['warmup_steps']} warm-up steps), seed {config['seed']} |",
        f"| loss | {metrics[0]['loss']:.3f} at step 1 → {metrics[-1]['loss']:.3f} at step {metrics[-1]['step']} |",
        f"| loss curve | {loss_by_tenth(metrics)} (mean over each tenth of the steps; every step in `metrics.jsonl`) |",
        f"| precision | {record.precision} (`amp={config.get('amp')}` on {record.device}) |",
        f"| time | {record.minutes:.1f} min on {record.hardware} ({record.processes} process; other jobs may have "
        "shared the cores) |",
        "",
        "Reproduce from scratch:",
        "",
        "```bash",
        f"python -m aclecg pretrain --config checkpoints/{dest.name}/config.json --run-dir runs/repro-{dest.name}",
        "```",
        "",
    ]
    if not _same_config(dest / "config.json", config):  # keep the file as written when it is the same recipe
        (dest / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    lines += _probe_sections(dest.name, sweep_dirs)
    (dest / "README.md").write_text("\n".join(lines) + "\n")
    return dest


def _probe_sections(name: str, sweep_dirs: Sequence[str | Path]) -> list[str]:
    """The model card's linear-probe tables: one per sweep folder that scored the checkpoint ``name``."""
    lines: list[str] = []
    for sweep_dir in sweep_dirs:
        sweep = Sweep.load(sweep_dir)
        arm = f"{name}:linear_probe"
        if arm not in set(sweep.summary["arm"]):
            continue
        lines += [
            f"## Linear probe — {sweep.meta['label_set']}, {sweep.meta['protocol']} (`{sweep.path}`)",
            "",
            "| metric | " + " | ".join(_fmt_pct(f) for f in sorted(sweep.summary["fraction"].unique())) + " |",
            "|---|" + "---|" * sweep.summary["fraction"].nunique(),
        ]
        for metric, title in sweep.metric_titles().items():
            cells = []
            for f in sorted(sweep.summary["fraction"].unique()):
                v = _value(sweep, arm, f, metric)
                cells.append("–" if v is None else f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]")
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Test records: {sweep.meta['n_test']}; mean over {len(sweep.meta['seeds'])} seeds "
            "[bootstrap 95 % CI over test records].",
            "",
        ]
    return lines
