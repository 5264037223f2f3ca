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
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_fixtures import DATA_ROOT, PROJECT_ROOT, build_tiny_model
from pneumonet_testing.concurrent_sessions import start_dashboard, stop_dashboard, stop_training_job

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


@pytest.fixture(scope="session")
def e2e_home(tmp_path_factory) -> Path:
    """A fresh PNEUMONET_HOME (run store, jobs, promoted model) for the browser tests."""
    return tmp_path_factory.mktemp("pneumonet_home")


@pytest.fixture(scope="session")
def e2e_model(tmp_path_factory) -> Path:
    """The server's active model: the shipped one, else a tiny untrained model (64 px)."""
    from pneumonet_core.utils.config import shipped_model_path

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
    log = open(e2e_home / "server.log", "w")  # noqa: SIM115  (closed below)
    started_at = time.monotonic()
    url, process = start_dashboard(server_environment, log)
    try:
        yield {"url": url, "ready_after_s": time.monotonic() - started_at}
    finally:
        stop_dashboard(process)
        log.close()
        stop_training_job(server_environment, PROJECT_ROOT)


@pytest.fixture(scope="session")
def browser(dashboard_server, standalone_browser):
    """Headless Debian Chromium driven by Playwright's sync API, with the shared dashboard up."""
    return standalone_browser


@pytest.fixture(scope="session")
def standalone_browser() -> Iterator:
    """Headless Debian Chromium driven by Playwright's sync API (one for the whole session: a
    second sync Playwright cannot start beside it), for tests that start their own dashboard;
    fails, never skips, when Chromium or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it (apt-get install -y chromium; "
            "`./run test` does) or point PNEUMONET_CHROMIUM at it"
        )
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


def pytest_collection_modifyitems(items) -> None:
    """Every test in this folder drives a browser: mark it `e2e`, so that
    `-m "not e2e"` leaves them all out, whether or not the file says so itself."""
    folder = Path(__file__).resolve().parent
    for item in items:
        if folder in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
