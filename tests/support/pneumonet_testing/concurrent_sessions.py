"""Drive the dashboard in browsers: a server on a free port, several sessions at once.

Shared by the browser tests (`tests/e2e/`) and the benchmarks (`bench/concurrency.py`,
`bench/dashboard_startup.py`).

Each session is its own browser context (its own Streamlit session). All sessions upload their
files to Predict at the same moment; the sessions are then polled round-robin until each shows
a result per file, so each session's latency is measured from the common start to its own last
result.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
HOME_SCRIPT = PROJECT_ROOT / "dashboard" / "Home.py"
SERVER_START_TIMEOUT_S = 60
RESULT_LABEL = "Probability of pneumonia"
POLL_MS = 100


@dataclass
class SessionResult:
    """What one session saw.

    Attributes:
        files: The files it uploaded (names).
        seconds: From the common start until all its results were shown (None: never).
        shown_foreign: File names of other sessions that appeared on its page.
        errors: Texts of error alerts or exceptions on its page.
    """

    files: list[str]
    seconds: float | None = None
    shown_foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def open_predict(browser, url: str, viewport: dict):
    """A new browser context on the Predict page, once its script has finished."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(f"{url}/predict")
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=120_000
    )
    page.locator("input[type='file']").wait_for(state="attached")
    return page


def upload_concurrently(
    pages, uploads: list[list[Path]], timeout_s: float | None = 600.0
) -> list[SessionResult]:
    """Upload `uploads[i]` in `pages[i]` at once and wait until every page shows its results.

    Args:
        pages: Playwright pages on Predict (see `open_predict`).
        uploads: Per page, the image files it uploads (names unique across pages).
        timeout_s: Give up waiting after this long (a hang guard, not a performance bound);
            None waits for the condition alone, leaving the hang guard to pytest-timeout, so a
            busy machine slows the test down but cannot fail it.

    Returns:
        One `SessionResult` per page, in order.
    """
    results = [SessionResult(files=[path.name for path in files]) for files in uploads]
    started = time.monotonic()
    for page, files in zip(pages, uploads, strict=True):
        page.locator("input[type='file']").set_input_files([str(path) for path in files])
    waiting = set(range(len(pages)))
    while waiting and (timeout_s is None or time.monotonic() - started < timeout_s):
        for index in sorted(waiting):
            shown = pages[index].get_by_text(RESULT_LABEL, exact=True).count()
            if shown >= len(uploads[index]):
                results[index].seconds = time.monotonic() - started
                waiting.discard(index)
        pages[0].wait_for_timeout(POLL_MS)
    all_names = {name for result in results for name in result.files}
    for page, result in zip(pages, results, strict=True):
        page.wait_for_selector(
            '[data-testid="stApp"][data-test-script-state="notRunning"]',
            timeout=0 if timeout_s is None else 60_000,
        )
        text = page.inner_text("body")
        result.shown_foreign = sorted(n for n in all_names - set(result.files) if n in text)
        alerts = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
        result.errors = [alerts.nth(i).inner_text() for i in range(alerts.count())]
    return results


START_JOB = """
    import sys
    from pneumonet_core.training import jobs
    from pneumonet_core.training import TrainConfig

    jobs.start_training_job(TrainConfig(
        data_dir=sys.argv[1], architecture="seed", image_size=64, epochs=300, batch_size=8,
        val_fraction=0.25, subset_per_class=None,
    ))
"""


def start_training_job(environment: dict[str, str], data_dir: Path, cwd: Path) -> None:
    """Start a long background training job in the dashboard's environment."""
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(START_JOB), str(data_dir)],
        cwd=cwd,
        env=environment,
        timeout=120,
        check=True,
        capture_output=True,
    )


def stop_training_job(environment: dict[str, str], cwd: Path) -> None:
    """End a training job left running (by its recorded process id) and wait for it."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from pneumonet_core.training import jobs; s = jobs.read_job_status(); "
            "jobs.request_stop() if s and s.is_active else None; jobs.wait_for_job(60)",
        ],
        cwd=cwd,
        env=environment,
        timeout=90,
        check=False,
        capture_output=True,
    )


def start_dashboard(environment: dict[str, str], log) -> tuple[str, subprocess.Popen]:
    """`streamlit run dashboard/Home.py` on a free localhost port, once it answers.

    Returns:
        `(url, process)`.
    """
    port = free_port()
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
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://localhost:{port}"
    try:
        wait_for_health(url, process, SERVER_START_TIMEOUT_S)
    except RuntimeError:
        stop_dashboard(process)
        raise
    return url, process


def stop_dashboard(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def wait_for_health(
    url: str, process: subprocess.Popen, timeout_s: float = SERVER_START_TIMEOUT_S
) -> None:
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
