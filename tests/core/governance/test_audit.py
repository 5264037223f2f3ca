"""audit: an append-only trail that survives SIGKILL, concurrent writers and a locked database.

Every test runs with its own `PNEUMONET_HOME` (the `isolated_state` fixture of conftest.py).
The subprocess tests use only the audit module (no TensorFlow), so they start quickly.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pneumonet_core.governance import audit

PROJECT_ROOT = Path(__file__).resolve().parents[3]
IMAGE_HASH = hashlib.sha256(b"synthetic image bytes").hexdigest()
MODEL_HASH = hashlib.sha256(b"synthetic model bytes").hexdigest()
CHILD_TIMEOUT_SECONDS = 60


@pytest.fixture
def quick_retries(monkeypatch):
    """Short lock waits and backoffs, so a locked database fails in well under a second."""
    monkeypatch.setattr(audit, "WRITE_ATTEMPTS", 3)
    monkeypatch.setattr(audit, "FIRST_BACKOFF_SECONDS", 0.001)
    monkeypatch.setattr(audit, "LOCK_TIMEOUT_SECONDS", 0.05)


@pytest.fixture
def clock(monkeypatch):
    """Set the time of the next entries: `clock("2024-05-01T10:00:00")`."""

    def set_time(text: str) -> None:
        moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
        monkeypatch.setattr(audit, "_utc_now", lambda: moment)

    return set_time


def hold_write_lock() -> sqlite3.Connection:
    """Another connection that holds the audit database's write lock until rolled back."""
    blocker = sqlite3.connect(audit.audit_path(), isolation_level=None, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    return blocker


def child(script: str, home: Path) -> subprocess.Popen:
    """A Python process running `script` with the test's PNEUMONET_HOME, lines on stdout."""
    environment = {**os.environ, "PNEUMONET_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# --- recording and reading ---------------------------------------------------------------------


def test_a_prediction_is_recorded_with_every_field(isolated_state):
    result = audit.record(
        "predict",
        source="dashboard:Predict",
        user="clinician@example.org",
        model_version="v3",
        model_sha256=MODEL_HASH,
        image_sha256=IMAGE_HASH,
        probability=0.87,
        label="PNEUMONIA",
        threshold=0.42,
        ood=False,
        details={"image_size": 224, "tta": True},
    )

    assert result.ok and result.error is None and result.attempts == 1
    assert audit.audit_path() == isolated_state / "audit.sqlite"
    [entry] = audit.read_entries()
    assert entry["id"] == result.entry_id
    assert datetime.fromisoformat(entry["time"]).utcoffset().total_seconds() == 0
    assert {key: value for key, value in entry.items() if key not in ("id", "time")} == {
        "user": "clinician@example.org",
        "action": "predict",
        "source": "dashboard:Predict",
        "model_version": "v3",
        "model_sha256": MODEL_HASH,
        "image_sha256": IMAGE_HASH,
        "probability": 0.87,
        "label": "PNEUMONIA",
        "threshold": 0.42,
        "ood": False,
        "details": {"image_size": 224, "tta": True},
    }


def test_the_user_is_the_signed_in_email_else_the_operating_system_user(monkeypatch):
    monkeypatch.setattr(audit.getpass, "getuser", lambda: "radiographer7")
    audit.record("train_start", source="cli:train", details={"epochs": 5})
    audit.record("sign_in", source="dashboard:Sign in", user="lead@example.org")

    def no_login_name():
        raise OSError("no user name")

    monkeypatch.setattr(audit.getpass, "getuser", no_login_name)
    audit.record("train_end", source="cli:train")

    assert [entry["user"] for entry in audit.read_entries()] == [
        "radiographer7",
        "lead@example.org",
        "unknown",
    ]


def test_numpy_values_from_a_model_are_accepted():
    numpy = pytest.importorskip("numpy")
    result = audit.record(
        "predict", source="cli:predict", probability=numpy.float32(0.25), ood=numpy.bool_(True)
    )
    assert result.ok
    [entry] = audit.read_entries()
    assert entry["probability"] == pytest.approx(0.25) and entry["ood"] is True


@pytest.mark.parametrize(
    ("arguments", "bad_value"),
    [
        ({"action": "delete_everything"}, "delete_everything"),
        ({"source": "dashboard/Predict"}, "dashboard/Predict"),
        ({"source": "Predict page"}, "Predict page"),
        ({"model_version": "/models/best.keras"}, "/models/best.keras"),
        ({"image_sha256": "IM-0001-0001.jpeg"}, "IM-0001-0001.jpeg"),
        ({"model_sha256": MODEL_HASH.upper()}, MODEL_HASH.upper()),
        ({"label": "C:\\scans\\person1_virus_6.jpeg"}, "person1_virus_6.jpeg"),
        ({"probability": 1.5}, "1.5"),
        ({"probability": float("nan")}, "nan"),
        ({"threshold": "0.5"}, "'0.5'"),
        ({"details": {"file_name": "scan.dcm"}}, "file_name"),
        ({"details": {"PatientID": 3}}, "PatientID"),
        ({"details": {"patient_age": 3}}, "patient_age"),
        ({"details": {"note": "/data/chest_xray/x.jpeg"}}, "/data/chest_xray/x.jpeg"),
        ({"details": {"pixels": [0, 1]}}, "pixels"),
        ({"details": {"loss": float("inf")}}, "inf"),
        ({"details": {f"value_{index}": index for index in range(17)}}, "value_16"),
    ],
)
def test_malformed_or_identifying_values_are_refused_and_nothing_is_written(arguments, bad_value):
    values = {"action": "predict", "source": "cli:predict", **arguments}
    with pytest.raises(ValueError) as raised:
        audit.record(values.pop("action"), **values)
    assert bad_value in str(raised.value)
    assert not audit.audit_path().exists()


def test_record_takes_no_file_name_path_or_pixels():
    for name in inspect.signature(audit.record).parameters:
        assert not any(word in name for word in ("file", "path", "name", "pixel")), name


def test_the_api_offers_no_update_or_delete():
    public = [name for name in vars(audit) if not name.startswith("_")]
    for word in ("update", "delete", "remove", "edit", "clear"):
        assert not [name for name in public if word in name.lower()], word


def test_sqlite_itself_refuses_update_and_delete():
    audit.record("promote", source="dashboard:Models", model_version="v2")
    connection = sqlite3.connect(audit.audit_path())
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            connection.execute("UPDATE entries SET user = 'someone else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            connection.execute("DELETE FROM entries")
        connection.rollback()
    finally:
        connection.close()
    [entry] = audit.read_entries()
    assert entry["model_version"] == "v2" and entry["user"] != "someone else"


def test_every_write_uses_the_wal_journal_and_full_synchronous_commits(monkeypatch):
    statements = []
    real_connect = sqlite3.connect

    def traced_connect(*arguments, **options):
        connection = real_connect(*arguments, **options)
        connection.set_trace_callback(statements.append)
        return connection

    with monkeypatch.context() as patch:  # not `undo`: that would drop the isolated home too
        patch.setattr(audit.sqlite3, "connect", traced_connect)
        assert audit.record("set_threshold", source="dashboard:Models", threshold=0.3).ok

    normalized = [statement.replace(" ", "").upper() for statement in statements]
    assert "PRAGMAJOURNAL_MODE=WAL" in normalized
    synchronous = normalized.index("PRAGMASYNCHRONOUS=FULL")
    assert synchronous < normalized.index("COMMIT")
    with closing(sqlite3.connect(audit.audit_path())) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reading_without_an_audit_trail_creates_nothing():
    assert audit.read_entries() == []
    assert audit.read_entries(since="2024-01-01", action="predict") == []
    assert not audit.audit_path().exists()


def test_entries_are_filtered_and_ordered_by_time(clock):
    for time_text, action, user in [
        ("2024-05-03T09:00:00", "predict", "b@example.org"),
        ("2024-05-01T09:00:00", "sign_in", "a@example.org"),
        ("2024-05-02T23:30:00", "predict", "a@example.org"),
        ("2024-05-02T00:00:00", "rollback", "b@example.org"),
    ]:
        clock(time_text)
        assert audit.record(action, source="cli:test", user=user).ok

    def times(**filters) -> list[str]:
        return [entry["time"][:19] for entry in audit.read_entries(**filters)]

    assert times() == [
        "2024-05-01T09:00:00",
        "2024-05-02T00:00:00",
        "2024-05-02T23:30:00",
        "2024-05-03T09:00:00",
    ]
    assert times(since="2024-05-02") == times()[1:]  # a date means its midnight, UTC
    assert times(until="2024-05-02") == times()[:1]  # until is exclusive
    assert times(since="2024-05-02T01:00:00+02:00") == times()[1:]  # 2024-05-01T23:00Z
    assert times(since="2024-05-02T00:00:01") == times()[2:]
    assert times(user="a@example.org") == ["2024-05-01T09:00:00", "2024-05-02T23:30:00"]
    assert times(action="predict", user="b@example.org") == ["2024-05-03T09:00:00"]
    with pytest.raises(ValueError, match="erase"):
        audit.read_entries(action="erase")
    with pytest.raises(ValueError, match="last tuesday"):
        audit.read_entries(since="last tuesday")


# --- export ------------------------------------------------------------------------------------


def write_three_entries(clock) -> None:
    clock("2024-05-01T08:00:00")
    audit.record("sign_in", source="dashboard:Sign in", user="a@example.org")
    clock("2024-05-02T08:00:00")
    audit.record(
        "predict",
        source="cli:predict",
        image_sha256=IMAGE_HASH,
        probability=0.9,
        label="PNEUMONIA",
        threshold=0.5,
        ood=True,
    )
    clock("2024-05-03T08:00:00")
    audit.record("train_stop", source="job:train", details={"run_id": "ab12", "epoch": 3})


def test_export_writes_json_lines(clock):
    write_three_entries(clock)
    entries = audit.read_entries()
    stream = io.StringIO()

    assert audit.export(entries, "jsonl", stream) == 3

    lines = stream.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == entries
    assert list(json.loads(lines[0])) == list(audit.FIELDS)


def test_export_writes_csv_with_a_header(clock):
    write_three_entries(clock)
    stream = io.StringIO()

    assert audit.export(audit.read_entries(), "csv", stream) == 3

    stream.seek(0)
    reader = csv.DictReader(stream)
    assert tuple(reader.fieldnames) == audit.FIELDS
    rows = list(reader)
    assert [row["action"] for row in rows] == ["sign_in", "predict", "train_stop"]
    assert rows[0]["image_sha256"] == "" and rows[0]["details"] == ""
    assert rows[1]["image_sha256"] == IMAGE_HASH and float(rows[1]["probability"]) == 0.9
    assert json.loads(rows[2]["details"]) == {"run_id": "ab12", "epoch": 3}


def test_export_refuses_an_unknown_format():
    with pytest.raises(ValueError, match="xml"):
        audit.export([], "xml", io.StringIO())


def test_export_command_keeps_entries_since_the_date(clock):
    write_three_entries(clock)
    stream = io.StringIO()

    assert audit.export_command("2024-05-02", "jsonl", stream) == 0

    actions = [json.loads(line)["action"] for line in stream.getvalue().splitlines()]
    assert actions == ["predict", "train_stop"]
    everything = io.StringIO()
    assert audit.export_command(None, "csv", everything) == 0
    assert len(everything.getvalue().splitlines()) == 1 + 3


@pytest.mark.parametrize(("since", "format"), [("yesterday", "jsonl"), ("2024-05-01", "pdf")])
def test_export_command_names_a_bad_date_or_format(since, format):
    with pytest.raises(ValueError) as raised:
        audit.export_command(since, format, io.StringIO())
    assert repr(since if since == "yesterday" else format) in str(raised.value)


def test_sha256_helpers_agree_and_stream_a_large_file(tmp_path):
    assert audit.sha256_of_bytes(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "model.keras"
    path.write_bytes(data)
    assert audit.sha256_of_file(path) == audit.sha256_of_bytes(data)
    assert audit.sha256_of_file(str(path)) == hashlib.sha256(data).hexdigest()


# --- a failed audit write never loses the prediction -------------------------------------------


def predict_and_audit() -> tuple[float, audit.AuditResult]:
    """What a caller's prediction path does: compute, record, and hand back the value."""
    probability = 0.87
    result = audit.record("predict", source="cli:predict", probability=probability)
    return probability, result


def test_a_locked_database_is_reported_and_the_prediction_kept(quick_retries, caplog):
    assert audit.record("sign_in", source="cli:test").ok
    blocker = hold_write_lock()
    try:
        with caplog.at_level(logging.WARNING, logger="pneumonet_core.governance.audit"):
            probability, result = predict_and_audit()
    finally:
        blocker.rollback()
        blocker.close()

    assert probability == 0.87
    assert not result.ok and result.entry_id is None
    assert "locked" in result.error and result.attempts == 3
    assert "audit write failed" in caplog.text
    assert [entry["action"] for entry in audit.read_entries()] == ["sign_in"]


def test_a_lock_released_during_the_retries_ends_with_the_entry_written(quick_retries, monkeypatch):
    assert audit.record("sign_in", source="cli:test").ok
    blocker = hold_write_lock()
    backoffs = []

    def release_during_backoff(seconds: float) -> None:
        backoffs.append(seconds)
        if blocker.in_transaction:
            blocker.rollback()

    monkeypatch.setattr(audit.time, "sleep", release_during_backoff)
    try:
        probability, result = predict_and_audit()
    finally:
        blocker.close()

    assert backoffs == [0.001]
    assert result.ok and result.attempts == 2
    assert [entry["probability"] for entry in audit.read_entries(action="predict")] == [0.87]


def test_an_unwritable_home_is_reported_without_raising(monkeypatch, tmp_path, caplog):
    not_a_folder = tmp_path / "home-is-a-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("PNEUMONET_HOME", str(not_a_folder))

    with caplog.at_level(logging.WARNING, logger="pneumonet_core.governance.audit"):
        probability, result = predict_and_audit()

    assert probability == 0.87
    assert not result.ok and result.attempts == 1  # no point in retrying
    assert "Error" in result.error and "audit write failed" in caplog.text


def test_a_damaged_database_file_is_reported_without_raising(isolated_state):
    audit.audit_path().write_bytes(b"this is not an SQLite database, " * 200)

    probability, result = predict_and_audit()

    assert probability == 0.87
    assert not result.ok and "not a database" in result.error


# --- crashes and concurrent writers ------------------------------------------------------------

WRITER_SCRIPT = """
import sys
from pneumonet_core.governance import audit
print("ready", flush=True)
if {wait_for_go}:
    sys.stdin.readline()
for index in range({count}):
    result = audit.record(
        "predict", source="cli:predict", probability=0.5,
        details={{"writer": {writer}, "index": index}},
    )
    if not result.ok:
        print("failed", result.error, flush=True)
        sys.exit(1)
    print(result.entry_id, flush=True)
"""


def write_at_once(count: int, home: Path) -> None:
    """Two child processes append `count` entries each, starting at the same moment."""
    writers = [
        child(WRITER_SCRIPT.format(wait_for_go=True, count=count, writer=writer), home)
        for writer in (0, 1)
    ]
    try:
        for process in writers:
            assert process.stdout.readline().strip() == "ready"
        for process in writers:  # both start writing at the same moment
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=CHILD_TIMEOUT_SECONDS) for process in writers]
    finally:
        for process in writers:
            process.kill()
            process.wait()
    for process, (stdout, stderr) in zip(writers, outputs, strict=True):
        assert process.returncode == 0, stdout + stderr


def test_sigkill_loses_no_committed_entry(isolated_state):
    script = WRITER_SCRIPT.format(wait_for_go=False, count=1_000_000, writer=0)
    process = child(script, isolated_state)
    reported = []
    try:
        assert process.stdout.readline().strip() == "ready"
        while len(reported) < 25:
            line = process.stdout.readline().strip()
            assert line.isdigit(), line + process.stderr.read()
            reported.append(int(line))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=CHILD_TIMEOUT_SECONDS)
        reported += [int(line) for line in process.stdout.read().split() if line.isdigit()]
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()

    assert process.returncode == -signal.SIGKILL  # killed while still writing
    stored = {entry["id"] for entry in audit.read_entries()}
    assert set(reported) <= stored
    assert len(stored) >= len(reported) >= 25


def test_two_processes_writing_at_once_both_land(isolated_state):
    count = 30
    write_at_once(count, isolated_state)
    written = [
        (entry["details"]["writer"], entry["details"]["index"]) for entry in audit.read_entries()
    ]
    assert sorted(written) == [(writer, index) for writer in (0, 1) for index in range(count)]


# --- a batch in one write ------------------------------------------------------------------


def batch_entry(probability: float, **changes) -> dict:
    entry = {"action": "predict", "source": "cli:predict", "image_sha256": IMAGE_HASH}
    return {**entry, "probability": probability, "label": "NORMAL", **changes}


def test_record_many_writes_a_batch_chained_in_one_transaction(monkeypatch):
    audit.record("sign_in", source="dashboard:Sign in", user="lead@example.org")
    writes = []
    original_insert = audit._insert
    monkeypatch.setattr(
        audit, "_insert", lambda rows: writes.append(len(rows)) or original_insert(rows)
    )
    result = audit.record_many([batch_entry(0.1), batch_entry(0.2), batch_entry(0.3)])

    assert result.ok and result.entry_id == 4
    assert writes == [3]  # one transaction, one disk sync
    entries = audit.read_entries()
    assert [entry["id"] for entry in entries] == [1, 2, 3, 4]
    assert [entry["probability"] for entry in entries[1:]] == [0.1, 0.2, 0.3]
    assert audit.verify_chain().intact


def test_record_many_refuses_a_bad_entry_before_writing_any():
    with pytest.raises(ValueError, match="label must be short well-formed text, never a path"):
        audit.record_many([batch_entry(0.1), batch_entry(0.2, label="/home/x/scan.png")])
    assert audit.read_entries() == []
    assert audit.record_many([]).ok
