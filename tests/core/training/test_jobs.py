"""jobs: one background training process at a time, its status, stop requests and deaths."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from job_helpers import JOB_TIMEOUT_S, wait_until

from pneumonet_core.governance import audit, tracking
from pneumonet_core.models.modelio import read_metadata
from pneumonet_core.training import jobs
from pneumonet_core.training.jobs import (
    JobAlreadyRunning,
    JobStatus,
    read_job_status,
    request_stop,
    start_training_job,
    wait_for_job,
)


def training_started(status: JobStatus | None) -> bool:
    return bool(status and status.state == "running" and status.run_id and status.batches)


def started_status() -> JobStatus | None:
    """The job's status once its training loop has begun, else None."""
    status = read_job_status()
    return status if training_started(status) else None


@pytest.fixture
def job_cleanup():
    """Kill the job process this test started if the test ends while it still runs."""
    yield
    status = read_job_status()
    if status is not None and status.pid and status.is_active:
        with contextlib.suppress(ProcessLookupError):
            os.kill(status.pid, signal.SIGKILL)
    if status is not None and status.pid:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(status.pid, 0)


# --- the status object -----------------------------------------------------------------------


def test_job_status_progress_and_eta():
    status = JobStatus(state="running", epoch=2, epochs=4, batch=5, batches=10)
    assert status.is_active
    assert status.progress == pytest.approx((10 + 5) / 40)
    status.training_started_at = time.time() - 30
    assert status.eta_s == pytest.approx(30 * (1 - 0.375) / 0.375, rel=0.05)
    assert JobStatus(state="starting").progress == 0.0
    assert JobStatus(state="running", epochs=4, batches=10).eta_s is None
    finished = JobStatus(state="finished", started_at=100.0, updated_at=160.0, epochs=2)
    assert not finished.is_active
    assert finished.elapsed_s == 60.0
    assert finished.eta_s is None


def test_no_job_status_before_any_job(isolated_state):
    assert read_job_status() is None
    assert request_stop() is None
    assert wait_for_job(timeout_s=1) is None


# --- real background jobs --------------------------------------------------------------------


def test_job_runs_in_a_separate_process_and_finishes(
    synthetic_data, train_config_factory, isolated_state, job_cleanup
):
    config = train_config_factory(synthetic_data, isolated_state / "job.keras", epochs=1)
    started = start_training_job(config, user="a@b.org", source="dashboard:Train")
    assert started.state == "starting"
    assert started.pid and started.pid != os.getpid()
    assert started.epochs == 1 and started.config["epochs"] == 1

    status = wait_for_job(timeout_s=JOB_TIMEOUT_S)
    assert status.state == "finished", jobs.log_path().read_text()[-3000:]
    assert status.error is None
    assert status.model_path == str(isolated_state / "job.keras")
    assert read_metadata(status.model_path).run_id == status.run_id
    assert status.progress == 1.0
    assert tracking.run_info(status.run_id)["status"] == "FINISHED"
    assert jobs.log_path().read_text()  # the process wrote its output to the job log
    # The start and the end are in the audit trail, both for the user who started the job.
    entries = audit.read_entries()
    assert [(e["action"], e["user"]) for e in entries] == [
        ("train_start", "a@b.org"),
        ("train_end", "a@b.org"),
    ]
    assert entries[0]["source"] == "dashboard:Train" and entries[1]["source"] == "job:train"
    assert entries[0]["details"]["job_id"] == started.job_id
    assert entries[1]["details"] == {
        "job_id": started.job_id,
        "state": "finished",
        "run_id": status.run_id,
    }


