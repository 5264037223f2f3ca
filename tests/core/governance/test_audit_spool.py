"""Shared database down: predictions go on, their audit entries wait in a local spool and land
in the chain in order and once when PostgreSQL is back (a real server, stopped and started)."""

from __future__ import annotations

import shutil

import pytest

from pneumonet_core.governance import audit, audit_spool
from pneumonet_core.storage import database


@pytest.fixture
def own_postgresql(postgresql_server, monkeypatch):
    """A PostgreSQL of this test's own (it is stopped and started), as PNEUMONET_DATABASE_URL."""
    from pneumonet_testing.postgresql import start_postgresql

    server = start_postgresql()
    monkeypatch.setenv("PNEUMONET_DATABASE_URL", server.create_database("spool"))
    yield server
    database.dispose_engines()
    server.stop()
    server.remove()


def record(index: int) -> audit.AuditResult:
    return audit.record("predict", source="cli:predict", probability=0.5, details={"n": index})


def numbers() -> list[int]:
    return [entry["details"]["n"] for entry in audit.read_entries(action="predict")]


def test_entries_written_during_an_outage_land_in_order_and_once(own_postgresql, monkeypatch):
    monkeypatch.setattr(audit, "FIRST_BACKOFF_SECONDS", 0.01)
    assert all(record(index).ok for index in (0, 1))
    own_postgresql.stop()

    during = [record(index) for index in (2, 3, 4)]
    assert all(result.ok and result.pending and result.entry_id is None for result in during)
    assert audit_spool.pending() == 3
    kept = audit_spool.spool_path().with_suffix(".copy")
    shutil.copy(audit_spool.spool_path(), kept)

    own_postgresql.start()
    after = record(5)
    assert after.ok and not after.pending and after.entry_id == 6
    assert numbers() == [0, 1, 2, 3, 4, 5]
    assert audit_spool.pending() == 0 and not audit_spool.spool_path().exists()

    shutil.copy(kept, audit_spool.spool_path())  # as if killed before the spool was removed
    assert audit_spool.flush(audit.audit_engine()) == 0
    assert numbers() == [0, 1, 2, 3, 4, 5]
    report = audit.verify_chain()
    assert report.intact and report.last_id == 6


def test_without_a_shared_database_a_failed_write_is_not_spooled(isolated_state):
    (isolated_state / "audit.sqlite").write_bytes(b"not a database " * 100)
    result = record(0)
    assert not result.ok and not result.pending
    assert not audit_spool.spool_path().exists()
