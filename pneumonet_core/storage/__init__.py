"""Shared state on one of two engines: SQLite files under `PNEUMONET_HOME` (the default) or one
PostgreSQL database (`PNEUMONET_DATABASE_URL`), through SQLAlchemy Core and one schema.

Order inside: `database` <- `schema`.
"""

from pneumonet_core.storage import database, schema
from pneumonet_core.storage.database import (
    DATABASE_URL_VARIABLE,
    DatabaseError,
    TransientError,
    database_url,
    describe_error,
    engine_for,
    is_shared,
)

__all__ = [
    "DATABASE_URL_VARIABLE",
    "DatabaseError",
    "TransientError",
    "database",
    "database_url",
    "describe_error",
    "engine_for",
    "is_shared",
    "schema",
]
