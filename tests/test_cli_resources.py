"""Command-line resources: a read-only or full output folder is one line and exit 2 on every command that writes,
``--workers`` is capped at the cores, and the sweep's seeds and fractions are bounded by the constraint table.

The read-only folder and the full disk are real file systems: a small tmpfs mounted read-only or filled to the
brim (root, as in the project's containers; a non-root user gets a chmod 0o555 folder, which root would ignore).
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from aclecg import constraints as c
from aclecg.cli import main, storage_error_line
from aclecg.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
TINY = {"stem_width": 4, "widths": [8], "blocks": [1], "feature_dim": 8}


def _mount_tmpfs(target: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True
    )
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


def _unmount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder nobody may write to: a read-only tmpfs as root, a chmod 0o555 folder otherwise."""
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() != 0:
        target.chmod(0o555)
        yield target
        target.chmod(0o755)
        return
    _mount_tmpfs(target, "ro,size=64k")
    try:
        yield target
    finally:
        _unmount(target)


@pytest.fixture
def full_dir(tmp_path):
    """A folder on a 64 KiB tmpfs already filled to the last byte."""
    target = tmp_path / "full"
    target.mkdir()
    _mount_tmpfs(target, "size=64k")
    try:
        with open(target / "filler", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        yield target
    finally:
        _unmount(target)


@pytest.fixture
def workspace(tmp_path, bundled_prepared, tiny_checkpoint, monkeypatch):
    """What the commands read: prepared data, a tiny checkpoint, small embeddings; caches in tmp_path."""
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "cache"))
    emb = tmp_path / "emb.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32))
    return {"data": str(bundled_prepared), "ckpt": str(tiny_checkpoint), "emb": str(emb), "tmp": str(tmp_path)}


COMMANDS = {
    "prepare": ["prepare", "--format", "ptbxl", "--input", str(REPO / "aclecg/bundled/ptb-xl"), "--quiet"]
    + ["--output", "{out}/prepared"],
    "pretrain": ["pretrain", "--data", "{data}", "--max-steps", "1", "--device", "cpu", "--no-progress"]
    + ["--run-dir", "{out}/run"],
    "sweep": ["sweep", "--checkpoint", "{ckpt}", "--data", "{data}", "--label-set", "superdiagnostic"]
    + ["--fractions", "1", "--seeds", "1", "--arms", "linear_probe", "--device", "cpu", "--no-progress"]
    + ["--out", "{out}/sweep"],
    "embed": ["embed", "--checkpoint", "{ckpt}", "--data", "{data}", "--device", "cpu", "--out", "{out}/emb.npy"],
    "runs launch": ["runs", "launch", "x", "--root", "{out}/runs", "--", "--data", "{data}"],
    "umap": ["umap", "--embeddings", "{emb}", "--cache-dir", "{tmp}/umap", "--out", "{out}/map.csv"],
    "regions": ["regions", "--checkpoint", "{ckpt}", "--data", "{data}", "--records", "8", "--out", "{out}/r.html"],
}


def _run(command: str, out: Path, workspace: dict, capsys) -> tuple[int, list[str]]:
    argv = [a.format(out=out, **workspace) for a in COMMANDS[command]]
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_read_only_output_folder_is_one_line_and_exit_2(command, readonly_dir, workspace, capsys):
    code, err = _run(command, readonly_dir, workspace, capsys)
    assert code == 2, err
    if os.geteuid() == 0:  # a read-only mount
        assert err and err[-1].startswith("error: cannot write ") and str(readonly_dir) in err[-1], err
        assert "read-only" in err[-1].lower(), err
    else:  # a folder without write permission
        assert err and err[-1].startswith(f"error: cannot access {readonly_dir}"), err
        assert "permission denied" in err[-1]
    assert "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("command", ["prepare", "pretrain", "embed", "umap", "sweep"])
def test_a_full_disk_is_one_line_and_exit_2(command, full_dir, workspace, capsys):
    code, err = _run(command, full_dir, workspace, capsys)
    assert code == 2, err
    assert err and err[-1].startswith("error: cannot write ") and str(full_dir) in err[-1], err
    assert "No space left on device" in err[-1] or "no space left" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_storage_errors_are_found_below_a_wrapping_exception():
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")  # no file name: the output option names it
        except OSError as inner:
            raise RuntimeError("writer failed") from inner
    except RuntimeError as exc:
        args = type("Args", (), {"out": "runs/x"})()
        assert storage_error_line(exc, args) == (
            "cannot write runs/x: disk quota exceeded; free some space or choose another folder (EDQUOT)"
        )
    denied = storage_error_line(PermissionError(errno.EACCES, "Permission denied", "/data/.x.tmp"))
    assert (
        denied
        == "cannot access /data: permission denied; choose a folder you may write to, or fix its permissions (EACCES)"
    )
    assert storage_error_line(OSError(errno.ENOENT, "No such file", "x")) is None  # not a storage refusal
    assert storage_error_line(ValueError("x")) is None


