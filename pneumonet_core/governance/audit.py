"""An append-only audit trail: who predicted, trained, promoted or signed in, and when.

Entries live in `<PNEUMONET_HOME>/audit.sqlite` (WAL, `synchronous=FULL`: an entry whose
`record` returned survives a SIGKILL), or in the shared PostgreSQL database when
`PNEUMONET_DATABASE_URL` is set (`audit_store`: one chain for every machine). No API updates or
deletes, and triggers make the database refuse UPDATE and DELETE on `entries`, and an INSERT
that would reuse or replace an id. Each
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pneumonet_core.governance import audit_chain, audit_spool, audit_store, audit_values
from pneumonet_core.governance.audit_values import ACTIONS as ACTIONS  # re-exported
from pneumonet_core.governance.audit_values import TRAINING_ACTIONS as TRAINING_ACTIONS
from pneumonet_core.storage import database
from pneumonet_core.utils.config import state_dir

AUDIT_FILE_NAME = "audit.sqlite"
FIELDS = (
    "id",
    "time",
    "user",
    "action",
    "source",
    "model_version",
    "model_sha256",
    "image_sha256",
    "probability",
    "label",
    "threshold",
    "ood",
    "details",
)
STORED = (*FIELDS, *audit_chain.CHAIN_FIELDS)  # the entry and its place in the hash chain
EXPORT_FORMATS = ("jsonl", "csv")
WRITE_ATTEMPTS = 3  # tries of one `record` when the database reports an operational error
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
    pending: bool = False  # shared database unreachable: kept in the local spool (`ok` True)


def audit_path() -> Path:
    """The audit database when no shared database is set: `<PNEUMONET_HOME>/audit.sqlite`."""
    return state_dir() / AUDIT_FILE_NAME


def audit_engine():
    """The audit trail's database: the shared PostgreSQL (`PNEUMONET_DATABASE_URL`), else
    `audit_path()`."""
    return database.engine_for(audit_path(), timeout_s=LOCK_TIMEOUT_SECONDS)


def _trail_exists() -> bool:
    """Whether there is a trail to read, without creating one."""
    if not database.is_shared() and not audit_path().exists():
        return False
    with database.reading(audit_engine()) as connection:
        return audit_store.has_entries_table(connection)


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
        With a shared database that cannot be reached, the entry is kept in the local spool
        (`audit_spool`) and lands when the database is back: `ok` and `pending` are True.

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
    predictions: one disk sync instead of one per entry. Retries, spool and errors as `record`.

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
    return {
        "time": _stored_time(_utc_now()),
        "user": current_user(user),
        "action": audit_values.checked_action(action),
        "source": audit_values.checked_text("source", source, audit_values.SOURCE_PATTERN),
        **audit_values.checked_fields(fields),
    }


def _write(rows: list[dict[str, Any]], action: str, source: str) -> AuditResult:
    if database.is_shared() and not _flush_spool():  # the database is still unreachable
        return _spool(rows, "earlier entries are waiting in the local spool", 0)
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return AuditResult(True, _insert(rows), None, attempt)
        except database.TransientError as raised:  # locked, busy, server gone: try again
            error = raised
        except (database.DatabaseError, OSError) as raised:  # not a database, unwritable: give up
            error = raised
            break
        if attempt < WRITE_ATTEMPTS:
            time.sleep(FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
    message = database.describe_error(error)
    if database.is_shared() and isinstance(error, database.TransientError):
        return _spool(rows, message, attempt)
    logger.warning("audit write failed (%s from %s): %s", action, source, message)
    return AuditResult(False, None, message, attempt)


def _flush_spool() -> bool:
    """Land the spooled entries (in order, once); False while the database is unreachable."""
    try:
        landed = audit_spool.flush(audit_engine())
    except (database.DatabaseError, OSError) as error:
        logger.debug("audit spool not flushed: %s", database.describe_error(error))
        return False
    if landed:
        logger.warning("audit database back: %d spooled entries recorded", landed)
    return True


def _spool(rows: list[dict[str, Any]], reason: str, attempts: int) -> AuditResult:
    """Keep the entries on this machine until the shared database is back ("audit pending")."""
    for row in rows:
        audit_spool.append(row)
    logger.warning("audit pending: shared database unreachable (%s); entry spooled", reason)
    return AuditResult(True, None, reason, attempts, pending=True)


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
        "since": None if since is None else _stored_time(since),
        "until": None if until is None else _stored_time(until),
        "user": user,
        "action": None if action is None else audit_values.checked_action(action),
    }
    filters = {name: value for name, value in filters.items() if value is not None}
    if not _trail_exists():
        return []  # nothing written yet, or a first write that failed before its transaction
    with database.reading(audit_engine()) as connection:
        entries = list(audit_store.select_rows(connection, FIELDS, filters))
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
    """Commit the rows, each chained to the one before, in one transaction
    (`audit_store.insert`); return the last one's id."""
    if not database.is_shared():
        audit_path().parent.mkdir(parents=True, exist_ok=True)
    return audit_store.insert(audit_engine(), rows, FIELDS)


def verify_chain() -> audit_chain.ChainReport:
    """Walk the whole trail in id order and report the first entry edited, removed, inserted
    or replaced (`audit_chain.ChainReport`); an absent trail is intact, with no entries."""
    if not _trail_exists():
        return audit_chain.ChainReport(True)
    with database.reading(audit_engine()) as connection:
        if not audit_store.is_chained(connection):  # the next write chains it
            return audit_chain.ChainReport(False, None, None, 1, "the trail is not chained yet")
        highest = audit_store.highest_id_issued(connection)
        return audit_chain.verify_rows(audit_store.chain_rows(connection, STORED), highest)


def verify_command(stream: IO[str]) -> int:
    """`pneumonet audit verify`: one line on `stream`; returns 0 when intact, else 1 (a trail
    that cannot be read too)."""
    try:
        report = verify_chain()
    except (database.DatabaseError, sqlite3.Error, OSError) as error:  # e.g. not a database
        print(f"audit chain not verified: {database.describe_error(error)}", file=stream)
        return 1
    print(report.message, file=stream)
    return 0 if report.intact else 1
