"""What the browser benchmarks share: the app served as ``make app`` serves it, on a free port; headless Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_app(
    env: Mapping[str, str] | None = None, start_timeout: float = 90.0, bare_script: Path | None = None
) -> Iterator[str]:
    """The app served by ``aclecg app`` (as ``make app`` runs it) from the checkout (its URL); stopped on exit.
    With ``bare_script``: that script through plain ``streamlit run``, with the checkout's Streamlit settings."""
    port = _free_port()
    log = open(Path(tempfile.mkdtemp(prefix="aclecg-bench-")) / "streamlit.log", "wb")
    if bare_script is None:
        # launched as `make app` launches it (`aclecg app`: the pages' libraries imported before the first visit)
        cmd = [sys.executable, "-m", "aclecg", "app", str(REPO / "app.py"), "--port", str(port), "--"]
    else:
        cmd = [sys.executable, "-m", "streamlit", "run", str(bare_script), "--server.port", str(port)]
    cmd += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + start_timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"streamlit did not start; see {log.name}") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def headless_chromium():
    """Debian's Chromium through its chromedriver, headless at 1600x1000 with a throw-away profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='aclecg-bench-chromium-')}")
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
