"""Where the audit trail's rows are stored: `entries` in SQLite (`audit.sqlite`) or in the shared
PostgreSQL database, through `storage`. One write is one transaction that reads the last entry,
chains the new one to it and inserts it; writers take turns (SQLite: `BEGIN IMMEDIATE`;
PostgreSQL: the transaction-level advisory lock `AUDIT_LOCK`), so concurrent writers on any
number of machines never fork the chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy

from pneumonet_core.governance import audit_chain
from pneumonet_core.storage import database, schema

AUDIT_LOCK = 0x504E4D01  # advisory lock key: appends to the audit chain ("PNM\1")
ENTRIES = schema.audit_entries
APPEND_ONLY_TRIGGER = """CREATE TRIGGER IF NOT EXISTS entries_refuse_{event} BEFORE {event}
ON entries BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END"""
# An id is given once: INSERT OR REPLACE, or an INSERT below the last id, is refused.
NEW_ID_TRIGGER = """CREATE TRIGGER IF NOT EXISTS entries_refuse_reused_id BEFORE INSERT
ON entries WHEN NEW.id <= (SELECT coalesce(max(id), 0) FROM entries)
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only: an id is never reused'); END"""
SQLITE_TRIGGERS = (  # re-created at every write: a dropped trigger is back at the next one
    *(APPEND_ONLY_TRIGGER.format(event=event) for event in ("UPDATE", "DELETE")),
    NEW_ID_TRIGGER,
)
SEQUENCE = "pg_get_serial_sequence('entries', 'id')"


def insert(engine: sqlalchemy.Engine, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> int:
    """Commit the rows in one transaction, each chained to the entry before; return the last
    one's id."""
    with database.transaction(engine, lock=AUDIT_LOCK) as connection:
        if not database.is_postgresql(connection):
            _migrate_to_chain(connection, fields)
        schema.create_tables(connection, schema.AUDIT_TABLES)
        return [append_in(connection, row) for row in rows][-1]


def append_in(connection: sqlalchemy.Connection, row: dict[str, Any]) -> int:
    """Chain `row` to the last entry inside the caller's transaction (which holds the
    writers' turn: `BEGIN IMMEDIATE` or `AUDIT_LOCK`); return its id."""
    postgresql = database.is_postgresql(connection)
    if not postgresql:
        for statement in SQLITE_TRIGGERS:
            connection.exec_driver_sql(statement)
    last = connection.execute(
        sqlalchemy.select(ENTRIES.c.id, ENTRIES.c.entry_hash).order_by(ENTRIES.c.id.desc())
    ).first()
    last_id, last_hash = last or (0, audit_chain.GENESIS_HASH)
    entry_id = max(last_id, highest_id_issued(connection)) + 1  # a removed id stays a gap
    chained = {"id": entry_id, **row, "prev_hash": last_hash}
    chained["entry_hash"] = audit_chain.entry_hash(chained, last_hash)
    connection.execute(ENTRIES.insert().values(**chained))
    if postgresql:  # the sequence remembers the highest id, as sqlite_sequence does
        connection.exec_driver_sql(f"SELECT setval({SEQUENCE}, %(id)s)", {"id": entry_id})
    return entry_id


def has_entries_table(connection: sqlalchemy.Connection) -> bool:
    """Whether the trail exists (a first write that failed may leave no table)."""
    return sqlalchemy.inspect(connection).has_table(ENTRIES.name)


def select_rows(
    connection: sqlalchemy.Connection, columns: tuple[str, ...], filters: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """Rows of `columns` matching every (column, operator) filter, by time then id."""
    operators = {"since": "__ge__", "until": "__lt__", "user": "__eq__", "action": "__eq__"}
    targets = {"since": "time", "until": "time", "user": "user", "action": "action"}
    query = sqlalchemy.select(*(ENTRIES.c[name] for name in columns))
    for name, value in filters.items():
        query = query.where(getattr(ENTRIES.c[targets[name]], operators[name])(value))
    query = query.order_by(ENTRIES.c.time, ENTRIES.c.id)
    return (dict(row) for row in connection.execute(query).mappings())


def chain_rows(connection: sqlalchemy.Connection, columns: tuple[str, ...]) -> Iterator[dict]:
    """Every row of `columns`, in id order (for `audit_chain.verify_rows`)."""
    query = sqlalchemy.select(*(ENTRIES.c[name] for name in columns)).order_by(ENTRIES.c.id)
    return (dict(row) for row in connection.execute(query).mappings())


def is_chained(connection: sqlalchemy.Connection) -> bool:
    """Whether the trail has its hash-chain columns (SQLite trails from before the chain lack
    them until their next write)."""
    columns = {column["name"] for column in sqlalchemy.inspect(connection).get_columns("entries")}
    return "entry_hash" in columns


def highest_id_issued(connection: sqlalchemy.Connection) -> int:
    """The highest id ever given (0 before the first): SQLite's `sqlite_sequence`, or the
    PostgreSQL sequence of `entries.id`."""
    if database.is_postgresql(connection):
        query = f"SELECT coalesce(pg_sequence_last_value({SEQUENCE}::regclass), 0)"
        return connection.exec_driver_sql(query).scalar() or 0
    found = connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
    if not found.first():
        return 0
    sequence = connection.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = 'entries'")
    return (sequence.first() or (0,))[0] or 0


def _migrate_to_chain(connection: sqlalchemy.Connection, fields: tuple[str, ...]) -> None:
    """Give an SQLite trail written before the hash chain its two columns, and chain its
    entries in id order, once, inside the caller's transaction."""
    columns = {row[1] for row in connection.exec_driver_sql("PRAGMA table_info(entries)")}
    if not columns or "entry_hash" in columns:
        return  # no table yet (created with the columns), or already chained
    for column in audit_chain.CHAIN_FIELDS:
        connection.exec_driver_sql(f"ALTER TABLE entries ADD COLUMN {column} TEXT")
    connection.exec_driver_sql("DROP TRIGGER IF EXISTS entries_refuse_UPDATE")  # re-created
    previous_hash = audit_chain.GENESIS_HASH
    rows = connection.exec_driver_sql(f"SELECT {', '.join(fields)} FROM entries ORDER BY id")
    for row in list(rows.mappings()):
        current = audit_chain.entry_hash(dict(row), previous_hash)
        connection.execute(
            ENTRIES.update().where(ENTRIES.c.id == row["id"]),
            {"prev_hash": previous_hash, "entry_hash": current},
        )
        previous_hash = current
