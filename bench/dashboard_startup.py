"""Dashboard: start-up until the Home page has rendered, and upload until the prediction shows.

Each run starts a fresh `streamlit run dashboard/Home.py` (headless, free localhost port,
`PNEUMONET_HOME` in a scratch folder, the benchmark model as `PNEUMONET_MODEL`) while a headless
Debian Chromium (Playwright's sync API, never a downloaded browser) is already open, then:

- start-up: from launching the server until the Home page shows its intended-use note
  (the server answering its health check is recorded on the way). Target <= 5 s.
- first prediction: on the Predict page, from handing an X-ray to the file input until its
  probability shows (the first upload of a server also loads TensorFlow and the model).
- second prediction: the same for another X-ray, with the model loaded.

Medians over the runs. Install Chromium with `apt-get install -y chromium` if it is missing.

    python bench/dashboard_startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import benchlib

# One way to find a port and wait for the server, shared with the browser tests.
from pneumonet_testing.concurrent_sessions import free_port, wait_for_health

NAME = "dashboard_startup"
CHROMIUM = Path("/usr/bin/chromium")
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
HOME_TEXT = "Decision support for pneumonia screening"
RESULT_TEXT = "Probability of pneumonia"
STARTUP_TARGET_S = 5.0
TIMEOUT_MS = 120_000


def server_environment(model_path: Path, home: Path) -> dict[str, str]:
    """The dashboard's environment: scratch state, the benchmark model, the dataset."""
    environment = dict(os.environ)
    environment.update(
        {
            "PNEUMONET_HOME": str(home),
            "PNEUMONET_MODEL": str(model_path),
            "PNEUMONET_DATA": str(benchlib.data_root()),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
    )
    return environment


@contextmanager
def dashboard_server(environment: dict[str, str], port: int, log_path: Path):
    """Run `streamlit run dashboard/Home.py` on `port`; stop it afterwards."""
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/Home.py"]
    command += ["--server.port", str(port), "--server.headless", "true"]
    command += ["--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=benchlib.PROJECT_ROOT, env=environment, stdout=log, stderr=log
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def upload_and_wait(page, image: Path, expected_results: int) -> float:
    """Seconds from giving `image` to the file input until `expected_results` results show."""
    file_input = page.locator("input[type='file']")
    started = time.perf_counter()
    file_input.set_input_files(str(image))
    page.get_by_role("heading", name=image.name).first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_text(RESULT_TEXT).nth(expected_results - 1).wait_for(timeout=TIMEOUT_MS)
    return time.perf_counter() - started


def one_run(browser, model_path: Path, images: list[Path], run_index: int) -> dict:
    """Start a fresh server, time the Home page, then two uploads on the Predict page."""
    home = benchlib.WORK_DIR / f"dashboard_home_{run_index}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    port = free_port()
    url = f"http://localhost:{port}"
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    environment = server_environment(model_path, home)
    try:
        started = time.perf_counter()
        with dashboard_server(environment, port, home / "server.log") as process:
            wait_for_health(url, process)
            healthy = time.perf_counter() - started
            page.goto(url)
            page.get_by_text(HOME_TEXT).first.wait_for(timeout=TIMEOUT_MS)
            home_rendered = time.perf_counter() - started
            page.goto(f"{url}/predict")
            page.locator("input[type='file']").wait_for(state="attached", timeout=TIMEOUT_MS)
            first = upload_and_wait(page, images[0], 1)
            second = upload_and_wait(page, images[1], 2)
    finally:
        context.close()
    return {
        "server_healthy_s": healthy,
        "home_rendered_s": home_rendered,
        "first_prediction_s": first,
        "second_prediction_s": second,
    }


def upload_images() -> list[Path]:
    """Two X-rays to upload: full-resolution samples when present, else dataset images."""
    samples = sorted((benchlib.data_root().parent / "fullres-samples").glob("*/*.jpeg"))
    if len(samples) >= 2:
        return [samples[0], samples[-1]]
    frame = benchlib.sample_training_images(1)
    return [Path(path) for path in frame["path"]]


def measure(runs: int) -> dict:
    """Medians over `runs` fresh servers."""
    from playwright.sync_api import sync_playwright

    model_path, note = benchlib.benchmark_model_path()
    images = upload_images()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            measured = [one_run(browser, model_path, images, index) for index in range(runs)]
        finally:
            browser.close()
    summary = {key: benchlib.median([run[key] for run in measured]) for key in measured[0]}
    summary.update(
        {
            "runs": measured,
            "model_note": note,
            "uploaded_images": [
                f"{path.name} ({path.stat().st_size // 1024} KiB)" for path in images
            ],
            "startup_target_s": STARTUP_TARGET_S,
            "startup_target_met": summary["home_rendered_s"] <= STARTUP_TARGET_S,
        }
    )
    return summary


def table(result: dict) -> benchlib.Table:
    """The measured numbers as a Markdown table."""
    values = result["measurements"]
    met = "met" if values["startup_target_met"] else "MISSED"
    rows = [
        ("server answers health check, s", values["server_healthy_s"], ""),
        (
            "start-up until Home rendered, s",
            values["home_rendered_s"],
            f"target <= {STARTUP_TARGET_S:.0f}: {met}",
        ),
        ("first upload until prediction shown, s", values["first_prediction_s"], "loads model"),
        ("second upload until prediction shown, s", values["second_prediction_s"], "warm"),
    ]
    notes = [f"Uploads: {', '.join(values['uploaded_images'])}"]
    return benchlib.Table("Dashboard", rows, notes=notes)


def arguments() -> argparse.ArgumentParser:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--runs", type=int, default=3, help="fresh server starts")
    return parser


@benchlib.benchmark(NAME, arguments=arguments, table=table)
def main(args: argparse.Namespace) -> dict:
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} not found: apt-get update && apt-get install -y chromium")
    return {"measurements": measure(args.runs)}


if __name__ == "__main__":
    main()
