"""Browser fixtures: a dashboard server on a free localhost port and headless Chromium.

The server runs `streamlit run dashboard/Home.py` in a subprocess with `PNEUMONET_HOME` in a
temporary folder, so the tests never touch the real run store, and `PNEUMONET_MODEL` pointing at
the shipped model (a tiny untrained one while none is shipped), so the screenshots show what a
user sees. Chromium is Debian's (`/usr/bin/chromium`, or `PNEUMONET_CHROMIUM`); Playwright
never downloads a browser. A missing browser or Playwright fails the tests instead of skipping
them, so a CI run cannot pass without them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard_fixtures import (  # noqa: E402
    DATA_ROOT,
    HOME_SCRIPT,
    PROJECT_ROOT,
    build_tiny_model,
)

# The one setting that finds the browser; `./run test` installs Debian's package there.
CHROMIUM = Path(os.environ.get("PNEUMONET_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

VIEWPORT = {"width": 1440, "height": 1000}
SERVER_START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def _wait_for_health(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dashboard server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the dashboard server did not answer within {timeout_s} s")


@pytest.fixture(scope="session")
def e2e_home(tmp_path_factory) -> Path:
    """A fresh PNEUMONET_HOME (run store, jobs, promoted model) for the browser tests."""
    return tmp_path_factory.mktemp("pneumonet_home")


@pytest.fixture(scope="session")
def e2e_model(tmp_path_factory) -> Path:
    """The server's active model: the shipped one, else a tiny untrained model (64 px)."""
    from pneumonet_core.config import shipped_model_path

    shipped = shipped_model_path()
    if shipped.is_file():
        return shipped
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.fixture(scope="session")
def server_environment(e2e_home: Path, e2e_model: Path) -> dict[str, str]:
    """The environment of the dashboard server process."""
    environment = dict(os.environ)
    environment.update(
        {
            "PNEUMONET_HOME": str(e2e_home),
            "PNEUMONET_MODEL": str(e2e_model),
            "PNEUMONET_DATA": str(DATA_ROOT),
            "MLFLOW_TRACKING_URI": f"sqlite:///{e2e_home / 'mlflow.db'}",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
    )
    return environment


@pytest.fixture(scope="session")
def dashboard_server(server_environment: dict[str, str], e2e_home: Path) -> Iterator[dict]:
    """Start the dashboard; yields `{"url", "ready_after_s"}`; stops it (and any job) after."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it (apt-get install -y chromium; "
            "`./run test` does) or point PNEUMONET_CHROMIUM at it"
        )
    port = _free_port()
    url = f"http://localhost:{port}"
    log = open(e2e_home / "server.log", "w")  # noqa: SIM115  (closed below)
    started_at = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(HOME_SCRIPT),
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.fileWatcherType",
            "none",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=PROJECT_ROOT,
        env=server_environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_health(url, process, SERVER_START_TIMEOUT_S)
        yield {"url": url, "ready_after_s": time.monotonic() - started_at}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        _stop_training_job(server_environment)


def _stop_training_job(environment: dict[str, str]) -> None:
    """End a training job the tests may have left running (by its recorded process id)."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from pneumonet_core import jobs; s = jobs.read_job_status(); "
            "jobs.request_stop() if s and s.is_active else None; jobs.wait_for_job(60)",
        ],
        cwd=PROJECT_ROOT,
        env=environment,
        timeout=90,
        check=False,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def browser(dashboard_server) -> Iterator:
    """Headless Debian Chromium driven by Playwright's sync API."""
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("Playwright is missing: pip install -r requirements.txt (`./run test` does)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh browser tab with a desktop-sized viewport."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()
