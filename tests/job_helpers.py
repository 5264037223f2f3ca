"""Helpers for tests that start background training jobs."""

from __future__ import annotations

import time

import pytest

from pneumonet_core.training import jobs

JOB_TIMEOUT_S = 180


def wait_until(condition, timeout_s: float = JOB_TIMEOUT_S, poll_s: float = 0.2):
    """Poll `condition()` until it returns something truthy; fail with the job log if never."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    log = jobs.log_path().read_text() if jobs.log_path().exists() else "(no log)"
    pytest.fail(f"condition not met within {timeout_s}s; job log:\n{log[-3000:]}")
