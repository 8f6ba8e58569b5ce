"""The study as a declarative plan: the pure cell plan, the study file, the task plan, the local executor.

The cell plan must reproduce today's cell ids exactly (committed cells in ``checkpoints/cells`` are found again);
the study file is validated with one-line errors naming the file and key; a tiny end-to-end study runs on the
in-memory FakePrepared data with committed (tiny) encoders standing in for pretraining, and a rerun skips all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aclecg.evaluation.cells import SweepPlan, chosen_lr_of, plan_cells
from aclecg.evaluation.config import EvalConfig
from aclecg.leads import LEADS
from tests.helpers import e20

REPO = Path(__file__).resolve().parents[1]
#: The bundled PTB-XL subset the committed cells were computed on (prepared at 100 Hz, 10 s).
BUNDLED_PTBXL = "fa407e0d79ec7685a779bd19b4a294a2a78463dfa4e50b88324cd954c6722d82"
SUPERDIAGNOSTIC = ("CD", "HYP", "MI", "NORM", "STTC")
ALL_FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


class _Leads:
    leads = list(LEADS)


def _committed_ids(folder: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (e20.CHECKPOINTS / "cells" / folder).glob("*.json")}


def _official_plan(checkpoints: Path, names, protocol: str, kinds, fractions, config: EvalConfig) -> SweepPlan:
    """The official split's sweep plan (test fold 10, validation fold 9, 3 seeds) over committed encoders."""
    from aclecg.evaluation.cellrun import encoder_info, reference_config
    from aclecg.evaluation.sources import load_source

    encoders = tuple(encoder_info(load_source(checkpoints / n / "encoder.pt")) for n in names)
    return SweepPlan(
        label_set="superdiagnostic",
        protocol=protocol,
        classes=SUPERDIAGNOSTIC,
        fingerprint=BUNDLED_PTBXL,
        fractions=fractions,
        seeds=(0, 1, 2),
        arm_kinds=kinds,
        encoders=encoders,
        ref_config=reference_config(encoders, _Leads()),
        config=config,
        test_fold=10,
        val_fold=9,
    )


@pytest.mark.parametrize(
    ("folder", "names", "kinds", "fractions"),
    [
        ("multilabel-test10-reference", ["acl_ecg"], ("reference_cnn",), ALL_FRACTIONS),
        ("singlelabel-test10-reference", ["acl_ecg"], ("reference_cnn",), ALL_FRACTIONS),
        ("multilabel-test10-finetune", ["acl_ecg", "dlc"], ("fine_tune", "supervised"), (0.01, 0.1, 1.0)),
    ],
)
def test_plan_finds_the_committed_cells(folder, names, kinds, fractions):
    """The official split's sweeps as results_all.sh ran them (--test-fold 10 --val-fold 9, 3 seeds, the
    pre-2026-12-04 schedule --dense-until 0, --lr-grid 0.0003,0.001,0.003): the plan names exactly the committed
    files, the later seeds resolved with the learning rate their first seed chose."""

    manifest = REPO / ".cache" / "prepared" / "ptbxl" / "manifest.json"
    if manifest.is_file():  # the prepared bundled data, when this checkout has it, is the data of those cells
        assert json.loads(manifest.read_text())["fingerprint"] == BUNDLED_PTBXL
    config = EvalConfig(dense_until=0, lr_grid=(3e-4, 1e-3, 3e-3))
    plan = _official_plan(e20.CHECKPOINTS, names, folder.split("-")[0], kinds, fractions, config)
    committed = _committed_ids(folder)
    first = plan_cells(plan)
    waiting = [c for c in first if c.cell_id is None]
    assert len(waiting) == len(first) * 2 // 3  # seeds 1 and 2 wait for seed 0's learning rate
    assert all(c.after == (c.arm.name, c.fraction, 0) for c in waiting)
    chosen = {(c.arm.name, c.fraction): chosen_lr_of(committed[c.cell_id]) for c in first if c.chooses_lr}
    ids = [c.cell_id for c in plan_cells(plan, chosen)]
    assert len(ids) == len(set(ids)) and set(ids) == set(committed)
    assert plan_cells(plan, chosen) == plan_cells(plan, chosen)  # a pure function of its inputs


