"""PACS worker throughput and latency against a local Orthanc (Debian's orthanc + DICOMweb plugin).

- `pneumonet pacs watch --once` over N chest DICOM instances (built from `test/` images, CR and
  DX): retrieve (WADO-RS), score with Grad-CAM, build the SC and SR, store (STOW-RS); images/s
  with and without the process's start-up, beside `pneumonet predict --json` on the same DICOM
  files in one folder. Target: worker >= 0.5 x the CLI's images/s (both with start-up).
- polling latency: with `pneumonet pacs watch --interval 2` running, a new study is stored and
  the time until its SR is in the PACS is measured (median of a few).

    python bench/pacs.py [--instances 200] [--latency-runs 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib

NAME = "pacs"
TARGET_RATIO = 0.5
POLL_INTERVAL_S = 2.0
LATENCY_GIVE_UP_S = 300  # a hang guard, not a target


def arguments() -> argparse.ArgumentParser:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--latency-runs", type=int, default=3)
    return parser


def chest_files(count: int) -> list[bytes]:
    from pneumonet_testing.dicom_studies import chest_dicom

    images = sorted((benchlib.data_root() / "test").glob("*/*.jpeg"))
    return [
        chest_dicom(images[index % len(images)], modality=("CR", "DX")[index % 2])
        for index in range(count)
    ]


def store(settings, files: list[bytes]) -> None:
    import io

    import pydicom

    from pneumonet_core.pacs import client

    connection = client.connect(settings)
    for start in range(0, len(files), 50):
        chunk = [pydicom.dcmread(io.BytesIO(data)) for data in files[start : start + 50]]
        connection.store_instances(chunk)


def run_worker_once(url: str, environment: dict) -> float:
    started = time.perf_counter()
    command = [*benchlib.pneumonet_command(), "pacs", "watch", "--once", "--url", url]
    subprocess.run(command, env=environment, check=True, capture_output=True)
    return time.perf_counter() - started


def run_cli(files: list[bytes], environment: dict, folder: Path) -> float:
    for index, data in enumerate(files):
        (folder / f"{index:05d}.dcm").write_bytes(data)
    started = time.perf_counter()
    command = [*benchlib.pneumonet_command(), "predict", str(folder), "--json", "--quiet"]
    subprocess.run(command, env=environment, check=True, capture_output=True)
    return time.perf_counter() - started


def polling_latency(settings, url: str, environment: dict, runs: int) -> list[float]:
    from pneumonet_core.pacs import client

    connection = client.connect(settings)
    command = [*benchlib.pneumonet_command(), "pacs", "watch", "--url", url]
    worker = subprocess.Popen(
        [*command, "--interval", str(POLL_INTERVAL_S)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    latencies = []
    try:
        time.sleep(15)  # the worker's start-up and first passes
        for data in chest_files(runs):
            count_before = len(client.find_instances(connection))
            started = time.perf_counter()
            store(settings, [data])
            while len(client.find_instances(connection)) < count_before + 3:  # source, SC, SR
                if time.perf_counter() - started > LATENCY_GIVE_UP_S:
                    raise RuntimeError(f"no result within {LATENCY_GIVE_UP_S} s")
                time.sleep(0.1)
            latencies.append(time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    return latencies


def table(result: dict) -> benchlib.Table:
    status = "met" if result["ratio"] >= TARGET_RATIO else "MISSED"
    return benchlib.Table(
        "PACS worker (local Orthanc)",
        [
            ("instances", result["instances"], "CR and DX built from test/ images"),
            (
                "pacs watch --once, images/s",
                result["worker_images_per_s"],
                "retrieve, score, SC+SR, STOW",
            ),
            ("pneumonet predict, images/s", result["cli_images_per_s"], "same files, one folder"),
            ("ratio worker / CLI", result["ratio"], f">= {TARGET_RATIO} ({status})"),
            (
                "STOW to SR in PACS, median s",
                result["latency_median_s"],
                f"polling every {POLL_INTERVAL_S:g} s",
            ),
        ],
    )


@benchlib.benchmark(NAME, arguments=arguments, table=table)
def main(args: argparse.Namespace) -> dict:
    from pneumonet_testing.orthanc import start_orthanc

    from pneumonet_core.pacs import pacs_settings

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        server = start_orthanc(work / "orthanc")
        environment = {**os.environ, "PNEUMONET_HOME": str(work / "home")}
        try:
            settings = pacs_settings(server.dicomweb_url)
            files = chest_files(args.instances)
            store(settings, files)
            worker_s = run_worker_once(server.dicomweb_url, environment)
            (work / "cli").mkdir()
            cli_s = run_cli(files, environment, work / "cli")
            latencies = polling_latency(
                settings, server.dicomweb_url, environment, args.latency_runs
            )
        finally:
            server.stop()
    return {
        "instances": args.instances,
        "worker_seconds": worker_s,
        "cli_seconds": cli_s,
        "worker_images_per_s": args.instances / worker_s,
        "cli_images_per_s": args.instances / cli_s,
        "ratio": cli_s / worker_s,
        "latency_s": latencies,
        "latency_median_s": benchlib.median(latencies),
        "python": sys.version.split()[0],
    }


if __name__ == "__main__":
    main()
