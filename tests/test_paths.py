"""Paths are resolved at call time from the environment or the working directory, never the package folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aclecg import paths

REPO = Path(__file__).resolve().parents[1]
ENV = ("ACLECG_HOME", "ACLECG_RUNS", "ACLECG_CACHE", "ACLECG_CHECKPOINTS", "ACLECG_PUBLISHED")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_outside_a_project_caches_go_to_the_user_cache_and_runs_to_the_working_directory(clean_env, tmp_path):
    assert paths.cache_root() == tmp_path / "xdg" / "aclecg"
    assert paths.runs_root() == clean_env / "runs"
    assert paths.checkpoints_root() == clean_env / "checkpoints"
    assert not str(paths.cache_root()).startswith(str(Path(paths.__file__).parent))


def test_in_a_project_folder_the_cache_is_dot_cache(clean_env):
    (clean_env / "checkpoints").mkdir()
    assert paths.cache_root() == clean_env / ".cache"


def test_environment_overrides_are_read_at_call_time(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("ACLECG_HOME", str(tmp_path / "home"))
    assert paths.runs_root() == tmp_path / "home" / "runs"
    assert paths.published_root() == tmp_path / "home" / "docs" / "results"
    monkeypatch.setenv("ACLECG_RUNS", str(tmp_path / "r"))
    monkeypatch.setenv("ACLECG_CACHE", str(tmp_path / "c"))
    assert (paths.runs_root(), paths.cache_root()) == (tmp_path / "r", tmp_path / "c")


def test_no_sys_path_edits_in_the_package_the_app_its_pages_or_the_benchmarks():
    sources = [REPO / "app.py", *sorted((REPO / "pages").glob("*.py")), *sorted((REPO / "aclecg").rglob("*.py"))]
    sources += sorted((REPO / "benchmarks").glob("*.py"))
    offenders = [str(p.relative_to(REPO)) for p in sources if re.search(r"sys\.path\.(insert|append)", p.read_text())]
    assert offenders == []