@pytest.mark.parametrize(
    ("folder", "names", "kinds"),
    [
        ("multilabel-test10-reference", ["acl_ecg"], ("reference_cnn",)),
        ("multilabel-test10-finetune", ["acl_ecg", "dlc"], ("fine_tune", "supervised")),
    ],
)
def test_plan_finds_the_committed_120_epoch_searches_and_the_cells_they_continue(folder, names, kinds):
    """The 120-epoch study's official split (today's schedule, lr_extend = 2): every first seed's id is committed,
    and so is the cell of the plain grid it continues (issue 28: the searches were extended, not redone)."""

    fractions = ALL_FRACTIONS if kinds == ("reference_cnn",) else (0.01, 0.1, 1.0)
    plan = _official_plan(e20.E120, names, "multilabel", kinds, fractions, EvalConfig(lr_extend=2))
    committed = {p.stem for p in (e20.E120 / "cells" / folder).glob("*.json")}
    searches = [c for c in plan_cells(plan) if c.chooses_lr]
    assert len(searches) == len(fractions) * (3 if "fine_tune" in kinds else 1)  # fine-tunes of both, supervised
    assert {c.cell_id for c in searches} <= committed and {c.continues for c in searches} <= committed


# ------------------------------------------------------------------------------------------------ study files
def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


TINY_STUDY = """
[study]
name = "tiny"
runs = "{root}/runs"
checkpoints = "{root}/ckpts"

[data]
pretrain = ["toy"]
downstream = "toy"
label_set = "toy"

[folds]
test = [10, 8]
validation = 9
official = 10

[pretrain]
methods = ["acl_ecg", "simclr"]

[pretrain.seeds]
10 = 0
8 = 2

[evaluation]
seeds = 2
max_steps = 4
eval_every = 2
dense_until = 0
patience = 2
batch_size = 32
n_bootstrap = 20
lr_grid = [0.001, 0.003]
probe_grid = [0.01, 1.0]
probe_max_iter = 20
device = "cpu"

[[sweep]]
group = "probe"
arms = ["linear_probe", "random_init"]
encoders = "all"
fractions = [{probe_fractions}]
protocols = ["multilabel"]

[[sweep]]
group = "finetune"
arms = ["fine_tune"]
encoders = ["best_baseline"]
fractions = [1.0]
protocols = ["multilabel"]
folds = [10]
"""


def _tiny_study(root: Path, probe_fractions: str = "0.1, 1.0") -> Path:
    return _write(root / "tiny.toml", TINY_STUDY.format(root=root, probe_fractions=probe_fractions))


def _commit_encoders(root: Path, data) -> None:
    """Committed tiny encoders stand in for pretraining: checkpoints/NAME (official split) and
    checkpoints/rotations/test8/NAME, each recorded as trained from NAME/config.json (config.sha256)."""
    import hashlib

    from tests.test_evaluate import TINY, _save_checkpoint

    for i, name in enumerate(("acl_ecg", "simclr")):
        config = _write(
            root / "ckpts" / name / "config.json",
            json.dumps({"method": "simclr", "data": ["toy"], "encoder": TINY, "epochs": 1, "batch_size": 8}),
        )
        sha = hashlib.sha256(config.read_bytes()).hexdigest()
        for store, seed in ((root / "ckpts" / name, i), (root / "ckpts" / "rotations" / "test8" / name, 10 + i)):
            _save_checkpoint(store / "encoder.pt", data, seed=seed)
            (store / "config.sha256").write_text(sha + "\n")


