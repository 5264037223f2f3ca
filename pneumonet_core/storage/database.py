"""Where shared state lives: SQLite files under `PNEUMONET_HOME` (the default), or one
PostgreSQL database when `PNEUMONET_DATABASE_URL` names one (several machines, one state).

SQLAlchemy Core on both engines, one schema (`schema.py`). SQLite connections are opened per
use (no pool; WAL, `synchronous=FULL`, `BEGIN IMMEDIATE`), so a SIGKILL never leaves a writer
holding a lock; PostgreSQL connections come from a small per-process pool, checked before use,
so a restarted server is reconnected to.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy
from sqlalchemy import event, exc
from sqlalchemy.pool import NullPool

DATABASE_URL_VARIABLE = "PNEUMONET_DATABASE_URL"
POSTGRESQL_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")
CONNECT_TIMEOUT_SECONDS = 5  # a PostgreSQL that does not answer fails fast, then is retried
DatabaseError = exc.SQLAlchemyError  # what a failed statement or connection raises
TransientError = exc.OperationalError  # locked, busy, server gone: worth another try

READ_ONLY_OPTION = "pneumonet_read_only"

_ENGINES: dict[tuple, sqlalchemy.Engine] = {}


def database_url() -> str | None:
    """The shared database's SQLAlchemy URL (`postgresql+psycopg://...`), or None for SQLite.

    Raises:
        ValueError: `PNEUMONET_DATABASE_URL` is set but is not a PostgreSQL URL.
    """
    value = os.environ.get(DATABASE_URL_VARIABLE, "").strip()
    if not value:
        return None
    if not value.startswith(POSTGRESQL_SCHEMES):
        scheme = value.split(":", 1)[0]
        raise ValueError(f"{DATABASE_URL_VARIABLE} must be a postgresql:// URL, got {scheme!r}")
    return "postgresql+psycopg://" + value.split("://", 1)[1]


def is_shared() -> bool:
    """Whether state lives in the shared PostgreSQL database (else in local SQLite files)."""
    return database_url() is not None


def engine_for(sqlite_path: Path, *, timeout_s: float = 30.0) -> sqlalchemy.Engine:
    """The shared PostgreSQL engine when configured, else the SQLite file `sqlite_path`."""
    url = database_url()
    if url is not None:
        return postgresql_engine(url)
    return sqlite_engine(sqlite_path, timeout_s=timeout_s)


def postgresql_engine(url: str) -> sqlalchemy.Engine:
    """One pooled engine per URL and process (a forked child makes its own)."""
    key = ("postgresql", url, os.getpid())
    if key not in _ENGINES:
        _ENGINES[key] = sqlalchemy.create_engine(
            url,
            pool_pre_ping=True,
            pool_size=2,
            max_overflow=4,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
    return _ENGINES[key]


def dispose_engines() -> None:
    """Close every pooled connection of this process (e.g. before a database is dropped)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


def sqlite_engine(path: Path, *, timeout_s: float = 30.0) -> sqlalchemy.Engine:
    """An engine on one SQLite file: WAL, `synchronous=FULL`, each transaction `BEGIN IMMEDIATE`
    (writers take turns instead of failing at commit), a connection per use."""
    key = ("sqlite", str(path), timeout_s)
    if key not in _ENGINES:
        engine = sqlalchemy.create_engine(
            f"sqlite:///{path}",
            poolclass=NullPool,
            creator=lambda: sqlite3.connect(path, timeout=timeout_s),
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        _ENGINES[key] = engine
    return _ENGINES[key]


def _sqlite_on_connect(connection: sqlite3.Connection, _record) -> None:
    connection.isolation_level = None  # SQLAlchemy's "begin" event below starts transactions
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")


def _sqlite_on_begin(connection: sqlalchemy.Connection) -> None:
    reading = connection.get_execution_options().get(READ_ONLY_OPTION, False)
    connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


def is_postgresql(connection: sqlalchemy.Connection | sqlalchemy.Engine) -> bool:
    """Whether `connection` talks to PostgreSQL."""
    return connection.dialect.name == "postgresql"


@contextmanager
def transaction(engine: sqlalchemy.Engine, lock: int | None = None) -> Iterator:
    """A write transaction, committed on leaving, rolled back on an exception.

    Args:
        engine: From `engine_for`.
        lock: On PostgreSQL, a transaction-level advisory lock key taken first
            (`pg_advisory_xact_lock`): writers with the same key take turns, and the lock ends
            with the transaction, even when the writer is killed. On SQLite `BEGIN IMMEDIATE`
            already serialises every writer.
    """
    with engine.begin() as connection:
        if lock is not None and is_postgresql(connection):
            connection.execute(sqlalchemy.select(sqlalchemy.func.pg_advisory_xact_lock(lock)))
        yield connection


@contextmanager
def reading(engine: sqlalchemy.Engine) -> Iterator:
    """A read-only connection: on SQLite a deferred transaction, so readers never wait for
    writers (WAL), and nothing is written."""
    with engine.connect().execution_options(**{READ_ONLY_OPTION: True}) as connection:
        yield connection
        connection.rollback()


def original_error(error: BaseException) -> BaseException:
    """The driver's exception inside SQLAlchemy's wrapper (e.g. sqlite3's "database is locked")."""
    return getattr(error, "orig", None) or error


def describe_error(error: BaseException) -> str:
    """ "ErrorType: first line of the message" of the driver's error, without the SQL."""
    original = original_error(error)
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0] if text else ''}".strip()
