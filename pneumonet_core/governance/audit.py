"""An append-only audit trail: who predicted, trained, promoted or signed in, and when.

Entries live in `<PNEUMONET_HOME>/audit.sqlite` (WAL, `synchronous=FULL`: an entry whose
`record` returned survives a SIGKILL). No API updates or deletes, and triggers make SQLite
refuse UPDATE and DELETE on `entries`, and an INSERT that would reuse or replace an id. Each
entry is chained to the one before by SHA-256 (`audit_chain`), so `verify_chain` finds an
entry edited, removed, inserted or replaced by hand even with the triggers dropped. A failed
write never breaks a prediction: `record` retries a locked database, then logs a warning and
returns an `AuditResult` with `ok` False.

Privacy: an entry never holds pixels, file names, paths or DICOM patient fields. `record`
takes no file name: images and models are named by the SHA-256 of their bytes; text with a
path separator is refused, and `details` keys may not mention files, paths or patients.
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pneumonet_core.governance import audit_chain, audit_values
from pneumonet_core.governance.audit_values import ACTIONS as ACTIONS  # re-exported
from pneumonet_core.governance.audit_values import TRAINING_ACTIONS as TRAINING_ACTIONS
from pneumonet_core.utils.config import state_dir

AUDIT_FILE_NAME = "audit.sqlite"
TABLE_DEFINITION = """id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,
user TEXT NOT NULL, action TEXT NOT NULL, source TEXT NOT NULL, model_version TEXT,
model_sha256 TEXT, image_sha256 TEXT, probability REAL, label TEXT, threshold REAL,
ood INTEGER, details TEXT"""
FIELDS = tuple(column.split()[0] for column in TABLE_DEFINITION.split(","))
STORED = (*FIELDS, *audit_chain.CHAIN_FIELDS)  # the entry and its place in the hash chain
INSERT_STATEMENT = f"INSERT INTO entries ({', '.join(STORED)}) VALUES (:{', :'.join(STORED)})"
APPEND_ONLY_TRIGGER = """CREATE TRIGGER IF NOT EXISTS entries_refuse_{event} BEFORE {event}
ON entries BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END"""
# An id is given once: INSERT OR REPLACE, or an INSERT below the last id, is refused.
NEW_ID_TRIGGER = """CREATE TRIGGER IF NOT EXISTS entries_refuse_reused_id BEFORE INSERT
ON entries WHEN NEW.id <= (SELECT coalesce(max(id), 0) FROM entries)
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only: an id is never reused'); END"""
SCHEMA_STATEMENTS = (  # each a no-op once the database has its schema
    f"CREATE TABLE IF NOT EXISTS entries ({TABLE_DEFINITION}, prev_hash TEXT, entry_hash TEXT)",
    "CREATE INDEX IF NOT EXISTS entries_by_time ON entries (time, id)",
    *(APPEND_ONLY_TRIGGER.format(event=event) for event in ("UPDATE", "DELETE")),
    NEW_ID_TRIGGER,
)
EXPORT_FORMATS = ("jsonl", "csv")
WRITE_ATTEMPTS = 3  # tries of one `record` when SQLite reports an operational error
FIRST_BACKOFF_SECONDS = 0.1  # the wait after the first failed try, doubled after each further one
LOCK_TIMEOUT_SECONDS = 1.0  # how long one try waits for another writer's lock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditResult:
    """The outcome of `record`: committed (`ok`, `entry_id`) or not (`error`), after `attempts`."""

    ok: bool
    entry_id: int | None = None
    error: str | None = None  # "ErrorType: message" when the write failed
    attempts: int = 0


def audit_path() -> Path:
    """The audit database: `<PNEUMONET_HOME>/audit.sqlite`."""
    return state_dir() / AUDIT_FILE_NAME


def sha256_of_bytes(data: bytes) -> str:
    """The lower-case hex SHA-256 of `data` (e.g. an uploaded image's bytes)."""
    return hashlib.sha256(data).hexdigest()


