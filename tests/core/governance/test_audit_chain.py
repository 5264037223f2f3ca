"""audit chain: an entry edited, removed, inserted or replaced by hand is found, at that entry.

Each tampering is done as someone with write access to the database would: with `sqlite3`,
dropping the append-only triggers first where they stand in the way. Every test runs with its
own `PNEUMONET_HOME` (conftest.py's `isolated_state`).
"""

from __future__ import annotations

import signal
import sqlite3
from contextlib import closing

import pytest
from test_audit import CHILD_TIMEOUT_SECONDS, WRITER_SCRIPT, child, write_at_once

from pneumonet_core.cli import main as cli_main
from pneumonet_core.governance import audit, audit_chain

ENTRIES = 5
PRE_CHAIN_TABLE = """CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,
user TEXT NOT NULL, action TEXT NOT NULL, source TEXT NOT NULL, model_version TEXT,
model_sha256 TEXT, image_sha256 TEXT, probability REAL, label TEXT, threshold REAL,
ood INTEGER, details TEXT)"""  # the audit trail's table before the hash chain


@pytest.fixture
def five_entries(isolated_state) -> None:
    """Entries 1 to 5: predictions of 0.9, PNEUMONIA."""
    for index in range(ENTRIES):
        result = audit.record(
            "predict",
            source="cli:predict",
            probability=0.9,
            label="PNEUMONIA",
            details={"index": index},
        )
        assert result.ok and result.entry_id == index + 1
    assert audit.verify_chain().intact


def tamper(*statements: str, parameters: tuple = ()) -> None:
    """Run statements by hand on the audit database, as one commit."""
    with closing(sqlite3.connect(audit.audit_path())) as connection:
        for statement in statements:
            connection.execute(statement, parameters if "?" in statement else ())
        connection.commit()


def stored_row(entry_id: int) -> dict:
    with closing(sqlite3.connect(audit.audit_path())) as connection:
        connection.row_factory = sqlite3.Row
        query = f"SELECT {', '.join(audit.STORED)} FROM entries WHERE id = ?"
        return dict(connection.execute(query, (entry_id,)).fetchone())


def insert_row(row: dict, verb: str = "INSERT") -> None:
    statement = f"{verb} INTO entries ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
    tamper(statement, parameters=tuple(row.values()))


def broken_at() -> tuple[int | None, str]:
    report = audit.verify_chain()
    assert not report.intact
    return report.broken_id, report.message


def test_an_intact_chain_names_its_last_entry_and_hash(five_entries):
    report = audit.verify_chain()
    assert report.message.startswith(f"audit chain intact through entry {ENTRIES} (hash ")
    assert report.last_hash == stored_row(ENTRIES)["entry_hash"]
    assert stored_row(1)["prev_hash"] == audit_chain.GENESIS_HASH
    assert stored_row(2)["prev_hash"] == stored_row(1)["entry_hash"]


def test_no_trail_is_intact_and_creates_nothing(isolated_state):
    assert audit.verify_chain().message == "audit chain intact: no entries yet"
    assert not audit.audit_path().exists()


def test_an_edit_is_found_at_the_edited_entry(five_entries):
    tamper(
        "DROP TRIGGER entries_refuse_UPDATE",
        "UPDATE entries SET probability = 0.1, label = 'NORMAL' WHERE id = 3",
    )
    entry_id, message = broken_at()
    assert entry_id == 3 and "edited or replaced" in message


def test_a_removed_entry_is_found(five_entries):
    tamper("DROP TRIGGER entries_refuse_DELETE", "DELETE FROM entries WHERE id = 2")
    entry_id, message = broken_at()
    assert entry_id == 2 and "removed" in message


def test_removing_the_last_entries_is_found(five_entries):
    tamper("DROP TRIGGER entries_refuse_DELETE", "DELETE FROM entries WHERE id >= 4")
    assert broken_at()[0] == 4


def test_removing_the_first_entry_and_renumbering_is_found(five_entries):
    rows = [stored_row(entry_id) for entry_id in range(2, ENTRIES + 1)]
    tamper("DROP TRIGGER entries_refuse_DELETE", "DELETE FROM entries")
    for new_id, row in enumerate(rows, start=1):
        insert_row({**row, "id": new_id})
    entry_id, message = broken_at()
    assert entry_id == 1 and "genesis" in message


def test_insert_or_replace_is_refused_by_sqlite(five_entries):
    row = {**stored_row(3), "probability": 0.1, "label": "NORMAL"}
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        insert_row(row, "INSERT OR REPLACE")
    assert stored_row(3)["label"] == "PNEUMONIA" and audit.verify_chain().intact


def test_insert_or_replace_with_the_trigger_dropped_is_found_at_that_entry(five_entries):
    row = {**stored_row(3), "probability": 0.1, "label": "NORMAL"}
    tamper("DROP TRIGGER entries_refuse_reused_id")
    insert_row(row, "INSERT OR REPLACE")
    assert stored_row(3)["label"] == "NORMAL"
    entry_id, message = broken_at()
    assert entry_id == 3 and "edited or replaced" in message


