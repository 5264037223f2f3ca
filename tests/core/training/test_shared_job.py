"""The training job through a shared PostgreSQL: started on replica A, seen and stopped from
replica B (another PNEUMONET_HOME, the same database), one job per pool."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
from job_helpers import JOB_TIMEOUT_S, wait_until

from pneumonet_core.governance import audit
from pneumonet_core.training import shared_job
from pneumonet_core.training.jobs import (
    JobAlreadyRunning,
    read_job_status,
    request_stop,
    start_training_job,
    wait_for_job,
)


def running_with_progress():
    status = read_job_status()
    return status if status and status.state == "running" and status.epoch >= 1 else None


def test_a_job_started_on_a_is_seen_and_stopped_from_b(
    shared_database, synthetic_data, train_config_factory, tmp_path, monkeypatch
):
    replica_a, replica_b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("PNEUMONET_HOME", str(replica_a))
    config = train_config_factory(synthetic_data, replica_a / "long.keras", epochs=500)
    started = start_training_job(config, user="a@example.org")
    try:
        wait_until(running_with_progress)

        monkeypatch.setenv("PNEUMONET_HOME", str(replica_b))
        seen = wait_until(running_with_progress)
        assert seen.job_id == started.job_id and seen.user == "a@example.org"
        with pytest.raises(JobAlreadyRunning, match=f"training job {started.job_id} is already"):
            start_training_job(config)
        assert request_stop(user="b@example.org").state == "stopping"

        monkeypatch.setenv("PNEUMONET_HOME", str(replica_a))
        status = wait_for_job(timeout_s=JOB_TIMEOUT_S)
        assert status.state == "stopped" and status.epoch < 500
    finally:
        monkeypatch.setenv("PNEUMONET_HOME", str(replica_a))
        leftover = read_job_status()
        if leftover is not None and leftover.is_active and leftover.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover.pid, signal.SIGKILL)

    monkeypatch.setenv("PNEUMONET_HOME", str(replica_b))
    assert wait_until(lambda: read_job_status().state == "stopped")
    entries = audit.read_entries()  # one trail: both replicas' entries
    assert [entry["action"] for entry in entries] == ["train_start", "train_stop", "train_end"]
    assert [entry["user"] for entry in entries[:2]] == ["a@example.org", "b@example.org"]


def test_each_pool_has_its_own_job(shared_database, monkeypatch):
    assert shared_job.claim("job-1", {"state": "running", "job_id": "job-1"}) is None
    assert shared_job.claim("job-2", {"state": "starting", "job_id": "job-2"})["job_id"] == "job-1"
    monkeypatch.setenv(shared_job.POOL_VARIABLE, "gpu-pool")
    assert shared_job.read() is None
    assert shared_job.claim("job-2", {"state": "starting", "job_id": "job-2"}) is None
    monkeypatch.setenv(shared_job.POOL_VARIABLE, "bad pool/name")
    with pytest.raises(ValueError, match="PNEUMONET_TRAINING_POOL"):
        shared_job.pool()


def test_an_active_job_without_a_heartbeat_is_reported_failed(shared_database, monkeypatch):
    assert shared_job.claim("job-1", {"state": "running", "job_id": "job-1"}) is None
    monkeypatch.setattr(shared_job, "STALE_AFTER_S", -1.0)
    status = shared_job.read()
    assert status["state"] == "failed" and "no word from the job's machine" in status["error"]
