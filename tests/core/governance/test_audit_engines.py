"""The audit trail on both engines: SQLite under PNEUMONET_HOME and a real PostgreSQL
(`PNEUMONET_DATABASE_URL`, conftest.py's `shared_database`). Each test runs once per engine.
"""

from __future__ import annotations

import pytest
import sqlalchemy
from test_audit import write_at_once

from pneumonet_core.cli import main as cli_main
from pneumonet_core.governance import audit

TRIGGERS_OFF = {
    "sqlite": ("DROP TRIGGER entries_refuse_UPDATE", "DROP TRIGGER entries_refuse_DELETE"),
    "postgresql": ("ALTER TABLE entries DISABLE TRIGGER entries_append_only",),
}


def tamper(engine_name: str, *statements: str) -> None:
    """Change the trail by hand, as someone with write access to the database would."""
    engine = sqlalchemy.create_engine(audit.audit_engine().url, poolclass=sqlalchemy.pool.NullPool)
    with engine.begin() as connection:
        for statement in (*TRIGGERS_OFF[engine_name], *statements):
            connection.exec_driver_sql(statement)
    engine.dispose()


def write_entries(count: int) -> None:
    for index in range(count):
        result = audit.record(
            "predict", source="cli:predict", probability=0.9, details={"index": index}
        )
        assert result.ok and result.entry_id == index + 1


def test_entries_are_recorded_read_and_filtered(database_engine, monkeypatch):
    assert audit.read_entries() == []
    assert audit.verify_chain().intact
    audit.record("sign_in", source="dashboard:Home", user="a@example.org")
    audit.record("predict", source="cli:predict", probability=0.25, ood=True, details={"k": 1})
    entries = audit.read_entries()
    assert [entry["action"] for entry in entries] == ["sign_in", "predict"]
    assert entries[1]["probability"] == 0.25 and entries[1]["ood"] is True
    assert entries[1]["details"] == {"k": 1}
    assert [entry["user"] for entry in audit.read_entries(action="sign_in")] == ["a@example.org"]
    assert audit.read_entries(since="2999-01-01") == []
    report = audit.verify_chain()
    assert report.intact and report.last_id == 2


def test_the_database_itself_refuses_update_and_delete(database_engine):
    write_entries(2)
    engine = sqlalchemy.create_engine(audit.audit_engine().url, poolclass=sqlalchemy.pool.NullPool)
    for statement in ("UPDATE entries SET label = 'x'", "DELETE FROM entries"):
        refused = pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only")
        with refused, engine.begin() as connection:
            connection.exec_driver_sql(statement)
    engine.dispose()
    assert len(audit.read_entries()) == 2


def test_an_edit_is_found_at_the_edited_entry(database_engine):
    write_entries(4)
    tamper(database_engine, "UPDATE entries SET probability = 0.1 WHERE id = 3")
    report = audit.verify_chain()
    assert not report.intact and report.broken_id == 3


def test_removing_the_last_entries_is_found(database_engine):
    write_entries(4)
    tamper(database_engine, "DELETE FROM entries WHERE id >= 3")
    report = audit.verify_chain()
    assert not report.intact and report.broken_id == 3


def test_two_processes_writing_at_once_make_one_chain(database_engine, isolated_state):
    count = 40
    write_at_once(count, isolated_state)
    report = audit.verify_chain()
    assert report.intact, report.message
    assert report.last_id == 2 * count
    written = sorted(
        (entry["details"]["writer"], entry["details"]["index"]) for entry in audit.read_entries()
    )
    assert written == [(writer, index) for writer in (0, 1) for index in range(count)]


def test_the_verify_command_checks_the_configured_database(database_engine, capsys):
    write_entries(3)
    assert cli_main(["audit", "verify"]) == 0
    assert "intact through entry 3" in capsys.readouterr().out
    tamper(database_engine, "UPDATE entries SET label = 'NORMAL' WHERE id = 2")
    assert cli_main(["audit", "verify"]) == 1
    assert "broken at entry 2" in capsys.readouterr().out
