"""The shared PostgreSQL schema's migrations (Alembic): `upgrade(connection)` brings a database
to the newest revision inside the caller's transaction. A schema change is a new file in
`versions/` (`alembic revision`), never an edit of an applied one."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

SCRIPT_LOCATION = Path(__file__).resolve().parent
# Alembic's `context` and `op` are process-wide: one migration at a time in this process.
_MIGRATING = threading.Lock()


def alembic_config(connection: sqlalchemy.Connection | None = None) -> Config:
    """Alembic's configuration for this package's migrations (no alembic.ini needed)."""
    settings = Config()
    settings.set_main_option("script_location", str(SCRIPT_LOCATION))
    settings.attributes["connection"] = connection
    return settings


@functools.cache
def head_revision() -> str:
    """The newest revision in `versions/`."""
    return ScriptDirectory(str(SCRIPT_LOCATION)).get_current_head()


def upgrade(connection: sqlalchemy.Connection, revision: str = "head") -> None:
    """Migrate the database of `connection` to `revision` (the newest by default). A database
    already at the newest revision is only read: Alembic's process-wide machinery (which
    MLflow's own store also uses) runs only when there is something to migrate."""
    with _MIGRATING:
        if revision == "head" and current_revision(connection) == head_revision():
            return
        command.upgrade(alembic_config(connection), revision)


def current_revision(connection: sqlalchemy.Connection) -> str | None:
    """The database's revision, or None before the first migration."""
    return MigrationContext.configure(connection).get_current_revision()