def test_second_start_is_refused_and_stop_ends_the_job(
    synthetic_data, train_config_factory, isolated_state, job_cleanup
):
    config = train_config_factory(synthetic_data, isolated_state / "long.keras", epochs=500)
    first = start_training_job(config)
    with pytest.raises(JobAlreadyRunning, match=f"training job {first.job_id} is already"):
        start_training_job(config)
    running = wait_until(started_status)
    with pytest.raises(JobAlreadyRunning):
        start_training_job(config)
    # Uploads are served first: the job trains at a lower CPU priority than the app.
    assert os.getpriority(os.PRIO_PROCESS, running.pid) >= min(19, os.nice(0) + jobs.JOB_NICENESS)

    assert request_stop(user="c@d.org").state == "stopping"
    status = wait_for_job(timeout_s=JOB_TIMEOUT_S)
    assert status.state == "stopped", jobs.log_path().read_text()[-3000:]
    assert status.epoch < 500
    assert Path(status.model_path).is_file()
    assert not (isolated_state / "jobs" / "stop").exists()
    info = tracking.run_info(status.run_id)
    assert info["status"] == "FINISHED"
    assert info["tags"]["pneumonet.stopped_by_user"] == "true"
    # One start (the refused ones are not starts), the stop request, and the end.
    entries = audit.read_entries()
    assert [e["action"] for e in entries] == ["train_start", "train_stop", "train_end"]
    assert entries[1]["user"] == "c@d.org"
    assert entries[1]["details"]["job_id"] == first.job_id
    assert entries[2]["details"]["state"] == "stopped"
    assert entries[2]["details"]["run_id"] == status.run_id


def test_killed_job_is_reported_failed_and_its_run_closed(
    synthetic_data, train_config_factory, isolated_state, job_cleanup
):
    config = train_config_factory(synthetic_data, isolated_state / "killed.keras", epochs=500)
    start_training_job(config)
    running = wait_until(started_status)
    assert tracking.run_info(running.run_id)["status"] == "RUNNING"

    os.kill(running.pid, signal.SIGKILL)
    os.waitpid(running.pid, 0)
    status = read_job_status()
    assert status.state == "failed"
    assert "ended unexpectedly" in status.error
    assert status.run_id == running.run_id
    info = tracking.run_info(running.run_id)
    assert info["status"] == "FAILED"
    assert "killed" in info["tags"]["pneumonet.error"]
    # The failure is recorded on disk with the run it belonged to.
    recorded = read_job_status()
    assert recorded.state == "failed" and not recorded.is_active
    assert recorded.run_id == running.run_id
    (ended,) = audit.read_entries(action="train_end")  # recorded once, by the first reader
    assert ended["details"]["state"] == "failed"
    assert ended["details"]["run_id"] == running.run_id


def test_failed_audit_writes_are_lines_in_the_job_log_and_the_status(
    tmp_path, train_config_factory, isolated_state, job_cleanup
):
    (isolated_state / audit.AUDIT_FILE_NAME).mkdir()  # no audit database can be opened there
    config = train_config_factory(tmp_path / "no_such_dataset", None, epochs=1)

    start_training_job(config)

    started = read_job_status()
    assert started.audit_error.startswith("audit write failed: train_start was not recorded")
    assert wait_for_job(timeout_s=JOB_TIMEOUT_S).state == "failed"  # as it would have anyway

    def end_notice() -> str | None:  # written just after the final state, once retries end
        notice = read_job_status().audit_error
        return notice if notice and "train_end" in notice else None

    assert wait_until(end_notice).startswith("audit write failed: train_end was not recorded")
    log = jobs.log_path().read_text()
    for action in ("train_start", "train_end"):
        assert f"pneumonet: audit write failed: {action} was not recorded" in log
    assert "Traceback" in log  # the job's own output is kept after the start's notice


def test_job_that_raises_reports_failed_with_the_reason(
    tmp_path, train_config_factory, isolated_state, job_cleanup
):
    config = train_config_factory(tmp_path / "no_such_dataset", None, epochs=1)
    start_training_job(config)
    status = wait_for_job(timeout_s=JOB_TIMEOUT_S)
    assert status.state == "failed"
    assert status.error.startswith("DatasetError: dataset folder")
    assert "no_such_dataset" in status.error
    assert "Traceback" in jobs.log_path().read_text()


def test_start_validates_the_config_before_starting(
    synthetic_data, train_config_factory, isolated_state
):
    config = train_config_factory(synthetic_data, None)
    config.epochs = 0
    with pytest.raises(ValueError, match="epochs"):
        start_training_job(config)
    assert read_job_status() is None
