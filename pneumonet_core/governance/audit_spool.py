"""The local spool of audit entries written while the shared database was unreachable.

With `PNEUMONET_DATABASE_URL` set and PostgreSQL down, a prediction is still shown: its entry,
checked and stamped with its time, is appended to `<PNEUMONET_HOME>/audit-spool.jsonl`
(one JSON line each, `fsync`ed, under a file lock) instead. The next write on this machine
first flushes the spool: every spooled entry, oldest first, joins the chain in one transaction
with a record of its spool id (`audit_spool_landed`), so an entry lands once even if the
process dies between the commit and the spool's removal.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy

from pneumonet_core.governance import audit_store
from pneumonet_core.storage import database, schema
from pneumonet_core.utils.config import state_dir

SPOOL_FILE_NAME = "audit-spool.jsonl"
LANDED = schema.audit_spool_landed


def spool_path() -> Path:
    """`<PNEUMONET_HOME>/audit-spool.jsonl`."""
    return state_dir() / SPOOL_FILE_NAME


def append(row: dict[str, Any]) -> None:
    """Keep one checked entry on this machine until the database is back (durable on return)."""
    line = json.dumps({"spool_id": uuid.uuid4().hex, "row": row}, sort_keys=True) + "\n"
    with _locked_spool("a") as stream:
        stream.write(line)
        stream.flush()
        os.fsync(stream.fileno())


def pending() -> int:
    """How many entries wait in the spool."""
    if not spool_path().exists():
        return 0
    with _locked_spool("r") as stream:
        return len(_spooled(stream))


def flush(engine: sqlalchemy.Engine) -> int:
    """Append the spooled entries to the chain, in order and once; return how many landed.

    Raises:
        database.DatabaseError: The database is still unreachable (the spool is kept).
    """
    if not spool_path().exists():
        return 0
    with _locked_spool("r+") as stream:
        spooled = _spooled(stream)
        landed = 0
        with database.transaction(engine, lock=audit_store.AUDIT_LOCK) as connection:
            schema.create_tables(connection, schema.AUDIT_TABLES)
            done = _already_landed(connection, [item["spool_id"] for item in spooled])
            for item in spooled:
                if item["spool_id"] in done:
                    continue
                audit_store.append_in(connection, item["row"])
                connection.execute(LANDED.insert().values(spool_id=item["spool_id"]))
                landed += 1
        stream.truncate(0)
        os.fsync(stream.fileno())
    spool_path().unlink(missing_ok=True)
    return landed


def _already_landed(connection: sqlalchemy.Connection, spool_ids: list[str]) -> set[str]:
    if not spool_ids:
        return set()
    query = sqlalchemy.select(LANDED.c.spool_id).where(LANDED.c.spool_id.in_(spool_ids))
    return set(connection.execute(query).scalars())


def _spooled(stream) -> list[dict[str, Any]]:
    """The complete lines (a line torn by a crash mid-append was never acknowledged)."""
    stream.seek(0)
    items = []
    for line in stream.read().splitlines():
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return items


@contextmanager
def _locked_spool(mode: str) -> Iterator:
    spool_path().parent.mkdir(parents=True, exist_ok=True)
    if mode == "r+" or mode == "r":
        spool_path().touch(exist_ok=True)
    with open(spool_path(), mode, encoding="utf-8") as stream:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
        try:
            yield stream
        finally:
            fcntl.flock(stream.fileno(), fcntl.LOCK_UN)
