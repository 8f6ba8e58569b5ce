"""End-to-end, the app as a shared service (docs/deploy.md): two browser sessions in two headless Chromium profiles
against one server started as ``make app`` starts it. A run belongs to the session that launched it: the other
session sees it, but cannot cancel it.

Needs Debian's ``chromium`` and ``chromium-driver`` (skipped otherwise). Run with
``pytest -m browser tests/test_browser_deploy.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_browser import ARTIFACTS, CHROMIUM, DRIVER, _needs_chromium, _rerun_settled, _serve, _wait_until_idle

pytestmark = pytest.mark.browser


@contextlib.contextmanager
def _chromium() -> Iterator:
    """A headless Chromium with a profile of its own (its own cookies and Streamlit session)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="aclecg-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1500,1800")
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _button(driver, text: str):
    from selenium.webdriver.common.by import By

    found = [b for b in driver.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == text]
    assert found, f"no button {text!r}"
    return found[0]


def _selected_run(driver) -> str:
    from selenium.webdriver.common.by import By

    for box in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSelectbox"]'):
        if box.text.startswith("run"):
            return box.find_element(By.CSS_SELECTOR, "input").get_attribute("value")
    raise AssertionError("no run selector")


def _texts(driver, testid: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')]


@pytest.fixture
def shared_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """The app on an empty project with one job slot, which this test holds: a launched run stays queued (no
    trainer starts on the shared CPUs). Every job wrapper is ended afterwards."""
    _needs_chromium()
    project = Path(tempfile.mkdtemp(prefix="aclecg-deploy-"))
    runs = project / "runs"
    (runs / ".slots").mkdir(parents=True)
    monkeypatch.setenv("ACLECG_MAX_JOBS", "1")
    for name in ("ACLECG_READONLY", "ACLECG_TRUST_PROXY_HEADER"):
        monkeypatch.delenv(name, raising=False)
    slot = os.open(runs / ".slots" / "slot-0.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(slot, fcntl.LOCK_EX)
    try:
        with _serve(project) as url:
            yield url, runs
    finally:
        for job in runs.glob("*/job.json"):
            with contextlib.suppress(ProcessLookupError, KeyError, ValueError):
                os.killpg(int(json.loads(job.read_text())["pid"]), signal.SIGKILL)
        os.close(slot)
        shutil.rmtree(project, ignore_errors=True)


def test_a_second_browser_session_cannot_cancel_the_first_ones_run(shared_server):
    from aclecg import jobs

    url, runs = shared_server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with _chromium() as alice, _chromium() as bob:
        alice.get(f"{url}/pretraining")
        _wait_until_idle(alice)
        assert any("belong to this browser session" in t for t in _texts(alice, "stCaptionContainer"))
        _button(alice, "Start run").click()
        _rerun_settled(alice)
        assert any("Started" in t and "queued" in t for t in _texts(alice, "stAlertContentSuccess"))
        (run,) = [p.parent for p in runs.glob("*/job.json")]
        assert jobs.run_info(run).state == "queued"

        bob.get(f"{url}/pretraining")
        _wait_until_idle(bob)
        time.sleep(1.0)
        bob.save_screenshot(str(ARTIFACTS / "deploy_second_session.png"))
        assert _selected_run(bob) == f"{run.name} · queued · acl_ecg"
        assert any("another user or browser session" in t for t in _texts(bob, "stCaptionContainer"))
        assert not _button(bob, "Cancel").is_enabled()  # Bob sees Alice's run, without a way to stop it
        assert not (run / "cancel_requested").exists()

        cancel = _button(alice, "Cancel")  # (a reload would be a new session: the run would no longer be hers)
        assert cancel.is_enabled()
        alice.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", cancel)
        deadline = time.time() + 30
        while jobs.run_info(run).state != "cancelled" and time.time() < deadline:
            time.sleep(0.3)
        assert jobs.run_info(run).state == "cancelled"
