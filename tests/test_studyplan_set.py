"""``aclecg study plan|run|report FILE --set KEY=VALUE``: study-file keys overridden on the command line.

Overrides are dotted keys (``sweep.N`` selects a stage) with TOML values, applied before the file is validated, so
a bad one is one line naming ``--set KEY``; an overridden study runs in its own ``<runs>/set-<hash>`` folder unless
``study.runs`` is set, and its tasks are keyed by their effective configuration, so they never collide with the
file's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aclecg.errors import ConfigError
from tests.test_studyplan import _commit_encoders, _record_rotation_configs, _tiny_study


def _load(path: Path, *sets: str):
    from aclecg.studyplan import load_study

    return load_study(path, list(sets))


def test_set_overrides_dotted_keys_and_sweep_stages_before_validation(tmp_path):
    path = _tiny_study(tmp_path)
    s = _load(
        path,
        "evaluation.max_steps=10",
        "evaluation.lr_grid=[0.001]",
        "evaluation.seeds=1",
        "pretrain.epochs=1",
        'pretrain.methods=["acl_ecg"]',
        "pretrain.overrides.max_steps=3",  # a table the file does not have
        "pretrain.seeds.8=5",
        "data.downstream=/x/ptbxl",  # not TOML: a plain string
        'data.pretrain=["/x/ptbxl", "/y/challenge"]',
        "sweep.0.fractions=[0.1]",
        'sweep.1.encoders=["acl_ecg"]',
        "study.runs=" + str(tmp_path / "other"),
    )
    assert (s.evaluation.max_steps, s.evaluation.lr_grid, s.label_seeds, s.epochs) == (10, (0.001,), 1, 1)
    assert [m.name for m in s.methods] == ["acl_ecg"] and dict(s.methods[0].overrides) == {"max_steps": 3}
    assert dict(s.pretrain_seeds) == {10: 0, 8: 5}
    assert (s.downstream, s.pretrain_data) == ("/x/ptbxl", ("/x/ptbxl", "/y/challenge"))
    assert s.sweeps[0].fractions == (0.1,) and s.sweeps[1].encoders == ("acl_ecg",)
    assert s.runs == tmp_path / "other" and s.overrides[0] == "evaluation.max_steps=10"
    # the whole array replaced by inline tables: how stages are dropped
    one = _load(path, 'sweep=[{group="probe", arms=["linear_probe"], fractions=[0.1], protocols=["multilabel"]}]')
    assert [st.group for st in one.sweeps] == ["probe"] and one.sweeps[0].folds == (10, 8)
    assert _load(path).evaluation.max_steps == 4 and len(_load(path).sweeps) == 2  # the file itself is not changed


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["evaluation.max_steps=0"], r"tiny.toml --set evaluation.max_steps: evaluation.max_steps must be an integer"),
        (["evaluation.max_stepz=3"], r"tiny.toml --set evaluation.max_stepz: evaluation.max_stepz is not a known key"),
        (["sweep.1.fractions=[1.5]"], r"tiny.toml --set sweep.1.fractions: sweep\[1\].fractions must be a list"),
        (["sweep.2.fractions=[0.1]"], r"tiny.toml --set sweep.2.fractions: sweep has 2 element\(s\); select one by"),
        (["sweep.x=1"], r"tiny.toml --set sweep.x: sweep has 2 element"),
        (["sweep.0.fractions=[1.0]"], r"\(with --set sweep.0.fractions\): sweep\[1\].encoders names best_baseline"),
        (["sweep.0=3"], r"tiny.toml --set sweep.0: sweep\[0\] must be a table"),
        (["pretrain.overrides.max_steps=0"], r"--set pretrain.overrides.max_steps: pretrain.overrides.max_steps must"),
        (["pretrain.overrides.epoch=2"], r"--set pretrain.overrides.epoch: pretrain.overrides.epoch is not a known"),
        (["pretrain.methods=[acl_ecg]"], r"--set pretrain.methods: '\[acl_ecg\]' is not a TOML value"),
        (["data.label_set=3"], r"tiny.toml --set data.label_set: data.label_set must be a non-empty string, got 3"),
        (["study.name.x=1"], r"tiny.toml --set study.name.x: study.name is 'tiny', not a table"),
        (["stduy.runs=x"], r"tiny.toml --set stduy.runs: stduy is not a known table"),
        (["folds.test=[10]"], r"tiny.toml \(with --set folds.test\): pretrain.seeds.8 must name a test fold"),
        (["evaluation.max_steps"], r"--set expects KEY=VALUE"),
        (["a..b=1"], r"--set a..b: KEY must be dotted names or indices"),
    ],
)
def test_a_bad_override_is_one_line_naming_it(tmp_path, sets, message):
    path = _tiny_study(tmp_path)
    _load(path)  # the file alone is valid
    with pytest.raises(ConfigError, match=message) as err:
        _load(path, *sets)
    assert "\n" not in str(err.value)


def test_the_cli_reports_a_bad_override_in_one_line_with_exit_2(tmp_path, capsys):
    from aclecg.cli import main

    path = str(_tiny_study(tmp_path))
    for action in ("plan", "run", "report"):
        assert main(["study", action, path, "--set", "evaluation.seeds=0"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"error: {path} --set evaluation.seeds: evaluation.seeds must be an integer >= 1, got 0"
    assert main(["study", "report", "--set", "evaluation.seeds=2"]) == 2
    assert "--set overrides keys of a study file: give the file" in capsys.readouterr().err


def test_an_overridden_study_gets_its_own_runs_folder_keyed_by_its_effective_content(tmp_path):
    path = _tiny_study(tmp_path)
    runs = tmp_path / "runs"
    assert _load(path).runs == runs
    assert _load(path, "study.name=renamed", "evaluation.seeds=2").runs == runs  # nothing outside [study] changes
    a = _load(path, "evaluation.max_steps=3", "evaluation.seeds=1").runs
    b = _load(path, "evaluation.seeds=1", "evaluation.max_steps=2", "evaluation.max_steps=3").runs
    assert a == b and a.parent == runs and a.name.startswith("set-")  # the same effective study, one folder
    assert _load(path, "evaluation.max_steps=2").runs not in (runs, a)
    assert _load(path, "evaluation.max_steps=3", f"study.runs={tmp_path / 'mine'}").runs == tmp_path / "mine"


def _pretrained(path: Path, data, *sets: str):
    """The plan with its pretraining done (the committed tiny encoders copied): the probe cells are resolved."""
    from aclecg.studyplan.encoders import run_pretrain
    from aclecg.studyplan.tasks import StudyPlan

    plan = StudyPlan(_load(path, *sets), datasets={"toy": data})
    _record_rotation_configs(plan)
    for job in plan.pretrain.values():
        run_pretrain(job)
    return plan, {t.id: t for t in plan.tasks()}


def test_overridden_tasks_never_collide_with_the_files_own(tmp_path, monkeypatch):
    """Every task is keyed by its effective configuration: in one shared runs folder an override that changes
    nothing a task reads leaves its id (the finished task is reused), one that does gives new ids; by default the
    overridden study writes nothing where the file's does."""
    from aclecg.studyplan.tasks import StudyPlan
    from tests.test_evaluate import FakePrepared

    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    data = FakePrepared(n_patients=40, t=64)
    _commit_encoders(tmp_path, data)
    path = _tiny_study(tmp_path)
    _, mine = _pretrained(path, data)
    shared = f"study.runs={tmp_path / 'runs'}"
    _, trained = _pretrained(path, data, shared, "evaluation.max_steps=3")  # trained arms only
    _, probed = _pretrained(path, data, shared, "evaluation.probe_max_iter=10")  # probes only
    probes = {i for i, t in mine.items() if t.kind == "probe"}
    assert len(probes) == 24 and all(mine[i].resolved for i in probes)
    assert probes <= set(trained) and all(trained[i].key == mine[i].key for i in probes)
    assert not probes & set(probed) and len([t for t in probed.values() if t.kind == "probe"]) == 24
    pre = {i for i, t in mine.items() if t.kind in ("pretrain", "embed")}
    assert pre <= set(trained) and pre <= set(probed)  # the same encoders: the same pretraining tasks
    retrained = StudyPlan(_load(path, shared, "pretrain.overrides.lr=0.002"), datasets={"toy": data}).tasks()
    assert not {i for i, t in mine.items() if t.kind == "pretrain"} & {t.id for t in retrained}
    # the default: its own runs folder, nothing shared with the file's outputs
    plan, _ = _pretrained(path, data, "evaluation.max_steps=3")
    assert plan.study.runs.parent == tmp_path / "runs"
    assert {j.eval_dir.parent.parent for j in plan.pretrain.values()} == {plan.study.runs}
    assert plan.study.sweeps_dir == plan.study.runs / "sweeps"


