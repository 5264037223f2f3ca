"""Concurrency benchmark: several clinicians on one dashboard, and its memory after many uploads.

Starts `streamlit run dashboard/Home.py` with the shipped model and drives it with headless
Chromium (Debian's, `PNEUMONET_CHROMIUM`). For 1, 2, 4 and 8 browser sessions that each upload
two different `test/` X-rays at the same moment it reports each session's latency (from the
common start to its own last result: p50 and p95) and the throughput (images per second), with
a training job running beside it unless `--no-training`. Then `--uploads` different `train/`
images go through Predict, ten per new browser session, and the server's resident memory is
read after each hundred.

    python bench/concurrency.py [--sessions 1 2 4 8] [--uploads 500] [--no-training]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import benchlib
from pneumonet_testing.concurrent_sessions import (
    open_predict,
    start_dashboard,
    start_training_job,
    stop_dashboard,
    stop_training_job,
    upload_concurrently,
)

NAME = "concurrency"

VIEWPORT = {"width": 1280, "height": 900}
CHROMIUM = os.environ.get("PNEUMONET_CHROMIUM", "/usr/bin/chromium")


def server_rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def measure_sessions(browser, url: str, counts: list[int], images: list[Path]) -> list[dict]:
    rows = []
    for count in counts:
        uploads = [images[2 * index : 2 * index + 2] for index in range(count)]
        images = images[2 * count :]  # never the same file twice: no cache hits
        pages = [open_predict(browser, url, VIEWPORT) for _ in range(count)]
        try:
            results = upload_concurrently(pages, uploads)
        finally:
            for page in pages:
                page.context.close()
        seconds = [result.seconds for result in results if result.seconds is not None]
        rows.append(
            {
                "sessions": count,
                "completed": len(seconds),
                "latency_p50_s": benchlib.percentile(seconds, 50),
                "latency_p95_s": benchlib.percentile(seconds, 95),
                "images_per_s": 2 * len(seconds) / max(seconds),
                "foreign_results_seen": sum(len(result.shown_foreign) for result in results),
                "errors": sum(len(result.errors) for result in results),
            }
        )
        print(rows[-1], flush=True)
    return rows


def measure_memory(browser, url: str, pid: int, images: list[Path], uploads: int) -> list[dict]:
    """Server RSS while `uploads` images go through Predict, ten per browser session.

    Each batch comes from a new session, which is closed afterwards, as clinicians come and
    go. (One session that keeps adding files keeps them all: Streamlit's multi-file uploader
    appends each new batch to those already there, until the user removes them.)
    """
    rows = [{"uploads": 0, "rss_mib": server_rss_mb(pid)}]
    for start in range(0, uploads, 10):
        page = open_predict(browser, url, VIEWPORT)
        try:
            upload_concurrently([page], [images[start : start + 10]])
        finally:
            page.context.close()
        done = start + 10
        if done % 100 == 0:
            rows.append({"uploads": done, "rss_mib": server_rss_mb(pid)})
            print(rows[-1], flush=True)
    return rows


def table(result: dict) -> benchlib.Table:
    """The measured numbers as a Markdown table."""
    rows = [
        (
            f"{row['sessions']} sessions x 2 images: latency p50 / p95, s",
            f"{row['latency_p50_s']:.1f} / {row['latency_p95_s']:.1f}",
            f"{row['images_per_s']:.2f} images/s; {row['errors']} errors; "
            f"{row['foreign_results_seen']} foreign results",
        )
        for row in result["sessions"]
    ]
    rows += [
        (f"server RSS after {row['uploads']} uploads, MiB", row["rss_mib"], "")
        for row in result["memory"]
    ]
    title = (
        "Concurrent sessions (training job running)"
        if result["training_job_running"]
        else "Concurrent sessions"
    )
    return benchlib.Table(title, rows)


def arguments() -> argparse.ArgumentParser:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--sessions", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--uploads", type=int, default=500)
    parser.add_argument("--no-training", action="store_true")
    return parser


@benchlib.benchmark(NAME, arguments=arguments, table=table)
def main(args: argparse.Namespace) -> dict:
    from playwright.sync_api import sync_playwright

    from pneumonet_core.utils import config

    data = benchlib.data_root()
    test_images = sorted((data / "test" / "PNEUMONIA").iterdir()) + sorted(
        (data / "test" / "NORMAL").iterdir()
    )
    train_images = sorted((data / "train" / "PNEUMONIA").iterdir())[: args.uploads]
    home = Path(tempfile.mkdtemp(prefix="pneumonet-bench-"))
    environment = dict(
        os.environ,
        PNEUMONET_HOME=str(home),
        PNEUMONET_MODEL=str(config.shipped_model_path()),
        PNEUMONET_DATA=str(data),
        MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
    )
    started = time.monotonic()
    with open(home / "server.log", "w") as log, sync_playwright() as playwright:
        url, process = start_dashboard(environment, log)
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            warm = upload_concurrently([open_predict(browser, url, VIEWPORT)], [test_images[-1:]])
            if not args.no_training:
                start_training_job(environment, data, benchlib.PROJECT_ROOT)
            sessions = measure_sessions(browser, url, args.sessions, test_images[:-1])
            stop_training_job(environment, benchlib.PROJECT_ROOT)
            memory = measure_memory(browser, url, process.pid, train_images, args.uploads)
        finally:
            stop_training_job(environment, benchlib.PROJECT_ROOT)
            browser.close()
            stop_dashboard(process)
    return {
        "training_job_running": not args.no_training,
        "first_upload_s": warm[0].seconds,
        "sessions": sessions,
        "memory": memory,
        "duration_s": time.monotonic() - started,
    }


if __name__ == "__main__":
    main()
