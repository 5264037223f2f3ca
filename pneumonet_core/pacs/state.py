"""What the worker has done, per instance and model version (`PNEUMONET_HOME/pacs.sqlite`).

One row per (SOP Instance UID, model SHA-256). The UIDs stay in this local store, which the
worker needs to find the images again; they never reach the audit trail or the logs.
Statuses: `scored` (result computed, write-back not yet confirmed), `written` (SC and SR are in
the PACS), `skipped` and `failed` (with a reason). A `scored` row left by a crash is finished
on the next pass; the results' UIDs are derived from the source's, so a repeated write is the
same instance, never a duplicate.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from pneumonet_core.utils import config

STATE_FILE_NAME = "pacs.sqlite"
STATUSES = ("scored", "written", "skipped", "failed")
DONE_STATUSES = ("written", "skipped", "failed")
TABLE = """CREATE TABLE IF NOT EXISTS instances (
    sop_uid TEXT NOT NULL, model_sha256 TEXT NOT NULL, study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, model_version TEXT,
    probability REAL, label TEXT, threshold REAL, threshold_origin TEXT, ood INTEGER,
    ood_reason TEXT, study_date TEXT, modality TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY (sop_uid, model_sha256))"""


@dataclass
class InstanceRecord:
    """One instance's state for one model version."""

    sop_uid: str
    model_sha256: str
    study_uid: str
    series_uid: str
    status: str
    reason: str | None = None
    model_version: str | None = None
    probability: float | None = None
    label: str | None = None
    threshold: float | None = None
    threshold_origin: str | None = None
    ood: bool | None = None
    ood_reason: str | None = None
    study_date: str | None = None
    modality: str | None = None
    updated_at: str = ""


COLUMNS = tuple(item.name for item in fields(InstanceRecord))


def state_path() -> Path:
    return config.state_dir() / STATE_FILE_NAME


@contextmanager
def connect(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    path = path or state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(TABLE)
        yield connection


def save(record: InstanceRecord, path: Path | None = None) -> None:
    """Insert or update one instance's row (durable when this returns)."""
    if record.status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {record.status!r}")
    record.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
    values = asdict(record)
    values["ood"] = None if record.ood is None else int(record.ood)
    placeholders = ", ".join(f":{name}" for name in COLUMNS)
    with connect(path) as connection:
        connection.execute(
            f"INSERT OR REPLACE INTO instances ({', '.join(COLUMNS)}) VALUES ({placeholders})",
            values,
        )


def find(sop_uid: str, model_sha256: str, path: Path | None = None) -> InstanceRecord | None:
    with connect(path) as connection:
        row = connection.execute(
            f"SELECT {', '.join(COLUMNS)} FROM instances WHERE sop_uid = ? AND model_sha256 = ?",
            (sop_uid, model_sha256),
        ).fetchone()
    return _record(row) if row else None


def records(model_sha256: str | None = None, path: Path | None = None) -> list[InstanceRecord]:
    """Every row, or those of one model version, most recently updated first."""
    query = f"SELECT {', '.join(COLUMNS)} FROM instances"
    arguments: tuple = ()
    if model_sha256:
        query, arguments = query + " WHERE model_sha256 = ?", (model_sha256,)
    with connect(path) as connection:
        rows = connection.execute(query + " ORDER BY updated_at DESC", arguments).fetchall()
    return [_record(row) for row in rows]


def _record(row: tuple) -> InstanceRecord:
    record = InstanceRecord(**dict(zip(COLUMNS, row, strict=True)))
    record.ood = None if record.ood is None else bool(record.ood)
    return record
