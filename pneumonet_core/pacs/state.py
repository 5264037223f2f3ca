"""What the workers have done, per instance and model version: `PNEUMONET_HOME/pacs.sqlite`, or
the shared PostgreSQL database when `PNEUMONET_DATABASE_URL` is set (`storage`).

One row per (SOP Instance UID, model SHA-256). The UIDs stay in this store, which the workers
need to find the images again; they never reach the audit trail or the logs.
Statuses: `scored` (result computed, write-back not yet confirmed), `written` (SC and SR are in
the PACS), `skipped` and `failed` (with a reason). A `scored` row left by a crash is finished
on the next pass; the results' UIDs are derived from the source's, so a repeated write is the
same instance, never a duplicate.

Several workers share the work through leases (`claim`): a worker scores an instance only
while it holds the instance's claim, and a claim not renewed within its lease (the worker was
killed) can be taken by another worker.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy
from sqlalchemy.dialects import postgresql, sqlite

from pneumonet_core.storage import database, schema
from pneumonet_core.utils import config

STATE_FILE_NAME = "pacs.sqlite"
STATUSES = ("scored", "written", "skipped", "failed")
DONE_STATUSES = ("written", "skipped", "failed")
DEFAULT_LEASE_S = 120.0  # a claim not renewed for this long is given up
INSTANCES = schema.pacs_instances
CLAIMS = schema.pacs_claims


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
_READY: set[tuple] = set()  # engines whose tables exist, in this process


def state_path() -> Path:
    """The local store when no shared database is set: `<PNEUMONET_HOME>/pacs.sqlite`."""
    return config.state_dir() / STATE_FILE_NAME


def state_engine(path: Path | None = None) -> sqlalchemy.Engine:
    """The PACS state's database, its tables created on first use."""
    path = path or state_path()
    if not database.is_shared():
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = database.engine_for(path)
    key = (str(engine.url), str(path))
    if key not in _READY or not (database.is_shared() or path.exists()):
        with database.transaction(engine) as connection:
            schema.create_tables(connection, schema.PACS_TABLES)
        _READY.add(key)
    return engine


def save(record: InstanceRecord, path: Path | None = None) -> None:
    """Insert or update one instance's row (durable when this returns)."""
    if record.status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {record.status!r}")
    record.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
    values = asdict(record)
    values["ood"] = None if record.ood is None else int(record.ood)
    with database.transaction(state_engine(path)) as connection:
        statement = _upsert(connection).values(**values)
        changed = {name: statement.excluded[name] for name in COLUMNS[2:]}
        upsert = statement.on_conflict_do_update(index_elements=COLUMNS[:2], set_=changed)
        connection.execute(upsert)


def find(sop_uid: str, model_sha256: str, path: Path | None = None) -> InstanceRecord | None:
    """The instance's row for this model version, or None."""
    query = sqlalchemy.select(*INSTANCES.c).where(
        INSTANCES.c.sop_uid == sop_uid, INSTANCES.c.model_sha256 == model_sha256
    )
    with database.reading(state_engine(path)) as connection:
        row = connection.execute(query).first()
    return _record(row) if row else None


def records(model_sha256: str | None = None, path: Path | None = None) -> list[InstanceRecord]:
    """Every row, or those of one model version, most recently updated first."""
    query = sqlalchemy.select(*INSTANCES.c)
    if model_sha256:
        query = query.where(INSTANCES.c.model_sha256 == model_sha256)
    with database.reading(state_engine(path)) as connection:
        rows = connection.execute(query.order_by(INSTANCES.c.updated_at.desc())).all()
    return [_record(row) for row in rows]


def claim(
    sop_uid: str,
    model_sha256: str,
    worker: str,
    *,
    lease_s: float = DEFAULT_LEASE_S,
    take_from: str | None = None,
    path: Path | None = None,
) -> bool:
    """Take (or renew) the claim on one instance for `lease_s` seconds; False when another
    worker holds an unexpired claim (unless it is `take_from`, a worker known to be dead).
    One statement, atomic on both engines."""
    now = time.time()
    values = {"sop_uid": sop_uid, "model_sha256": model_sha256}
    with database.transaction(state_engine(path)) as connection:
        statement = _upsert(connection, CLAIMS).values(
            **values, worker=worker, expires_at=now + lease_s
        )
        taken = statement.on_conflict_do_update(
            index_elements=("sop_uid", "model_sha256"),
            set_={"worker": worker, "expires_at": now + lease_s},
            where=(CLAIMS.c.expires_at < now) | CLAIMS.c.worker.in_([worker, take_from or worker]),
        )
        return connection.execute(taken.returning(CLAIMS.c.worker)).first() is not None


def claim_holder(sop_uid: str, model_sha256: str, path: Path | None = None) -> str | None:
    """The worker holding the claim on one instance (expired or not), or None."""
    query = sqlalchemy.select(CLAIMS.c.worker).where(
        CLAIMS.c.sop_uid == sop_uid, CLAIMS.c.model_sha256 == model_sha256
    )
    with database.reading(state_engine(path)) as connection:
        return connection.execute(query).scalar()


def release(sop_uid: str, model_sha256: str, worker: str, path: Path | None = None) -> None:
    """Give up this worker's claim on one instance (its work is done)."""
    with database.transaction(state_engine(path)) as connection:
        connection.execute(
            CLAIMS.delete().where(
                CLAIMS.c.sop_uid == sop_uid,
                CLAIMS.c.model_sha256 == model_sha256,
                CLAIMS.c.worker == worker,
            )
        )


def _upsert(connection: sqlalchemy.Connection, table: sqlalchemy.Table = INSTANCES):
    dialect = postgresql if database.is_postgresql(connection) else sqlite
    return dialect.insert(table)


def _record(row) -> InstanceRecord:
    record = InstanceRecord(**dict(zip(COLUMNS, row, strict=True)))
    record.ood = None if record.ood is None else bool(record.ood)
    return record
