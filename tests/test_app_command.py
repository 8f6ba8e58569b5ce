"""``aclecg app``: the launcher ``make app`` runs (warm imports, then Streamlit's own command line)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aclecg import cli
from aclecg.commands import app as app_command


@pytest.fixture
def streamlit_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Streamlit's command line replaced by a recorder (no server starts)."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli as streamlit_cli

    calls: list[list[str]] = []

    def fake_main(args: list[str], prog_name: str, standalone_mode: bool) -> None:
        assert prog_name == "streamlit" and standalone_mode is True
        calls.append(list(args))

    monkeypatch.setattr(streamlit_cli, "main", fake_main)
    monkeypatch.setattr(PagesManager, "uses_pages_directory", None)
    # the test process's heap is not frozen; what a real launch freezes is checked in a subprocess below
    monkeypatch.setattr(app_command, "freeze_heap", lambda: calls.append(["freeze_heap"]) or 0)
    monkeypatch.setattr(app_command, "prepare_bundled", lambda script: calls.append(["prepare_bundled"]))
    monkeypatch.setenv("ACLECG_HOME", os.environ.get("ACLECG_HOME", str(Path.cwd())))  # restored afterwards
    for name in ("ACLECG_READONLY", "ACLECG_TRUST_PROXY_HEADER"):  # the launcher sets them: restored afterwards
        monkeypatch.setenv(name, "")
    return calls


def test_app_hands_its_arguments_to_streamlit_run(streamlit_calls, tmp_path: Path, capsys):
    from streamlit.runtime.pages_manager import PagesManager

    script = tmp_path / "app.py"
    script.write_text("import streamlit as st\n")
    code = cli.main(["app", str(script), "--port", "8600", "--", "--server.headless", "true"])
    assert code == 0
    assert streamlit_calls == [
        ["prepare_bundled"],
        ["freeze_heap"],  # before Streamlit starts, after the imports
        ["run", str(script.resolve()), "--server.port", "8600", "--server.address", "127.0.0.1"]
        + ["--server.headless", "true"],
    ]
    assert PagesManager.uses_pages_directory is False  # the first deep link goes through st.navigation
    assert "imported the pages' libraries in" in capsys.readouterr().out


def test_no_warm_up_is_plain_streamlit_run(streamlit_calls, tmp_path: Path):
    from streamlit.runtime.pages_manager import PagesManager

    script = tmp_path / "app.py"
    script.write_text("")
    assert cli.main(["app", str(script), "--no-warm-up"]) == 0
    assert streamlit_calls == [["run", str(script.resolve()), "--server.port", "8501", "--server.address", "127.0.0.1"]]
    assert PagesManager.uses_pages_directory is None


def test_app_default_script_is_the_projects_app_py(streamlit_calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ACLECG_HOME", str(tmp_path))
    (tmp_path / "app.py").write_text("")
    assert cli.main(["app", "--no-warm-up"]) == 0
    assert streamlit_calls[0][1] == str((tmp_path / "app.py").resolve())


def test_missing_app_script_is_a_one_line_error(streamlit_calls, tmp_path: Path, capsys):
    missing = tmp_path / "nowhere" / "app.py"
    assert cli.main(["app", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "no such app script" in err and "Traceback" not in err
    assert streamlit_calls == []


def test_warm_up_skips_modules_that_are_not_installed():
    import sys

    sys.modules.pop("colorsys", None)
    seconds = app_command.warm_up(("colorsys", "aclecg_no_such_module"))
    assert seconds >= 0 and "colorsys" in sys.modules and "aclecg_no_such_module" not in sys.modules


def test_command_line_help_imports_no_torch():
    """`aclecg --help` and every command's parser are built without PyTorch (help answers at once)."""
    import subprocess
    import sys

    code = "import sys; from aclecg.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_bad_streamlit_flag_is_streamlits_usage_error_not_a_traceback(tmp_path: Path, capsys):
    script = tmp_path / "app.py"
    script.write_text("")
    code = cli.main(["app", str(script), "--no-warm-up", "--", "--server.no_such_flag", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "No such option" in err and "Traceback" not in err


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
def test_freeze_heap_takes_the_imported_libraries_out_of_the_collectors_walk():
    """After the launcher's warm-up, a full collection no longer visits the libraries' objects."""
    import subprocess
    import sys

    code = (
        "import gc; from aclecg.commands import app; app.warm_up(('plotly.graph_objects',)); "
        "before = len(gc.get_objects()); frozen = app.freeze_heap(); after = len(gc.get_objects()); "
        "print(before, frozen, after)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, frozen, after = map(int, out.split())
    assert frozen > 0.9 * before and after < 0.05 * before


def test_umap_learn_is_compiled_before_serving_unless_turned_off(monkeypatch: pytest.MonkeyPatch):
    from aclecg.analysis import umap_learn

    runs: list[bool] = []
    monkeypatch.setattr(umap_learn, "warm_up", lambda background=True: runs.append(background))
    monkeypatch.setenv("ACLECG_UMAP_WARMUP", "0")
    assert app_command.compile_umap_learn() is None and runs == []
    monkeypatch.setenv("ACLECG_UMAP_WARMUP", "1")
    assert app_command.compile_umap_learn() is not None
    assert runs == [False]  # in the foreground: done before the first visitor, not racing the pages


@pytest.mark.slow  # about 0.4-1 s: moved out of make test's 90 s (CI runs the slow suite)
def test_streamlit_config_turns_off_the_full_collection_after_every_script_run():
    """gc.collect(2) after each rerun cost 0.2-0.4 s per click with the app's libraries loaded; Streamlit itself,
    reading the project's .streamlit/config.toml, must see the option off."""
    import subprocess
    import sys

    code = "from streamlit import config; print(config.get_option('runner.postScriptGC'))"
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo).stdout
    assert out.strip() == "False"


def test_prepare_bundled_uses_the_apps_project_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """The launcher prepares the bundled data where app.py will look: the cache of app.py's own folder."""
    import aclecg.data as data
    from aclecg.errors import DataError

    (tmp_path / "checkpoints").mkdir()  # a project folder, so its cache is <folder>/.cache
    seen: list[str] = []
    monkeypatch.delenv("ACLECG_HOME", raising=False)
    monkeypatch.delenv("ACLECG_CACHE", raising=False)
    monkeypatch.setattr(data, "ensure_bundled", lambda progress: seen.append(str(data.prepared_root())) or {})
    app_command.prepare_bundled(tmp_path / "app.py")
    assert seen == [str(tmp_path / ".cache" / "prepared")]

    def broken(progress: bool) -> None:
        raise DataError("ptb-xl/records100/00000/00001_lr.hea: empty header")

    monkeypatch.setattr(data, "ensure_bundled", broken)
    app_command.prepare_bundled(tmp_path / "app.py")  # a warning, not a traceback: the pages say it again
    assert "could not be prepared: ptb-xl/records100/00000/00001_lr.hea: empty header" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ safe to put on a network
def test_a_network_facing_start_without_login_is_read_only(streamlit_calls, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no secrets.toml with an [auth] section here or next to the script
    monkeypatch.setenv("HOME", str(tmp_path))
    script = tmp_path / "app.py"
    script.write_text("")
    assert cli.main(["app", str(script), "--no-warm-up", "--network"]) == 0
    assert streamlit_calls[-1][-2:] == ["--server.address", "0.0.0.0"]
    assert os.environ["ACLECG_READONLY"] == "1"  # the server's pages and job functions refuse every action
    assert "without a login, so read-only" in capsys.readouterr().out
    from aclecg import jobs
    from aclecg.access import AccessError

    with pytest.raises(AccessError, match="read-only"):
        jobs.launch("sweep", [], tmp_path / "runs", "x")


def test_a_login_lets_a_network_facing_app_write(streamlit_calls, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    script = tmp_path / "app.py"
    script.write_text("")
    # a reverse proxy's user header
    argv = ["app", str(script), "--no-warm-up", "--trust-proxy-header", "X-Forwarded-User", "--", "--server.address"]
    assert cli.main([*argv, "0.0.0.0"]) == 0
    assert streamlit_calls[-1].count("--server.address") == 1  # the address given to Streamlit is the one used
    assert os.environ["ACLECG_READONLY"] == "" and os.environ["ACLECG_TRUST_PROXY_HEADER"] == "X-Forwarded-User"
    assert "only the proxy can reach this port" in capsys.readouterr().out
    # Streamlit's own login: an [auth] section in the app's secrets
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[auth]\nredirect_uri = "https://x/oauth2callback"\n')
    monkeypatch.setenv("ACLECG_TRUST_PROXY_HEADER", "")
    assert cli.main(["app", str(script), "--no-warm-up", "--address", "192.0.2.7"]) == 0
    assert os.environ["ACLECG_READONLY"] == "" and "with a login" in capsys.readouterr().out
    assert cli.main(["app", str(script), "--no-warm-up", "--read-only"]) == 0  # read-only, whatever the address
    assert os.environ["ACLECG_READONLY"] == "1"


def test_streamlit_reads_the_projects_safe_settings():
    """Through Streamlit's own config loader: loopback only, and no traceback (with server paths) in the browser.
    The old `showErrorDetails = false` reads as "stacktrace" in Streamlit 1.67: tracebacks were sent."""
    import subprocess
    import sys

    code = (
        "from streamlit import config; from streamlit.elements.exception import _error_detail_visibility as v; "
        "shown = v(True); "
        "print(config.get_option('server.address'), config.get_option('client.showErrorDetails'), "
        "shown.show_trace, shown.show_message, shown.show_type)"
    )
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo).stdout
    assert out.split() == ["127.0.0.1", "none", "False", "False", "False"]


def _listening(pid: int) -> set[tuple[str, int]]:
    """The (address, port) pairs on which process ``pid`` listens for TCP connections (read from /proc)."""
    import ipaddress

    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            raw, port = local.split(":")
            data = bytes.fromhex(raw)
            data = b"".join(data[i : i + 4][::-1] for i in range(0, len(data), 4))  # each 32-bit word is host order
            found.add((str(ipaddress.ip_address(data)), int(port, 16)))
    return found


@pytest.mark.slow  # a real server start, 3-6 s
def test_the_served_app_listens_on_loopback_only(tmp_path: Path):
    """`aclecg app` as `make app` runs it: every listening socket of the server is on 127.0.0.1 (was `*:8501`)."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    repo = Path(__file__).resolve().parents[1]
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aclecg", "app", "--no-warm-up", "--port", str(port), "--", "--server.headless", "true"],
        cwd=repo,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ACLECG_HOME": str(repo), "ACLECG_RUNS": str(tmp_path / "runs")},
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
        sockets = _listening(proc.pid)
        assert sockets == {("127.0.0.1", port)}, sockets
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
