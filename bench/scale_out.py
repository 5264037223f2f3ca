"""Scale-out: PACS scoring with 1 and 2 workers sharing one Orthanc and one PostgreSQL, and audit
writes per second on SQLite and on PostgreSQL.

- PACS: N chest DICOM instances (CR and DX built from `test/` images) in a fresh Orthanc; 1, then
  2, `pneumonet pacs watch --once` processes at once with `PNEUMONET_DATABASE_URL` set (a fresh
  database each); images/s over the wall time of the slowest worker, start-up included.
- Audit: `audit.record` of a prediction, one process, W writes in a row: writes/s on SQLite under
  `PNEUMONET_HOME` (WAL, `synchronous=FULL`) and on PostgreSQL (advisory lock, `fsync=on`).

    python bench/scale_out.py [--instances 60] [--audit-writes 300]
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
from pacs import chest_files, store

NAME = "scale_out"


def arguments() -> argparse.ArgumentParser:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--instances", type=int, default=60)
    parser.add_argument("--audit-writes", type=int, default=300)
    return parser


def pacs_throughput(work: Path, files: list[bytes], database_url: str, workers: int) -> float:
    """Images/s of `workers` concurrent `pacs watch --once` over `files` in a fresh Orthanc."""
    from pneumonet_testing.orthanc import start_orthanc

    from pneumonet_core.pacs import pacs_settings

    server = start_orthanc(work / f"orthanc-{workers}")
    try:
        store(pacs_settings(server.dicomweb_url), files)
        environment = {
            **os.environ,
            "PNEUMONET_HOME": str(work / f"home-{workers}"),
            "PNEUMONET_DATABASE_URL": database_url,
        }
        command = [*benchlib.pneumonet_command(), "pacs", "watch", "--once"]
        started = time.perf_counter()
        processes = [
            subprocess.Popen(
                [*command, "--url", server.dicomweb_url],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        if any(process.wait() != 0 for process in processes):
            raise RuntimeError("a PACS worker failed")
        return len(files) / (time.perf_counter() - started)
    finally:
        server.stop()


def audit_writes_per_second(home: Path, database_url: str | None, writes: int) -> float:
    """Writes/s of one process recording `writes` predictions in a row."""
    script = (
        "import sys, time\n"
        "from pneumonet_core.governance import audit\n"
        "started = time.perf_counter()\n"
        f"for index in range({writes}):\n"
        "    assert audit.record('predict', source='cli:bench', probability=0.5).ok\n"
        f"print({writes} / (time.perf_counter() - started))\n"
    )
    environment = {**os.environ, "PNEUMONET_HOME": str(home)}
    environment.pop("PNEUMONET_DATABASE_URL", None)
    if database_url:
        environment["PNEUMONET_DATABASE_URL"] = database_url
    output = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(output.stdout.split()[-1])


def table(result: dict) -> benchlib.Table:
    return benchlib.Table(
        "Scale-out (one Orthanc, one PostgreSQL)",
        [
            ("instances", result["instances"], "CR and DX built from test/ images"),
            ("1 worker, images/s", result["one_worker_images_per_s"], "start-up included"),
            ("2 workers, images/s", result["two_workers_images_per_s"], "same machine"),
            ("audit writes/s, SQLite", result["audit_sqlite_per_s"], "one process"),
            ("audit writes/s, PostgreSQL", result["audit_postgresql_per_s"], "one process"),
        ],
    )


@benchlib.benchmark(NAME, arguments=arguments, table=table)
def main(args: argparse.Namespace) -> dict:
    from pneumonet_testing.postgresql import start_postgresql

    postgresql = start_postgresql()
    try:
        with tempfile.TemporaryDirectory() as work:
            work = Path(work)
            files = chest_files(args.instances)
            one = pacs_throughput(work, files, postgresql.create_database("one"), 1)
            two = pacs_throughput(work, files, postgresql.create_database("two"), 2)
            sqlite = audit_writes_per_second(work / "audit-sqlite", None, args.audit_writes)
            shared = audit_writes_per_second(
                work / "audit-pg", postgresql.create_database("audit"), args.audit_writes
            )
    finally:
        postgresql.stop()
        postgresql.remove()
    return {
        "instances": args.instances,
        "one_worker_images_per_s": one,
        "two_workers_images_per_s": two,
        "audit_writes": args.audit_writes,
        "audit_sqlite_per_s": sqlite,
        "audit_postgresql_per_s": shared,
    }


if __name__ == "__main__":
    main()