def test_a_replacement_with_a_freshly_computed_hash_is_found_at_that_entry(five_entries):
    forged = {**stored_row(3), "probability": 0.1, "label": "NORMAL"}
    forged["entry_hash"] = audit_chain.entry_hash(forged, forged["prev_hash"])
    tamper(
        "DROP TRIGGER entries_refuse_DELETE",
        "DROP TRIGGER entries_refuse_reused_id",
        "DELETE FROM entries WHERE id = 3",
    )
    insert_row(forged)
    entry_id, message = broken_at()
    assert entry_id == 3 and "inserted or replaced" in message


def test_an_entry_inserted_in_the_middle_is_found_at_that_entry(five_entries):
    later = [stored_row(entry_id) for entry_id in (4, 5)]
    forged = {**later[0], "id": 4, "probability": 0.2, "label": "NORMAL"}
    forged["prev_hash"] = stored_row(3)["entry_hash"]
    forged["entry_hash"] = audit_chain.entry_hash(forged, forged["prev_hash"])
    tamper(
        "DROP TRIGGER entries_refuse_DELETE",
        "DROP TRIGGER entries_refuse_reused_id",
        "DELETE FROM entries WHERE id >= 4",
    )
    insert_row(forged)
    for new_id, row in enumerate(later, start=5):  # the old 4 and 5 become 5 and 6
        insert_row({**row, "id": new_id})
    entry_id, message = broken_at()
    assert entry_id == 4 and "inserted or replaced" in message


def test_a_dropped_trigger_is_back_at_the_next_write_and_the_removal_stays_found(five_entries):
    tamper("DROP TRIGGER entries_refuse_DELETE", "DELETE FROM entries WHERE id = 2")
    assert audit.record("sign_in", source="cli:test").ok  # re-creates the trigger

    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        tamper("DELETE FROM entries WHERE id = 3")
    assert broken_at()[0] == 2


def test_a_removed_last_entry_leaves_a_gap_before_the_next_write(five_entries):
    tamper("DROP TRIGGER entries_refuse_DELETE", "DELETE FROM entries WHERE id = 5")
    result = audit.record("sign_in", source="cli:test")
    assert result.entry_id == 6  # the removed id is never given again
    assert broken_at()[0] == 5


def test_a_trail_written_before_the_chain_is_chained_at_the_next_write(isolated_state):
    audit.audit_path().parent.mkdir(parents=True, exist_ok=True)
    tamper(PRE_CHAIN_TABLE)
    for day, user in (("2024-01-01", "a"), ("2024-01-02", "b")):
        insert_row({"time": day, "user": user, "action": "sign_in", "source": "cli:test"})
    assert not audit.verify_chain().intact  # not chained yet

    assert audit.record("promote", source="cli:test", model_version="v2").ok

    report = audit.verify_chain()
    assert report.intact and report.last_id == 3
    assert [entry["user"] for entry in audit.read_entries()][:2] == ["a", "b"]
    tamper("DROP TRIGGER entries_refuse_UPDATE", "UPDATE entries SET user = 'c' WHERE id = 1")
    assert broken_at()[0] == 1


def test_the_chain_survives_sigkill_mid_write(isolated_state):
    process = child(
        WRITER_SCRIPT.format(wait_for_go=False, count=1_000_000, writer=0), isolated_state
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        for _ in range(40):
            line = process.stdout.readline().strip()
            assert line.isdigit(), line + process.stderr.read()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=CHILD_TIMEOUT_SECONDS)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()

    assert process.returncode == -signal.SIGKILL
    report = audit.verify_chain()
    assert report.intact and report.last_id >= 40, report.message
    assert audit.record("sign_in", source="cli:test").ok
    assert audit.verify_chain().intact


def test_two_processes_writing_at_once_make_one_chain(isolated_state):
    count = 30
    write_at_once(count, isolated_state)
    report = audit.verify_chain()
    assert report.intact and report.last_id == 2 * count, report.message


def test_the_verify_command_exits_0_when_intact_and_1_at_a_break(five_entries, capsys):
    assert cli_main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith(f"audit chain intact through entry {ENTRIES} ")

    tamper("DROP TRIGGER entries_refuse_DELETE", "DELETE FROM entries WHERE id = 4")
    assert cli_main(["audit", "verify"]) == 1
    output = capsys.readouterr().out
    assert output.startswith("audit chain broken at entry 4: it was removed")
    assert len(output.splitlines()) == 1


def test_the_verify_command_names_a_damaged_database_in_one_line(isolated_state, capsys):
    audit.audit_path().write_bytes(b"this is not an SQLite database, " * 200)
    assert cli_main(["audit", "verify"]) == 1
    output = capsys.readouterr().out
    assert output == "audit chain not verified: DatabaseError: file is not a database\n"