@pytest.mark.slow  # two runs of the tiny study (about 30 s)
def test_study_run_with_set_end_to_end(tmp_path, monkeypatch, capsys):
    """The file's study run, then the same file with --set through the command line: the overridden cells land in
    runs/set-<hash>, the file's outputs are untouched and still all finished, plan and report read the overridden
    study with the same --set."""
    from aclecg.cli import main
    from aclecg.studyplan import tasks as tasks_module
    from aclecg.studyplan import work
    from tests.test_evaluate import FakePrepared

    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    data = FakePrepared(n_patients=80, t=64)
    real = work.open_data
    for module in (tasks_module, work):  # the command line names the data "toy": the in-memory corpus
        monkeypatch.setattr(module, "open_data", lambda ref: data if ref == "toy" else real(ref))
    _commit_encoders(tmp_path, data)
    path = str(_tiny_study(tmp_path))
    from aclecg.studyplan.tasks import StudyPlan

    _record_rotation_configs(StudyPlan(_load(Path(path)), {"toy": data}))
    assert main(["study", "run", path, "--workers", "1", "--no-progress"]) == 0
    assert "34 tasks run" in capsys.readouterr().out
    files = {p: p.read_bytes() for p in (tmp_path / "runs" / "sweeps").rglob("*") if p.is_file()}
    sets = ["--set", "evaluation.max_steps=3", "--set", "sweep.0.fractions=[0.1]", "--set", "evaluation.seeds=1"]
    assert main(["study", "run", path, "--workers", "1", "--no-progress", *sets]) == 0
    out = capsys.readouterr().out
    assert "15 tasks run, 0 already finished, 0 failed, 0 waiting" in out  # 4 pretrain, 4 embed, 6 probes, 1 ft
    runs = _load(Path(path), *sets[1::2]).runs
    assert runs.name.startswith("set-") and f"sweeps in {runs / 'sweeps'}" in out
    cells = sorted(p.name for p in (runs / "sweeps").glob("*/cells/*.json"))
    assert len(cells) == 2 * 3 + 1 and all("__f0.1__" in c for c in cells if "fine_tune" not in c)
    assert {p: p.read_bytes() for p in (tmp_path / "runs" / "sweeps").rglob("*") if p.is_file()} == files
    assert main(["study", "plan", path, "--quiet"]) == 0
    assert "about 0 s" in capsys.readouterr().out  # the file's study: still all finished
    assert main(["study", "plan", path, "--quiet", *sets]) == 0
    assert "about 0 s" in capsys.readouterr().out
    report = tmp_path / "report.md"
    assert main(["study", "report", path, "--out", str(report), "--preamble", "none", *sets]) == 0
    assert str(runs / "sweeps") in report.read_text()
    meta = json.loads((runs / "sweeps" / "multilabel-test10-finetune" / "sweep.json").read_text())
    assert meta["fractions"] == [1.0] and meta["seeds"] == [0]
