"""The app as a network service (docs/deploy.md), through ``streamlit.testing.v1.AppTest``: read-only without a login
on a network, run owners per browser session, and no server path in what the run pages show."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
PRETRAINING, SWEEPS = "pages/4_Pretraining.py", "pages/6_Label_fraction_sweeps.py"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No runs, no checkpoints, caches in a temp folder; limits and modes at their defaults."""
    monkeypatch.setenv("ACLECG_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("ACLECG_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("ACLECG_UMAP_CACHE", str(tmp_path / "cache" / "umap"))
    monkeypatch.setenv("ACLECG_PUBLISHED", str(tmp_path / "published"))
    for name in ("ACLECG_READONLY", "ACLECG_TRUST_PROXY_HEADER", "ACLECG_MAX_JOBS", "ACLECG_RUNS_QUOTA_GB"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@contextlib.contextmanager
def served_on(address: str) -> Iterator[None]:
    """Streamlit's ``server.address`` as a server started with that address has it."""
    from streamlit import config

    before = config.get_option("server.address")
    config.set_option("server.address", address)
    try:
        yield
    finally:
        config.set_option("server.address", before)


def _page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    """Everything the page sent to the browser, as text (each element's message)."""
    out: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        children = getattr(node, "children", None)
        for child in children.values() if isinstance(children, dict) else children or []:
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def test_a_network_facing_app_without_login_is_read_only(project: Path):
    """Served on 0.0.0.0 with no login: no launch, cancel or resume anywhere, and the sidebar says why."""
    with served_on("0.0.0.0"):
        for page, keys in ((PRETRAINING, ("pt_start", "pt_cancel")), (SWEEPS, ("sw_start", "sw_cancel"))):
            at = _page(page)
            buttons = {b.key for b in at.button}
            assert not set(keys) & buttons, buttons
            assert any("Read-only" in i.value and "without login" in i.value for i in at.info)
            assert any("Read-only" in c.value for c in at.sidebar.caption)
    at = _page(PRETRAINING)  # loopback (the project's config): this session may launch
    assert "pt_start" in {b.key for b in at.button}
    assert any("belong to this browser session" in c.value for c in at.sidebar.caption)


def test_read_only_mode_hides_the_controls_on_loopback_too(project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ACLECG_READONLY", "1")
    at = _page(PRETRAINING)
    assert "pt_start" not in {b.key for b in at.button}
    assert any("read-only" in c.value for c in at.sidebar.caption)


def test_a_trusted_proxy_header_is_the_user_only_when_asked_for(project: Path, monkeypatch: pytest.MonkeyPatch):
    """With --trust-proxy-header and no header (not through the proxy): read-only, even on a network."""
    monkeypatch.setenv("ACLECG_TRUST_PROXY_HEADER", "X-Forwarded-User")
    with served_on("0.0.0.0"):
        at = _page(PRETRAINING)
    assert "pt_start" not in {b.key for b in at.button}
    assert any("log in" in i.value for i in at.info)


@contextlib.contextmanager
def slots_taken(runs: Path) -> Iterator[None]:
    """Hold the runs root's only job slot, so a launched job waits (queued) and no trainer starts."""
    slots = runs / ".slots"
    slots.mkdir(parents=True, exist_ok=True)
    fd = os.open(slots / "slot-0.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)
        for job in runs.glob("*/job.json"):  # end every wrapper this test started
            with contextlib.suppress(ProcessLookupError, KeyError, ValueError):
                os.killpg(int(json.loads(job.read_text())["pid"]), signal.SIGKILL)


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_a_second_session_cannot_cancel_the_first_ones_run(project: Path, monkeypatch: pytest.MonkeyPatch):
    """Session A launches; session B sees the run but its Cancel is off, and a forced click is refused by the
    library; A cancels its own queued run."""
    from aclecg import jobs

    monkeypatch.setenv("ACLECG_MAX_JOBS", "1")
    runs = project / "runs"
    with slots_taken(runs):
        a = _page(PRETRAINING)
        a.text_input(key="pt_name").set_value("alices-run").run()
        a.button(key="pt_start").click().run()
        assert not a.error, [e.value for e in a.error]
        assert any("Started alices-run" in s.value and "queued" in s.value for s in a.success)
        owner = json.loads((runs / "alices-run" / "job.json").read_text())["owner"]
        assert owner.startswith("session:")
        b = _page(PRETRAINING)
        assert next(s for s in b.selectbox if s.label == "run").value == "alices-run"  # keyed by its labels
        assert b.button(key="pt_cancel").disabled  # not B's run
        forced = b.button(key="pt_cancel")
        forced.proto.disabled = False  # a crafted request: a browser cannot click it, a script can send the click
        forced.click().run()  # (Streamlit drops it; the library would refuse it too: see tests/test_jobs.py)
        assert not b.exception and not (runs / "alices-run" / "cancel_requested").exists()
        assert jobs.run_info(runs / "alices-run").state == "queued"
        a.run()
        assert not a.button(key="pt_cancel").disabled
        a.button(key="pt_cancel").click().run()
        deadline = time.time() + 20
        while jobs.run_info(runs / "alices-run").state != "cancelled" and time.time() < deadline:
            time.sleep(0.2)
        assert jobs.run_info(runs / "alices-run").state == "cancelled"


def _failed_run(runs: Path, name: str, kind: str) -> Path:
    """A run that failed with its server paths in the error and the log (the process long gone)."""
    run = runs / name
    (run / "checkpoints").mkdir(parents=True)
    where = run / "checkpoints" / "step_00000003.pt"
    job = {"kind": kind, "args": ["--method", "simclr"], "pid": 2**22 + 4321, "start": 1, "started": 1.0}
    (run / "job.json").write_text(json.dumps(job))
    (run / "exit_code").write_text("1\n")
    (run / "stdout.log").write_text(f"saved {where}\nexported {run / 'encoder.pt'}\nerror: cannot write {where}\n")
    if kind == "pretrain":
        (run / "encoder.pt").write_bytes(b"")
        status = {"state": "failed", "method": "simclr", "step": 3, "error": f"cannot write {where}"}
        (run / "status.json").write_text(json.dumps(status))
    return run


def test_the_run_pages_show_no_server_path(project: Path):
    """The exported encoder, a failed run's error and the log are shown relative to the runs folder."""
    runs = project / "runs"
    _failed_run(runs, "pre", "pretrain")
    _failed_run(runs, "sw", "sweep")
    hidden = {str(runs), str(runs.resolve())}
    at = _page(PRETRAINING)
    text = _texts(at)
    assert "pre/encoder.pt" in text and "cannot write pre/checkpoints/step_00000003.pt" in text
    assert not [h for h in hidden if h in text]
    at = _page(SWEEPS)
    text = _texts(at)
    assert "cannot write sw/checkpoints/step_00000003.pt" in text
    assert not [h for h in hidden if h in text]


def test_streamlit_login_names_the_user_and_a_logged_out_visitor_is_read_only(project: Path):
    """With an [auth] section (st.login, OIDC), a logged-in user launches as themself, on a network too."""
    with served_on("0.0.0.0"):
        at = AppTest.from_file(APP, default_timeout=120)
        at.secrets["auth"] = {"redirect_uri": "https://ecg.example.org/oauth2callback", "cookie_secret": "x" * 32}
        at.user = {"is_logged_in": True, "email": "alice@example.org"}
        at.run()
        at.switch_page(PRETRAINING).run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("Signed in as **alice@example.org**" in c.value for c in at.sidebar.caption)
        assert "pt_start" in {b.key for b in at.button} and "auth_logout" in {b.key for b in at.button}
        at.user = {"is_logged_in": False}
        at.run()
        assert "pt_start" not in {b.key for b in at.button} and "auth_login" in {b.key for b in at.button}
        assert any("log in to launch" in c.value for c in at.sidebar.caption)
