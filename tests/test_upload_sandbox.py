"""Uploads are parsed in a sandboxed child: crashes, memory hogs and hangs become named rejections, the caller
lives on, and staged files go at once on rejection and when the session ends.

The sandbox is tested with functions that crash, hog memory or hang (tests/helpers/upload_hostile.py), so these
tests do not depend on which parser the data layer uses; the real upload path is tested with a bundled record
and a hostile MAT-5 file that crashes scipy.io.loadmat (SIGSEGV).
"""

from __future__ import annotations

import gc
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import test_browser

from aclecg import sandbox, upload, upload_session
from aclecg.data import BUNDLED_RAW_DIR
from aclecg.errors import DataError
from tests.helpers import upload_hostile as hostile

browser = test_browser.browser  # the browser tests' fixtures (headless Chromium, the demo project)
project = test_browser.project

FAST = sandbox.Limits(memory_bytes=256 << 20, timeout_s=4.0, max_result_bytes=1 << 20)


@pytest.fixture(scope="module", autouse=True)
def _fork_server() -> None:
    """Start the sandbox's fork server with the upload parser's imports, as the app does before the first upload."""
    sandbox.warm_up(upload_session.PARSE_PRELOAD)
    sandbox.run(hostile.echo, None)  # returns once the fork server has imported them


def _record_files(stem: str = "JS00001") -> list[tuple[str, bytes]]:
    hea = next((BUNDLED_RAW_DIR / "challenge-2021" / "training").rglob(f"{stem}.hea"))
    return [(hea.name, hea.read_bytes()), (f"{stem}.mat", hea.with_suffix(".mat").read_bytes())]


def _hostile_files() -> list[tuple[str, bytes]]:
    """A real header beside a 200-byte MAT file whose matrix declares the reserved data type 10."""
    return [_record_files()[0], ("JS00001.mat", hostile.hostile_mat())]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Staging folders go to a folder of this test's own, so what is left behind can be counted."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _staged(root: Path) -> list[Path]:
    return sorted(root.glob("aclecg-upload-*"))


# ---------------------------------------------------------------------------------------------- the sandbox


@pytest.mark.parametrize(
    ("fn", "named"),
    [
        (hostile.crash_segv, "signal 11, SIGSEGV"),
        pytest.param(hostile.crash_abort, "signal 6, SIGABRT", marks=pytest.mark.slow),
    ],
)
def test_a_crash_in_the_child_is_a_named_rejection_and_the_caller_lives_on(fn, named):
    start = time.monotonic()
    with pytest.raises(sandbox.SandboxRejected, match=rf"^the parser crashed \({named}\)$") as err:
        sandbox.run(fn, limits=FAST)
    assert err.value.kind == "crashed" and time.monotonic() - start < 5.0
    assert sandbox.run(hostile.echo, {"still": [1, 2]}, limits=FAST) == {"still": [1, 2]}


@pytest.mark.slow  # about 1 s each: the slow suite keeps make test under 90 s
def test_a_memory_hog_is_stopped_at_the_limit_without_the_caller_growing():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    with pytest.raises(sandbox.SandboxRejected, match=r"^the parser needed more than 256 MB of memory$") as err:
        sandbox.run(hostile.allocate, 4096, limits=FAST)
    assert err.value.kind == "memory" and time.monotonic() - start < 5.0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 50, f"the calling process grew by {grown_mb:.0f} MB"
    assert sandbox.run(hostile.allocate, 64, limits=FAST) == 1  # within the limit it works


@pytest.mark.slow  # about 1 s each: the slow suite keeps make test under 90 s
def test_a_hang_is_killed_at_the_time_limit():
    start = time.monotonic()
    with pytest.raises(sandbox.SandboxRejected, match=r"^the parser took longer than 1 s$") as err:
        sandbox.run(hostile.sleep, 60.0, limits=sandbox.Limits(timeout_s=1.0))
    assert err.value.kind == "timeout" and time.monotonic() - start < 5.0


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_errors_of_the_function_come_back_as_one_line():
    with pytest.raises(DataError, match=r"^x.hea: the header is broken$") as err:
        sandbox.run(hostile.fail_with, "data", limits=FAST)
    assert not isinstance(err.value, sandbox.SandboxRejected)
    with pytest.raises(sandbox.SandboxRejected, match=r"^the parser failed \(RuntimeError: boom\)$"):
        sandbox.run(hostile.fail_with, "other", limits=FAST)


@pytest.mark.slow  # about 1 s each: the slow suite keeps make test under 90 s
def test_an_answer_over_the_size_limit_is_refused():
    with pytest.raises(sandbox.SandboxRejected, match=r"returned more than 1 MB") as err:
        sandbox.run(hostile.big_result, 4, limits=FAST)
    assert err.value.kind == "result"