def sha256_of_file(path: str | Path) -> str:
    """The lower-case hex SHA-256 of a file's bytes, read in chunks (record it, not `path`)."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def current_user(signed_in_email: str | None = None) -> str:
    """The signed-in email when given, else the operating-system user, else "unknown"."""
    try:
        return signed_in_email or getpass.getuser() or "unknown"
    except (OSError, KeyError, ImportError):  # no login name and no password-database entry
        return "unknown"


def record(
    action: str,
    *,
    source: str,
    user: str | None = None,
    model_version: str | None = None,
    model_sha256: str | None = None,
    image_sha256: str | None = None,
    probability: float | None = None,
    label: str | None = None,
    threshold: float | None = None,
    ood: bool | None = None,
    details: dict[str, Any] | None = None,
) -> AuditResult:
    """Append one entry, trying a locked database `WRITE_ATTEMPTS` times; never raise for it.

    Args:
        action: One of `ACTIONS`.
        source: Where it happened, "<kind>:<page or command>", e.g. "dashboard:Predict".
        user: The signed-in email; None for the operating-system user.
        model_version: The model's version or run id (no path).
        model_sha256: The SHA-256 of the model file (`sha256_of_file`).
        image_sha256: The SHA-256 of the image's bytes (`sha256_of_bytes`).
        probability: The predicted pneumonia probability, in [0, 1].
        label: The predicted label, e.g. "PNEUMONIA".
        threshold: The operating point used or newly set, in [0, 1].
        ood: Whether the image was flagged as out of distribution.
        details: Up to 16 short, non-identifying values, e.g. {"epochs": 10, "run_id": "ab12"}.

    Returns:
        An `AuditResult`; when its `ok` is False, `error` says why and a warning was logged.

    Raises:
        ValueError: For an unknown action or a malformed value (a programming error).
    """
    row = _checked_row(
        action,
        source=source,
        user=user,
        model_version=model_version,
        model_sha256=model_sha256,
        image_sha256=image_sha256,
        probability=probability,
        label=label,
        threshold=threshold,
        ood=ood,
        details=details,
    )
    return _write([row], action, source)


def record_many(entries: Sequence[dict[str, Any]]) -> AuditResult:
    """Append several entries in one transaction (all of them or none), for a batch of
    predictions: one disk sync instead of one per entry. Retries and errors as `record`.

    Args:
        entries: `record`'s keyword arguments, one dict per entry (each with an "action" and
            a "source").

    Returns:
        An `AuditResult` whose `entry_id` is the last entry's; ok with no id for no entries.

    Raises:
        ValueError: For an unknown action or a malformed value (before anything is written).
    """
    rows = [_checked_row(**entry) for entry in entries]
    if not rows:
        return AuditResult(True)
    return _write(rows, rows[0]["action"], rows[0]["source"])


def _checked_row(
    action: str, *, source: str, user: str | None = None, **fields: Any
) -> dict[str, Any]:
    moment, who = _stored_time(_utc_now()), current_user(user)
    return audit_values.checked_row(action, source=source, user=who, time=moment, **fields)


def _write(rows: list[dict[str, Any]], action: str, source: str) -> AuditResult:
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return AuditResult(True, _insert(rows), None, attempt)
        except sqlite3.OperationalError as raised:  # locked, busy, cannot open: try again
            error = raised
        except (sqlite3.Error, OSError) as raised:  # not a database, folder unwritable: give up
            error = raised
            break
        if attempt < WRITE_ATTEMPTS:
            time.sleep(FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
    message = f"{type(error).__name__}: {error}"
    logger.warning("audit write failed (%s from %s): %s", action, source, message)
    return AuditResult(False, None, message, attempt)


def read_entries(
    since: str | datetime | None = None,
    user: str | None = None,
    action: str | None = None,
    until: str | datetime | None = None,
) -> list[dict[str, Any]]:
    """The entries that match every given filter, oldest first (by time, then id).

    Args:
        since: Keep entries at or after this time (ISO date or datetime; naive means UTC).
        user: Keep entries of this user only.
        action: Keep entries of this action only (one of `ACTIONS`).
        until: Keep entries strictly before this time.

    Returns:
        One dict per entry, keyed by `FIELDS` (`ood` a bool, `details` a dict, or None);
        an empty list when there is no audit trail yet (no database is created).
    """
    filters = {
        "time >= ?": None if since is None else _stored_time(since),
        "time < ?": None if until is None else _stored_time(until),
        "user = ?": user,
        "action = ?": None if action is None else audit_values.checked_action(action),
    }
    filters = {condition: value for condition, value in filters.items() if value is not None}
    where = f"WHERE {' AND '.join(filters)}" if filters else ""
    if not audit_path().exists():
        return []
    with closing(sqlite3.connect(audit_path())) as connection:
        if not connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'entries'").fetchone():
            return []  # created by a first write that failed before its transaction
        connection.row_factory = sqlite3.Row
        query = f"SELECT {', '.join(FIELDS)} FROM entries {where} ORDER BY time, id"
        entries = [dict(row) for row in connection.execute(query, tuple(filters.values()))]
    for entry in entries:
        entry["ood"] = None if entry["ood"] is None else bool(entry["ood"])
        entry["details"] = None if entry["details"] is None else json.loads(entry["details"])
    return entries


def export(entries: list[dict], format: str, stream: IO[str]) -> int:
    """Write entries as JSON lines or as CSV with a header row; return how many were written.

    Args:
        entries: Entries from `read_entries`.
        format: "jsonl" (one JSON object a line) or "csv" (`details` as a JSON string).
        stream: A text stream, e.g. `sys.stdout` or an open file.

    Raises:
        ValueError: For an unknown format.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {EXPORT_FORMATS}, got {format!r}")
    rows = [{field: entry.get(field) for field in FIELDS} for entry in entries]
    if format == "jsonl":
        stream.writelines(json.dumps(row) + "\n" for row in rows)
        return len(rows)
    for row in rows:  # details as JSON text in one cell
        row["details"] = None if row["details"] is None else json.dumps(row["details"])
    writer = csv.DictWriter(stream, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return len(rows)


def export_command(since: str | None, format: str, stream: IO[str]) -> int:
    """`pneumonet audit export [--since DATE] [--format jsonl|csv]`; returns the exit status 0.

    Raises:
        ValueError: For a `since` that is no ISO date or datetime, or an unknown format.
    """
    export(read_entries(since=since), format, stream)
    return 0


def parse_time(moment: str | datetime) -> datetime:
    """An ISO 8601 date or datetime (naive means UTC) as an aware UTC datetime."""
    if not isinstance(moment, datetime):
        try:
            moment = datetime.fromisoformat(str(moment).strip())
        except ValueError:
            raise ValueError(f"not an ISO 8601 date or datetime: {moment!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _stored_time(moment: str | datetime) -> str:
    """The fixed-width text stored in `time`, so that text order is time order."""
    return parse_time(moment).isoformat(timespec="microseconds")


def _insert(rows: list[dict[str, Any]]) -> int:
    """Commit rows, chained to the last, in their own connection and transaction (WAL,
    `synchronous=FULL`); BEGIN IMMEDIATE makes concurrent writers take turns. The last id."""
    audit_path().parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(audit_path(), timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)
    with closing(connection):  # closing with an open transaction rolls the transaction back
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("BEGIN IMMEDIATE")
        _migrate_to_chain(connection)
        for statement in SCHEMA_STATEMENTS:
            connection.execute(statement)
        last_id, last_hash = connection.execute(
            "SELECT id, entry_hash FROM entries ORDER BY id DESC LIMIT 1"
        ).fetchone() or (0, audit_chain.GENESIS_HASH)
        entry_id = max(last_id, _highest_id_issued(connection))  # a removed id stays a gap
        for row in rows:
            entry_id += 1
            chained = {"id": entry_id, **row, "prev_hash": last_hash}
            last_hash = chained["entry_hash"] = audit_chain.entry_hash(chained, last_hash)
            connection.execute(INSERT_STATEMENT, chained)
        connection.execute("COMMIT")
        return entry_id


def _highest_id_issued(connection: sqlite3.Connection) -> int:
    """SQLite's record of the highest id AUTOINCREMENT ever gave out (0 before the first)."""
    found = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
    if not found.fetchone():
        return 0
    sequence = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'")
    return (sequence.fetchone() or (0,))[0] or 0


def _migrate_to_chain(connection: sqlite3.Connection) -> None:
    """Give a trail written before the hash chain its two columns, and chain its entries in
    id order, once, inside the caller's transaction."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(entries)")}
    if not columns or "entry_hash" in columns:
        return  # no table yet (created with the columns), or already chained
    for column in audit_chain.CHAIN_FIELDS:
        connection.execute(f"ALTER TABLE entries ADD COLUMN {column} TEXT")
    connection.execute("DROP TRIGGER IF EXISTS entries_refuse_UPDATE")  # re-created after
    connection.row_factory = sqlite3.Row
    previous_hash = audit_chain.GENESIS_HASH
    for row in connection.execute(f"SELECT {', '.join(FIELDS)} FROM entries ORDER BY id"):
        current = audit_chain.entry_hash(dict(row), previous_hash)
        connection.execute(
            "UPDATE entries SET prev_hash = ?, entry_hash = ? WHERE id = ?",
            (previous_hash, current, row["id"]),
        )
        previous_hash = current
    connection.row_factory = None


def verify_chain() -> audit_chain.ChainReport:
    """Walk the whole trail in id order and report the first entry edited, removed, inserted
    or replaced (`audit_chain.ChainReport`); an absent trail is intact, with no entries."""
    if not audit_path().exists():
        return audit_chain.ChainReport(True)
    with closing(sqlite3.connect(audit_path())) as connection:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(entries)")}
        if not columns:
            return audit_chain.ChainReport(True)
        if "entry_hash" not in columns:  # written before the chain; the next write chains it
            return audit_chain.ChainReport(False, None, None, 1, "the trail is not chained yet")
        highest = _highest_id_issued(connection)
        connection.row_factory = sqlite3.Row
        rows = connection.execute(f"SELECT {', '.join(STORED)} FROM entries ORDER BY id")
        return audit_chain.verify_rows((dict(row) for row in rows), highest)


def verify_command(stream: IO[str]) -> int:
    """`pneumonet audit verify`: one line on `stream`; returns 0 when intact, else 1 (a trail
    that cannot be read too)."""
    try:
        report = verify_chain()
    except sqlite3.Error as error:  # e.g. not a database
        print(f"audit chain not verified: {type(error).__name__}: {error}", file=stream)
        return 1
    print(report.message, file=stream)
    return 0 if report.intact else 1
