"""The training job of a pool, shared by every dashboard replica through the shared database.

Only with `PNEUMONET_DATABASE_URL` set (otherwise `jobs` keeps everything in files, as on one
machine). One row of `training_jobs` per pool (`PNEUMONET_TRAINING_POOL`, default "default":
one job per cluster, or one per named pool of training machines): the job's status as JSON, a
heartbeat, and a stop request. The machine that runs the job publishes its status every second
(`StatusRelay`) and turns a stop request from any replica into its local stop file.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy
from sqlalchemy.dialects import postgresql

from pneumonet_core.storage import database, schema
from pneumonet_core.training.job_status import ACTIVE_STATES

POOL_VARIABLE = "PNEUMONET_TRAINING_POOL"
POOL_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
JOB_LOCK = 0x504E4D02  # advisory lock key: starting the job of a pool ("PNM\2")
RELAY_INTERVAL_S = 1.0
STALE_AFTER_S = 60.0  # an active job whose machine said nothing for this long is reported failed
JOBS = schema.training_jobs


def enabled() -> bool:
    """Whether the job is shared (a shared database is configured)."""
    return database.is_shared()


def pool() -> str:
    """The pool whose one job this replica sees (`PNEUMONET_TRAINING_POOL`).

    Raises:
        ValueError: The pool name is not 1-64 letters, digits, "-" or "_".
    """
    name = os.environ.get(POOL_VARIABLE, "").strip() or "default"
    if not POOL_PATTERN.fullmatch(name):
        raise ValueError(f"{POOL_VARIABLE} must be 1-64 letters, digits, - or _, got {name!r}")
    return name


def _engine() -> sqlalchemy.Engine:
    engine = database.postgresql_engine(database.database_url())
    with database.transaction(engine) as connection:
        schema.create_tables(connection, schema.TRAINING_TABLES)
    return engine


def claim(job_id: str, values: dict) -> dict | None:
    """Make `job_id` the pool's job unless another is active: returns that job's status (the
    caller refuses the start), or None when this job now holds the pool."""
    with database.transaction(_engine(), lock=JOB_LOCK) as connection:
        current = _row(connection)
        if current is not None and current["state"] in ACTIVE_STATES:
            return current
        row = {"pool": pool(), "job_id": job_id, "status": json.dumps(values)}
        statement = postgresql.insert(JOBS).values(**row, stop_requested=0, heartbeat=time.time())
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["pool"],
                set_={name: statement.excluded[name] for name in row if name != "pool"}
                | {"stop_requested": 0, "heartbeat": time.time()},
            )
        )
    return None


def publish(values: dict) -> None:
    """Store this job's latest status (and the heartbeat), if it is still the pool's job."""
    with database.transaction(_engine()) as connection:
        connection.execute(
            JOBS.update()
            .where(JOBS.c.pool == pool(), JOBS.c.job_id == values.get("job_id"))
            .values(status=json.dumps(values), heartbeat=time.time())
        )


def read() -> dict | None:
    """The pool's job status, or None; an active job without a heartbeat for `STALE_AFTER_S`
    is reported failed (its machine is gone)."""
    with database.reading(_engine()) as connection:
        return _row(connection)


def request_stop(job_id: str) -> None:
    """Ask the pool's job `job_id` to stop, from any replica."""
    with database.transaction(_engine()) as connection:
        connection.execute(
            JOBS.update()
            .where(JOBS.c.pool == pool(), JOBS.c.job_id == job_id)
            .values(stop_requested=1)
        )


def stop_requested(job_id: str) -> bool:
    """Whether a replica asked the job `job_id` to stop."""
    query = sqlalchemy.select(JOBS.c.stop_requested).where(
        JOBS.c.pool == pool(), JOBS.c.job_id == job_id
    )
    with database.reading(_engine()) as connection:
        return bool(connection.execute(query).scalar())


def _row(connection: sqlalchemy.Connection) -> dict | None:
    found = connection.execute(sqlalchemy.select(JOBS).where(JOBS.c.pool == pool())).first()
    if found is None:
        return None
    values = json.loads(found.status)
    silent_s = time.time() - found.heartbeat
    if values.get("state") in ACTIVE_STATES and silent_s > STALE_AFTER_S:
        reason = f"no word from the job's machine for {silent_s:.0f} s (stopped or cut off)"
        values.update(state="failed", error=reason)
    return values


class StatusRelay(threading.Thread):
    """In the training process: publish `read_status()` every second and touch `stop_file`
    when a replica asks the job to stop. A database that does not answer is skipped over."""

    def __init__(self, job_id: str, read_status: Callable[[], dict], stop_file: Path):
        super().__init__(name="pneumonet-job-relay", daemon=True)
        self.job_id, self.read_status, self.stop_file = job_id, read_status, stop_file
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.wait(RELAY_INTERVAL_S):
            try:
                publish(self.read_status())
                if stop_requested(self.job_id):
                    self.stop_file.touch()
            except database.DatabaseError:
                continue
