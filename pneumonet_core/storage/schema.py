"""The one schema of the shared state, for SQLite and PostgreSQL alike (SQLAlchemy Core).

Tables: `entries` (the audit trail), `instances` and `pacs_claims` (the PACS worker), and
`training_jobs` (the training job). On SQLite the audit trail and the PACS state stay in two
files (`audit.sqlite`, `pacs.sqlite`), as before; on PostgreSQL they share one database.
Tables are created when first needed (`create_tables`): on SQLite from this metadata, on
PostgreSQL by Alembic's migrations (`storage.migrations`, the initial revision `0001`), under
an advisory lock so that two processes starting at once do not race.
"""

from __future__ import annotations

import sqlalchemy
from sqlalchemy import Column, Float, Index, Integer, MetaData, Table, Text

from pneumonet_core.storage import database

SCHEMA_LOCK = 0x504E4D00  # advisory lock key: schema creation ("PNM\0")
metadata = MetaData()
_MIGRATED: set[str] = set()  # PostgreSQL URLs migrated to the newest revision, in this process

audit_entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Text, nullable=False),
    Column("user", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("model_version", Text),
    Column("model_sha256", Text),
    Column("image_sha256", Text),
    Column("probability", Float),
    Column("label", Text),
    Column("threshold", Float),
    Column("ood", Integer),
    Column("details", Text),
    Column("prev_hash", Text),
    Column("entry_hash", Text),
    sqlite_autoincrement=True,  # SQLite remembers the highest id given (sqlite_sequence)
)
Index("entries_by_time", audit_entries.c.time, audit_entries.c.id)

pacs_instances = Table(
    "instances",
    metadata,
    Column("sop_uid", Text, primary_key=True),
    Column("model_sha256", Text, primary_key=True),
    Column("study_uid", Text, nullable=False),
    Column("series_uid", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("reason", Text),
    Column("model_version", Text),
    Column("probability", Float),
    Column("label", Text),
    Column("threshold", Float),
    Column("threshold_origin", Text),
    Column("ood", Integer),
    Column("ood_reason", Text),
    Column("study_date", Text),
    Column("modality", Text),
    Column("updated_at", Text, nullable=False),
)

pacs_claims = Table(  # which worker scores an instance now, until when (a lease)
    "pacs_claims",
    metadata,
    Column("sop_uid", Text, primary_key=True),
    Column("model_sha256", Text, primary_key=True),
    Column("worker", Text, nullable=False),
    Column("expires_at", Float, nullable=False),  # seconds since the epoch
)

audit_spool_landed = Table(  # spooled audit entries already in the chain (each lands once)
    "audit_spool_landed",
    metadata,
    Column("spool_id", Text, primary_key=True),
)

training_jobs = Table(  # the one training job of a pool, seen and stopped from any replica
    "training_jobs",
    metadata,
    Column("pool", Text, primary_key=True),
    Column("job_id", Text, nullable=False),
    Column("status", Text, nullable=False),  # the job's status values, as JSON
    Column("stop_requested", Integer, nullable=False, default=0),
    Column("heartbeat", Float, nullable=False),  # seconds since the epoch
)

AUDIT_TABLES = (audit_entries, audit_spool_landed)
TRAINING_TABLES = (training_jobs,)
PACS_TABLES = (pacs_instances, pacs_claims)


def create_tables(connection: sqlalchemy.Connection, tables) -> None:
    """Make sure `tables` exist, inside the caller's transaction. SQLite: the missing ones are
    created from `metadata`. PostgreSQL: the database is migrated to the newest Alembic
    revision (`storage.migrations`), under an advisory lock, once per process."""
    if not database.is_postgresql(connection):
        missing = [table for table in tables if not _exists(connection, table.name)]
        if missing:
            metadata.create_all(connection, tables=missing, checkfirst=False)
        return
    url = str(connection.engine.url)
    if url in _MIGRATED:  # once per process: the schema lock would serialise every write
        return
    from pneumonet_core.storage import migrations

    connection.execute(sqlalchemy.select(sqlalchemy.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
    migrations.upgrade(connection)
    _MIGRATED.add(url)


def _exists(connection: sqlalchemy.Connection, name: str) -> bool:
    return sqlalchemy.inspect(connection).has_table(name)