def test_the_answer_format_carries_arrays_and_values_without_pickle():
    value = {
        "x": np.arange(6, dtype=np.int16).reshape(2, 3),
        "y": [np.zeros(0), np.array(True), np.arange(4.0)[::2]],
        "z": (1, "a", None, 2.5),
    }
    back = sandbox.decode(bytearray(sandbox.encode(value)))
    assert back["x"].dtype == np.int16 and back["x"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["y"][1].shape == () and back["y"][2].tolist() == [0.0, 2.0] and back["z"] == (1, "a", None, 2.5)
    with pytest.raises(TypeError, match="cannot leave the sandbox"):
        sandbox.encode(np.array([object()], dtype=object))
    forged = bytearray(sandbox.encode(np.zeros(2)))
    forged = forged.replace(b'"<f8"', b'"|O8"') if b'"<f8"' in forged else forged
    with pytest.raises(ValueError, match="malformed"):
        sandbox.decode(forged)
    with pytest.raises(ValueError, match="malformed"):
        sandbox.decode(bytearray(sandbox.encode(np.zeros(4)))[:-8])  # an array running past the end


# ---------------------------------------------------------------------------------------------- the upload path


def test_a_real_upload_parsed_in_the_sandbox_equals_the_in_process_read(challenge_upload):
    folder = upload.stage_upload([(p.name, p.read_bytes()) for p in sorted(challenge_upload.iterdir())])
    try:
        start = time.monotonic()
        rec = upload_session.parse_upload(folder, "JS00001", fs=100.0, seconds=10.0)
        assert time.monotonic() - start < 5.0
        ref = upload.load_uploaded_record(folder, "JS00001", fs=100.0, seconds=10.0)
    finally:
        upload.discard(folder)
    assert rec.record_id == "JS00001" and rec.folder == folder and rec.raw_fs == 500.0
    np.testing.assert_array_equal(rec.raw_mv, ref.raw_mv)
    np.testing.assert_array_equal(rec.windows, ref.windows)
    assert [p.tolist() for p in rec.rpeaks] == [p.tolist() for p in ref.rpeaks]
    assert rec.labels == ref.labels and rec.sex == ref.sex and rec.warnings == ref.warnings


def test_a_hostile_mat_upload_is_refused_and_the_caller_lives_on(private_tmp):
    """The MAT file crashes scipy.io.loadmat (SIGSEGV): parsed in the server's process, it killed the server."""
    folder = upload.stage_upload(_hostile_files())
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        upload_session.parse_upload(folder, "JS00001")
    assert time.monotonic() - start < 5.0
    message = str(err.value)
    # scipy's reader crashes; a reader that refuses the file names it instead. Either way: one line, no path.
    assert "the upload could not be parsed safely: the parser crashed (signal" in message or "JS00001" in message
    assert str(private_tmp) not in message and "/" not in message.replace("/mV", "")
    upload.discard(folder)
    assert sandbox.run(hostile.echo, "alive", limits=FAST) == "alive"


def test_a_parser_crash_is_named_for_the_user(private_tmp, monkeypatch):
    monkeypatch.setattr(upload_session, "_parse_target", hostile.crash_abort)
    folder = upload.stage_upload(_record_files())
    with pytest.raises(DataError, match=r"^the upload could not be parsed safely: the parser crashed \(signal 6, "):
        upload_session.parse_upload(folder, "JS00001")


def test_parser_messages_never_show_the_server_path(private_tmp, monkeypatch):
    monkeypatch.setattr(upload_session, "_parse_target", hostile.fail_naming_the_folder)
    store = upload_session.UploadSession()
    store.offer("one", _record_files)
    assert store.record("JS00001", 100.0, 10.0) is None
    assert store.error is not None and "'JS00001.mat'" in store.error
    assert str(private_tmp) not in store.error and "aclecg-upload-" not in store.error


# ---------------------------------------------------------------------------------------------- staged files


def test_a_session_stages_parses_once_and_removes_its_files_on_close(private_tmp, monkeypatch):
    calls: list[str] = []
    real = upload_session.parse_upload
    monkeypatch.setattr(upload_session, "parse_upload", lambda *a, **k: calls.append("parse") or real(*a, **k))
    store = upload_session.UploadSession()
    store.offer("one", lambda: _record_files("JS00001") + _record_files("JS00002"))
    assert store.names == ["JS00001", "JS00002"] and len(_staged(private_tmp)) == 1 and store.error is None
    rec = store.record("JS00001", 100.0, 10.0)
    assert rec is not None and store.record("JS00001", 100.0, 10.0) is rec and calls == ["parse"]
    store.close()
    assert _staged(private_tmp) == [] and store.names == []


def test_a_rejected_upload_is_removed_at_once_and_not_parsed_again(private_tmp, monkeypatch):
    monkeypatch.setattr(upload_session, "_parse_target", hostile.crash_segv)
    offered: list[int] = []
    store = upload_session.UploadSession()

    def files() -> list[tuple[str, bytes]]:
        offered.append(1)
        return _record_files()

    store.offer("hostile", files)
    assert store.record("JS00001", 100.0, 10.0) is None
    assert store.error == (
        "Upload could not be read (and was removed): the upload could not be parsed safely: "
        "the parser crashed (signal 11, SIGSEGV)"
    )
    assert _staged(private_tmp) == []
    store.offer("hostile", files)  # the next rerun with the same files in the widget
    assert offered == [1] and store.error is not None and store.record("JS00001", 100.0, 10.0) is None
    store.offer("no header", lambda: [("JS00001.mat", b"\0" * 10)])
    assert store.error is not None and store.error.startswith("Upload rejected: no .hea header")
    assert _staged(private_tmp) == []


def test_a_dropped_session_removes_its_files(private_tmp):
    store = upload_session.UploadSession()
    store.offer("one", _record_files)
    assert len(_staged(private_tmp)) == 1
    del store
    gc.collect()
    assert _staged(private_tmp) == []


def test_a_disk_error_while_staging_leaves_nothing_and_names_no_path(private_tmp, monkeypatch):
    def full(self: Path, data: bytes) -> int:
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    store = upload_session.UploadSession()
    store.offer("one", _record_files)
    assert store.error == "Upload could not be stored on the server (No space left on device)"
    assert _staged(private_tmp) == []


# ---------------------------------------------------------------------------------------------- in the app


@pytest.mark.slow  # about a second; the default suite must stay under 90 s
def test_the_explorer_refuses_a_crashing_upload_and_keeps_running(tmp_path, monkeypatch, private_tmp):
    """AppTest runs the page in this process: before the sandbox, the hostile file killed the test run itself."""
    from test_app import PAGES, _app

    for name in ("RUNS", "CHECKPOINTS", "UMAP_CACHE", "PUBLISHED"):
        monkeypatch.setenv(f"ACLECG_{name}", str(tmp_path / name.lower()))
    removed: list[Path] = []
    real_discard = upload.discard
    monkeypatch.setattr(upload, "discard", lambda folder: removed.append(Path(folder)) or real_discard(folder))
    at = _app()
    at.switch_page(PAGES[0]).run()
    uploader = at.get("file_uploader")
    if not uploader or not hasattr(uploader[0], "set_value"):
        pytest.skip("this Streamlit's AppTest cannot drive st.file_uploader")
    uploader[0].set_value([(n, b, "application/octet-stream") for n, b in _hostile_files()]).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Upload could not be read (and was removed): "), errors
    assert str(private_tmp) not in errors[0] and _staged(private_tmp) == []
    assert [p.parent for p in removed] == [private_tmp] and not removed[0].exists()  # staged here, then removed
    assert at.get("image"), "the page stopped drawing its ECG print"
    at.run()  # a rerun with the same files in the widget shows the verdict again without parsing them again
    assert [e.value for e in at.error] == errors and _staged(private_tmp) == []


# ---------------------------------------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def upload_server(project):
    """The app, as the browser tests start it, staging uploads in a folder of its own (``TMPDIR``)."""
    import os

    from test_browser import _serve

    staging = Path(tempfile.mkdtemp(prefix="aclecg-staging-"))
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(staging)
    try:
        with _serve(project) as url:
            yield url, staging
    finally:
        if old is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old
        import shutil

        shutil.rmtree(staging, ignore_errors=True)


def _upload_in_explorer(driver, url: str, paths: list[Path]) -> None:
    from selenium.webdriver.common.by import By
    from test_browser import _rerun_settled, _wait_until_idle

    driver.get(f"{url}/explorer")
    _wait_until_idle(driver)
    driver.find_element(By.XPATH, "//summary[contains(., 'Upload your own ECG')]").click()
    time.sleep(0.5)
    driver.find_element(By.CSS_SELECTOR, 'input[type="file"]').send_keys("\n".join(str(p) for p in paths))
    _rerun_settled(driver)


def _wait_for(check, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


@pytest.mark.browser
def test_an_upload_that_crashes_its_parser_leaves_the_server_answering(upload_server, browser, tmp_path):
    import urllib.request

    from selenium.webdriver.common.by import By
    from test_browser import ARTIFACTS

    url, staging = upload_server
    for name, data in _hostile_files():
        (tmp_path / name).write_bytes(data)
    _upload_in_explorer(browser, url, [tmp_path / "JS00001.hea", tmp_path / "JS00001.mat"])
    browser.save_screenshot(str(ARTIFACTS / "page_explorer_hostile_upload.png"))
    errors = [e.text for e in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')]
    assert any(e.startswith("Upload could not be read (and was removed)") for e in errors), errors
    assert not [e for e in errors if str(staging) in e or "/tmp" in e], errors
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as answer:
        assert answer.status == 200 and answer.read().strip() == b"ok"
    assert _staged(staging) == []  # removed at once, not after 24 h
    assert browser.find_elements(By.CSS_SELECTOR, "h1"), "the page no longer draws"


@pytest.mark.browser
def test_a_closed_session_leaves_no_staged_files(upload_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url, staging = upload_server
    for name, data in _record_files():
        (tmp_path / name).write_bytes(data)
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    _upload_in_explorer(browser, url, [tmp_path / "JS00001.hea", tmp_path / "JS00001.mat"])
    captions = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stCaptionContainer"]'))
    assert "Uploaded JS00001: 500 Hz, 10.0 s" in captions, captions
    assert len(_staged(staging)) == 1
    browser.close()  # the user closes the tab: Streamlit ends the session
    browser.switch_to.window(first)
    assert _wait_for(lambda: _staged(staging) == []), _staged(staging)
