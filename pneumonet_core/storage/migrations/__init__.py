"""The shared PostgreSQL schema's migrations (Alembic): `upgrade(connection)` brings a database
to the newest revision inside the caller's transaction. A schema change is a new file in
`versions/` (`alembic revision`), never an edit of an applied one."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
from alembic import command
from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(connection: sqlalchemy.Connection | None = None) -> Config:
    """Alembic's configuration for this package's migrations (no alembic.ini needed)."""
    settings = Config()
    settings.set_main_option("script_location", str(SCRIPT_LOCATION))
    settings.attributes["connection"] = connection
    return settings


def upgrade(connection: sqlalchemy.Connection, revision: str = "head") -> None:
    """Migrate the database of `connection` to `revision` (the newest by default)."""
    command.upgrade(alembic_config(connection), revision)


def current_revision(connection: sqlalchemy.Connection) -> str | None:
    """The database's revision, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