def _record_rotation_configs(plan) -> None:
    """A committed rotation encoder records its own effective configuration (folds and seed included)."""
    from aclecg.studyplan.encoders import store_digest

    for job in plan.pretrain.values():
        if not job.official and job.store_dir is not None and (job.store_dir / "encoder.pt").is_file():
            (job.store_dir / "config.sha256").write_text(store_digest(job) + "\n")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny study run once with the local executor (in this process), on the in-memory FakePrepared data."""
    from aclecg.studyplan import load_study
    from aclecg.studyplan.executors import LocalExecutor, run_study
    from aclecg.studyplan.tasks import StudyPlan
    from tests.test_evaluate import FakePrepared

    root = tmp_path_factory.mktemp("tiny-study")
    data = FakePrepared(n_patients=80, t=64)
    _commit_encoders(root, data)
    path = _tiny_study(root)
    mp = pytest.MonkeyPatch()
    mp.setenv("ACLECG_CACHE", str(root / "cache"))
    try:
        plan = StudyPlan(load_study(path), datasets={"toy": data})
        _record_rotation_configs(plan)
        before = plan.tasks()
        summary = run_study(plan, LocalExecutor(workers=1))
        yield {"root": root, "data": data, "path": path, "before": before, "summary": summary, "mp": mp}
    finally:
        mp.undo()


def _tasks(root: Path, data, probe_fractions: str = "0.1, 1.0"):
    from aclecg.studyplan import load_study
    from aclecg.studyplan.tasks import StudyPlan

    path = _tiny_study(root, probe_fractions) if probe_fractions != "0.1, 1.0" else root / "tiny.toml"
    plan = StudyPlan(load_study(path), datasets={"toy": data})
    return plan, plan.tasks()


def test_tiny_study_runs_everything_in_dependency_order(tiny_run):
    """Pretraining (committed encoders reused), embeddings, probes, then the fine-tuning of each rotation's best
    baseline; the sweeps land where the study report reads them, and run_sweep finds every cell there."""
    from aclecg import evaluation
    from aclecg.results import study

    root, data, before, summary = tiny_run["root"], tiny_run["data"], tiny_run["before"], tiny_run["summary"]
    assert summary.failed == {} and summary.waiting == 0 and summary.skipped == 0
    assert summary.computed == len(before) == 4 + 4 + 2 * 12 + 2  # pretrain, embed, probes, fine-tune cells
    # before anything ran: only the pretraining was resolved; the cells waited (encoders, best baseline, lr)
    assert [t.kind for t in before if t.resolved] == ["pretrain"] * 4
    ft = [t for t in before if "finetune" in t.id]
    assert all("best_baseline" in t.id and "pending" in t.id for t in ft)
    assert any(d.startswith("cell:multilabel-test10-probe/") for d in ft[0].deps)
    assert ft[1].deps[-1] == ft[0].id  # seed 1 reuses the learning rate seed 0 chooses
    sweeps = root / "runs" / "sweeps"
    assert sorted(p.name for p in sweeps.iterdir()) == [
        "multilabel-test10-finetune",
        "multilabel-test10-probe",
        "multilabel-test8-probe",
    ]
    cells = study.load_cells(sweeps)
    study.check_choices(cells)  # every choice on fold 9, which no rotation tests on
    best = study.best_baseline(cells, 0.1, "multilabel", 10)
    meta = json.loads((sweeps / "multilabel-test10-finetune" / "sweep.json").read_text())
    assert meta["arms"] == [f"{best}:fine_tune"] and meta["val_folds"] == [9]
    ft_cells = [
        json.loads(p.read_text()) for p in sorted((sweeps / "multilabel-test10-finetune" / "cells").glob("*.json"))
    ]
    first, later = sorted(ft_cells, key=lambda c: c["seed"])
    assert len(first["details"]["lr_grid"]) == 2 and later["key"]["settings"]["lr"] == first["details"]["lr"]
    # the same cells through run_sweep: all found, none missing (the study's ids are the sweep's)
    s = tiny_run["path"]
    from aclecg.studyplan import load_study

    cfg = load_study(s).evaluation
    for fold in (10, 8):
        ckpts = [root / "runs" / f"eval-test{fold}" / n / "encoder.pt" for n in ("acl_ecg", "simclr")]
        res = evaluation.run_sweep(
            ckpts, data, "toy", "multilabel", [0.1, 1.0], 2, ["linear_probe", "random_init"],
            sweeps / f"multilabel-test{fold}-probe", config=cfg, show_progress=False, test_fold=fold, val_fold=9,
            collect_only=True,
        )  # fmt: skip
        assert (res.n_computed, res.n_cached, res.n_missing) == (0, 12, 0)


def test_rerun_skips_every_finished_task(tiny_run):
    from aclecg.studyplan.executors import run_study

    class Refuse:
        workers = 1

        def submit(self, envelope, gpu):
            pytest.fail(f"a finished task was run again: {envelope.task_id}")

        def wait(self):
            return []

        def close(self):
            pass

    plan, tasks = _tasks(tiny_run["root"], tiny_run["data"])
    assert all(t.done and t.resolved for t in tasks)
    summary = run_study(plan, Refuse())
    assert (summary.computed, summary.skipped, summary.failed) == (0, len(tasks), {})


def test_only_trained_runs_the_cells_whose_probes_finished_earlier(tiny_run, tmp_path):
    """``study run --only trained`` after the probes ran: a cell depending on finished probe tasks (filtered out of
    the run) is ready. It used to wait forever, since only the selected tasks counted as finished."""
    import shutil

    from aclecg.studyplan import load_study
    from aclecg.studyplan.executors import LocalExecutor, run_study, selector
    from aclecg.studyplan.tasks import StudyPlan

    old = tiny_run["root"]
    root = tmp_path / "copy"
    shutil.copytree(old, root)
    (root / "tiny.toml").write_text((old / "tiny.toml").read_text().replace(str(old), str(root)))
    shutil.rmtree(root / "runs" / "sweeps" / "multilabel-test10-finetune")
    plan = StudyPlan(load_study(root / "tiny.toml"), datasets={"toy": tiny_run["data"]})
    summary = run_study(plan, LocalExecutor(workers=1), selector(None, ["trained"]))
    assert (summary.computed, summary.waiting, summary.failed) == (2, 0, {})


def test_a_report_of_a_running_study_counts_the_cells_committed_elsewhere(tiny_run, tmp_path):
    """A new machine has the committed trained cells but not yet in its sweep folders (a running study copies a
    cell there only when it reads it): `aclecg study report FILE` restores them first, so the report counts them."""
    import shutil

    from aclecg.results import study
    from aclecg.studyplan import load_study
    from aclecg.studyplan.executors import restore_finished
    from aclecg.studyplan.tasks import StudyPlan

    old = tiny_run["root"]
    root = tmp_path / "copy"
    shutil.copytree(old, root)
    text = (old / "tiny.toml").read_text().replace(str(old), str(root))
    (root / "tiny.toml").write_text(text.replace("[data]", f'cells = "{root}/committed"\n\n[data]', 1))
    folder = root / "runs" / "sweeps" / "multilabel-test10-finetune"
    shutil.copytree(folder / "cells", root / "committed" / folder.name)
    shutil.rmtree(folder / "cells")
    before = study.load_cells(root / "runs" / "sweeps")
    plan = StudyPlan(load_study(root / "tiny.toml"), datasets={"toy": tiny_run["data"]})
    assert restore_finished(plan) > 0
    after = study.load_cells(root / "runs" / "sweeps")
    assert len(after) - len(before) == len(list((root / "committed" / folder.name).glob("*.json"))) == 2
    assert not after.duplicated(["sweep", "arm", "fraction", "seed"]).any()


def test_task_keys_hold_the_data_and_change_only_where_the_study_does(tiny_run):
    root, data = tiny_run["root"], tiny_run["data"]
    _, tasks = _tasks(root, data)
    _, again = _tasks(root, data)
    assert [(t.id, t.key) for t in tasks] == [(t.id, t.key) for t in again]  # deterministic
    for t in tasks:
        text = json.dumps(t.key)
        assert data.fingerprint in text, t.id  # the data fingerprint is in every key
    # one probe fraction changed (1 -> 0.5): only those probe cells change; pretraining, embeddings, the other
    # probe cells and the fine-tuning keep their keys
    try:
        _, changed = _tasks(root, data, probe_fractions="0.1, 0.5")
    finally:
        _tiny_study(root)  # restore the file the other tests read
    keys = {t.id: t.key for t in tasks}
    new = {t.id: t.key for t in changed}
    gone, added = set(keys) - set(new), set(new) - set(keys)
    assert gone and all("probe/" in i and "__f1__" in i for i in gone)
    assert added and all("probe/" in i and "__f0.5__" in i for i in added)
    assert all(keys[i] == new[i] for i in set(keys) & set(new))
    assert len(gone) == len(added) == 12


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_cli_plan_lists_done_tasks_and_run_finds_nothing_to_do(tiny_run, monkeypatch, capsys):
    from aclecg.cli import main
    from aclecg.studyplan import tasks as tasks_module

    data = tiny_run["data"]
    real = tasks_module.open_data
    monkeypatch.setattr(tasks_module, "open_data", lambda ref: data if ref == "toy" else real(ref))
    path = str(tiny_run["path"])
    assert main(["study", "plan", path]) == 0
    out = capsys.readouterr().out
    assert "done     pretrain  pretrain acl_ecg, test fold 10" in out
    assert "done     trained   multilabel-test10-finetune" in out
    assert "time left on this device: about 0 s" in out
    assert "measured over 24" in out  # the probe cells' own seconds
    assert main(["study", "run", path, "--workers", "1", "--no-progress"]) == 0
    assert "0 tasks run, 34 already finished, 0 failed" in capsys.readouterr().out
    assert main(["study", "plan", path, "--shard", "3/2"]) == 2
    assert "--shard must be i/n with 1 <= i <= n" in capsys.readouterr().err
    assert main(["study", "best-baseline", path]) == 0
    assert capsys.readouterr().out.strip() == "simclr"
    report = tiny_run["root"] / "report.md"  # the study report reads the study's sweeps unchanged
    assert main(["study", "report", path, "--out", str(report), "--preamble", "none"]) == 0
    assert "## Verdict" in report.read_text() and str(tiny_run["root"] / "runs" / "sweeps") in report.read_text()


def test_pretrain_task_trains_commits_rotations_and_refuses_a_foreign_run(tmp_path, monkeypatch):
    """Without a committed encoder the run is trained with the rotation's folds and seed (what pretrain_all.sh
    set), copied to runs/eval-testK/NAME, and a rotation's encoder is committed; a finished run is not retrained;
    a run folder holding another configuration is refused in one line."""
    import aclecg.training
    from aclecg.errors import ConfigError
    from aclecg.studyplan import load_study
    from aclecg.studyplan.encoders import pretrain_done, run_pretrain
    from aclecg.studyplan.tasks import StudyPlan
    from tests.test_evaluate import TINY, FakePrepared, _save_checkpoint

    data = FakePrepared(n_patients=20, t=64)
    calls = []

    def fake_pretrain(config, run_dir, resume=False, progress=True):
        calls.append((config.to_dict(), Path(run_dir).name, resume))
        _write(Path(run_dir) / "config.json", json.dumps({"run": Path(run_dir).name, "config": config.to_dict()}))
        return _save_checkpoint(Path(run_dir) / "encoder.pt", data)

    monkeypatch.setattr(aclecg.training, "pretrain", fake_pretrain)
    for name in ("acl_ecg", "simclr"):
        cfg = {"method": "simclr", "data": ["toy"], "encoder": TINY, "epochs": 1, "batch_size": 8}
        _write(tmp_path / "ckpts" / name / "config.json", json.dumps(cfg))
    text = TINY_STUDY.format(root=tmp_path, probe_fractions="0.1").replace("[pretrain]", "[pretrain]\nepochs = 3")
    plan = StudyPlan(load_study(_write(tmp_path / "s.toml", text)), datasets={"toy": data})
    rot, official = plan.pretrain[(8, "acl_ecg")], plan.pretrain[(10, "acl_ecg")]
    assert [t.cost for t in plan.tasks() if t.kind == "pretrain"] == ["pretrain"] * 4  # nothing to reuse
    run_pretrain(rot)
    config, run, resume = calls[-1]
    assert run == "rot8-acl_ecg" and not resume
    assert (config["exclude_folds"], config["exclude_splits"], config["seed"], config["epochs"]) == ([8], [], 2, 3)
    assert pretrain_done(rot) and (tmp_path / "runs" / "eval-test8" / "acl_ecg" / "encoder.pt").is_file()
    assert not (tmp_path / "ckpts" / "rotations" / "test8" / "acl_ecg").exists()  # epochs changed: not committed
    run_pretrain(official)
    assert calls[-1][0]["exclude_splits"] == ["test"] and calls[-1][1] == "ship-acl_ecg"
    run_pretrain(official)  # the finished run is copied again, not retrained
    assert len(calls) == 2
    assert [t.done for t in plan.tasks() if t.kind == "pretrain"] == [True, False, True, False]
    foreign = plan.pretrain[(8, "simclr")]
    _write(foreign.run_dir / "config.json", json.dumps({"method": "byol", "data": ["toy"], "encoder": TINY}))
    with pytest.raises(ConfigError, match=r"rot8-simclr holds a run of another configuration") as err:
        run_pretrain(foreign)
    assert "\n" not in str(err.value)
    from aclecg.studyplan.encoders import TrainingStopped

    def stopped_pretrain(config, run_dir, resume=False, progress=True):  # a stop signal: checkpoint, no encoder
        _write(Path(run_dir) / "config.json", json.dumps(config.to_dict()))

    monkeypatch.setattr(aclecg.training, "pretrain", stopped_pretrain)
    stopped = plan.pretrain[(10, "simclr")]
    with pytest.raises(TrainingStopped, match=r"stopped before its last step; .* running the study again resumes"):
        run_pretrain(stopped)
    assert not pretrain_done(stopped)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[folds]", "[folds]\nextra = 1"), r"tiny.toml: folds.extra is not a known key"),
        (("validation = 9", "validation = 8"), r"tiny.toml: folds.validation must not be a test fold"),
        (("validation = 9", "validation = 0"), r"tiny.toml: folds.validation must be an integer >= 1, got 0"),
        (("8 = 2\n", ""), r"tiny.toml: pretrain.seeds.8 is missing"),
        (('"acl_ecg", "simclr"]', '"acl_ecg", "simclr", "x y"]'), r"tiny.toml: pretrain.methods must be a list"),
        (('arms = ["fine_tune"]', 'arms = ["fine_tuning"]'), r"tiny.toml: sweep\[1\].arms must be a list"),
        (('encoders = ["best_baseline"]', 'encoders = ["dlc"]'), r"tiny.toml: sweep\[1\].encoders must be"),
        (("fractions = [1.0]", "fractions = [1.5]"), r"tiny.toml: sweep\[1\].fractions must be a list"),
        (("folds = [10]", "folds = [9]"), r"tiny.toml: sweep\[1\].folds must be"),
        (("max_steps = 4", "max_steps = 0"), r"tiny.toml: evaluation.max_steps must be an integer >= 1"),
        (("seeds = 2", "seeds = 0"), r"tiny.toml: evaluation.seeds must be an integer >= 1"),
        (("[data]", "[datta]"), r"tiny.toml: datta is not a known table"),
        (
            (
                'methods = ["acl_ecg", "simclr"]',
                'methods = ["acl_ecg"]\nofficial_only = ["simclr"]',
                "folds = [10]",
                "folds = [8]",
                'encoders = ["best_baseline"]',
                'encoders = ["simclr"]',
            ),
            r"tiny.toml: sweep\[1\].encoders names simclr, pretrained on the official split only",
        ),
        (
            ("[pretrain.seeds]", "[pretrain.method.simclr]\nconfig = 3\n[pretrain.seeds]"),
            r"tiny.toml: pretrain.method.simclr.config must be the path of a config file, got 3",
        ),
        (('label_set = "toy"', ""), r"tiny.toml: data.label_set is missing"),
        (('name = "tiny"', 'name = "tiny'), r"tiny.toml: not valid TOML"),
        (("[evaluation]", "[primary]\nfraction = 0.25\n[evaluation]"), r"tiny.toml: primary.fraction is 0.25 but"),
    ],
)
def test_study_file_errors_name_the_file_and_key(tmp_path, edit, message):
    """Each edit (old, new[, more old, new ...]) of the valid tiny study makes one one-line error."""
    from aclecg.errors import ConfigError
    from aclecg.studyplan import load_study

    good = _tiny_study(tmp_path)
    load_study(good)  # the unedited file is valid
    text = good.read_text()
    for old, new in zip(edit[::2], edit[1::2]):
        text = text.replace(old, new, 1)
    good.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_study(good)
    assert "\n" not in str(err.value).strip()
    with pytest.raises(ConfigError, match="does not exist"):
        load_study(tmp_path / "missing.toml")


def test_bundled_study_file_declares_todays_protocol():
    from aclecg.results import study
    from aclecg.studyplan import load_study

    s = load_study(REPO / "studies" / "bundled.toml")
    assert s.test_folds == study.STUDY_TEST_FOLDS and s.val_fold == study.STUDY_VAL_FOLD == 9
    assert dict(s.pretrain_seeds) == {10: 0, 8: 2, 7: 3, 6: 4}  # official seed 0, rotation K: 10 - K
    firsts = {m.name for m in s.methods_for(8) if "@" not in m.name}
    assert len(firsts) == 10 and not set(study.ABLATIONS) & firsts
    assert {m.name for m in s.methods if m.official_only} == set(study.ABLATIONS) and s.label_seeds == 3
    # the 120-epoch protocol: configs in checkpoints/NAME, two runs of the primary pair per fold
    epochs = {json.loads((REPO / "checkpoints" / n / "config.json").read_text())["epochs"] for n in firsts}
    assert epochs == {120} and s.evaluation.lr_extend == 2
    assert {m.name for m in s.methods_for(8)} - firsts == {"acl_ecg@seed102", "dlc@seed102"}
    # folds 7 and 6 chose Barlow Twins as their best baseline: it is repeated there too
    assert {m.name for m in s.methods_for(7)} - firsts == {"acl_ecg@seed103", "dlc@seed103", "barlow@seed103"}
    assert load_study(e20.STUDY).epochs == 20  # the archived study keeps its own protocol
    folders = {f"{p}-test{k}-{st.group}" for st in s.sweeps for k in st.folds for p in st.protocols}
    assert len(folders) == 2 * 4 + 4 + 2 * 3  # probes everywhere; official both protocols; rotations multilabel
    full = load_study(REPO / "studies" / "full-ptbxl.toml")
    assert (full.test_folds, full.val_fold, full.sweeps) == (s.test_folds, s.val_fold, s.sweeps)


@pytest.mark.slow
def test_local_process_pool_writes_the_inline_run_cells(tiny_run, tmp_path):
    """Two spawned workers (one torch thread each) compute the same cells as the in-process run; the data travel
    pickled to the workers."""
    import numpy as np

    from aclecg.studyplan import load_study
    from aclecg.studyplan.executors import LocalExecutor, run_study
    from aclecg.studyplan.tasks import StudyPlan

    data = tiny_run["data"]
    _commit_encoders(tmp_path, data)
    pool = LocalExecutor(workers=2, threads=1)
    plan = StudyPlan(load_study(_tiny_study(tmp_path)), {"toy": data})
    _record_rotation_configs(plan)
    summary = run_study(plan, pool)
    assert summary.failed == {} and summary.computed == 34
    for mine in sorted((tmp_path / "runs" / "sweeps").glob("*/cells/*.npz")):
        theirs = tiny_run["root"] / mine.relative_to(tmp_path)
        with np.load(mine) as a, np.load(theirs) as b:
            assert set(a.files) == set(b.files)
            for key in ("y_true", "test_index", "train_index", "classes"):
                assert np.array_equal(a[key], b[key])
            assert np.allclose(a["y_score"], b["y_score"], atol=1e-5)  # in-process ran 2 threads, the pool 1


def test_a_rotation_encoder_recorded_for_another_configuration_is_not_reused(tmp_path):
    """A rotation's committed encoder stands for that rotation only: a store whose config.sha256 is the official
    config's (the old rule, which let another rotation's encoder through) or another fold's is retrained."""
    from aclecg.studyplan import load_study
    from aclecg.studyplan.encoders import committed_store, effective_sha256, store_digest
    from aclecg.studyplan.tasks import StudyPlan
    from tests.test_evaluate import FakePrepared

    data = FakePrepared(n_patients=8, t=64)
    _commit_encoders(tmp_path, data)
    plan = StudyPlan(load_study(_tiny_study(tmp_path)), datasets={"toy": data})
    job = next(j for j in plan.pretrain.values() if not j.official)
    assert committed_store(job) is None  # recorded as the official config's hash: not this rotation's
    (job.store_dir / "config.sha256").write_text(effective_sha256({**job.config, "exclude_folds": [7]}) + "\n")
    assert committed_store(job) is None  # another rotation's configuration
    (job.store_dir / "config.sha256").write_text(store_digest(job) + "\n")
    assert committed_store(job) == job.store_dir


def test_an_in_process_task_leaves_the_callers_torch_threads_as_they_were(tmp_path):
    """A study run in this process (workers=1) sets each task's thread count and restores the caller's: a later
    computation in the same process (a test, a notebook) must not silently run on one thread."""
    import torch

    from aclecg.studyplan.work import Envelope, run_task

    before = torch.get_num_threads()
    with pytest.raises(Exception):  # any failure of the job: the threads are restored all the same
        run_task(Envelope("t", object(), threads=1))
    assert torch.get_num_threads() == before


def test_the_local_executor_sizes_itself_by_the_cores_this_process_may_use(monkeypatch):
    """os.cpu_count() counts the machine's cores; a process pinned to fewer (taskset, a cgroup, a Slurm step) must
    not start more workers or threads than it may run."""
    import aclecg.data.prepare as prepare
    from aclecg.studyplan import executors

    monkeypatch.setattr(prepare, "usable_cpus", lambda: 4)
    monkeypatch.setattr(executors.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(executors, "_gpu_count", lambda: 0)
    local = executors.LocalExecutor()
    try:
        assert (local.workers, local.threads) == (2, 2)
    finally:
        local.close()