def test_other_errors_still_raise(monkeypatch):
    import aclecg.commands.info as info

    def boom(args):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "x")

    monkeypatch.setattr(info, "run", boom)
    with pytest.raises(FileNotFoundError):
        main(["info", "x"])


# --------------------------------------------------------------------------------------------------- --workers
def test_workers_beyond_the_cores_are_capped_with_a_note(monkeypatch, capsys, tmp_path):
    seen = {}

    def fake_prepare_dataset(*args, **kwargs):
        seen["workers"] = kwargs["workers"]
        raise ConfigError("stop here")

    monkeypatch.setattr("aclecg.data.prepare.usable_cpus", lambda: 2)
    monkeypatch.setattr("aclecg.data.prepare.prepare_dataset", fake_prepare_dataset)
    argv = ["prepare", "--format", "ptbxl", "--input", str(tmp_path), "--output", str(tmp_path / "o")]
    assert main([*argv, "--workers", "500"]) == 2
    assert seen["workers"] == 2
    assert "note: --workers 500 is more than the 2 CPU cores available; using 2" in capsys.readouterr().err
    assert main([*argv, "--workers", "2"]) == 2 and seen["workers"] == 2
    assert "note:" not in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- --seeds/--fractions
SWEEP_CASES = [(name, bad) for name, constraint in c.SWEEP_PARAMS.items() for bad in constraint.invalid()]


@pytest.mark.parametrize(("name", "bad"), SWEEP_CASES, ids=[f"{n}={b!r}" for n, b in SWEEP_CASES])
def test_the_sweep_form_refuses_every_invalid_value(name, bad):
    from aclecg.commands.sweep import check_form

    values = {"seeds": 3, "fractions": [0.1, 1.0], name: bad}
    with pytest.raises(ConfigError, match=rf"\b{name} must be "):
        check_form(values["fractions"], values["seeds"])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--seeds", "100000000", "seeds must be an integer in [1, 100], got 100000000"),
        ("--seeds", "0", "seeds must be an integer in [1, 100], got 0"),
        ("--fractions", "1e-300", "fractions must be a list of at least 1 items, each a number in [0.0001, 1]"),
        ("--fractions", "0.1,2", "fractions must be a list"),
        ("--fractions", "a,b", "--fractions must be comma-separated numbers"),
    ],
)
def test_sweep_refuses_huge_seed_counts_and_tiny_fractions_before_writing(option, value, message, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--data", str(tmp_path), "--label-set", "x", "--arms", "random_init", "--out", str(out)]
    assert main([*argv, option, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_the_bounds_are_what_the_sweep_accepts():
    from aclecg.commands.sweep import check_form

    check_form("0.0001,0.5,1", 1)
    check_form([1.0], 100)


# ------------------------------------------------------------------------------- missing modules: package or bug
def _failing_command(monkeypatch, missing: str) -> None:
    """Make `aclecg info` raise the ModuleNotFoundError an `import missing` inside the command would."""
    from aclecg.commands import info

    def run(args):
        raise ModuleNotFoundError(f"No module named {missing!r}", name=missing)

    monkeypatch.setattr(info, "run", run)


def test_a_missing_optional_package_is_one_line_naming_it(monkeypatch, capsys, tmp_path: Path):
    _failing_command(monkeypatch, "matplotlib.pyplot")
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: this command needs the Python package 'matplotlib', which is not installed "
        "(pip install matplotlib, or pip install 'aclecg[report]')"
    )


def test_a_missing_module_of_aclecg_itself_is_a_bug_and_keeps_its_traceback(monkeypatch, tmp_path: Path):
    _failing_command(monkeypatch, "aclecg.no_such_module")
    with pytest.raises(ModuleNotFoundError, match="aclecg.no_such_module"):
        main(["info", str(tmp_path)])


def test_a_command_module_that_fails_to_import_is_not_silently_dropped(monkeypatch):
    import importlib

    from aclecg import cli

    real = importlib.import_module

    def fake(name, *args):
        if name == "aclecg.commands.info":
            raise ModuleNotFoundError("No module named 'aclecg.commands.info'", name=name)
        return real(name, *args)

    monkeypatch.setattr(cli.importlib, "import_module", fake)
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser()
