"""state.claim: a lease on one instance, atomic on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import time

import pytest

from pneumonet_core.pacs import PacsWorker, pacs_settings, state, worker


def test_a_claim_is_held_until_it_lapses_or_is_released(database_engine):
    assert state.claim("1.2.3", "a" * 64, "worker-a", lease_s=0.5)
    assert not state.claim("1.2.3", "a" * 64, "worker-b", lease_s=0.5)
    assert state.claim("1.2.3", "b" * 64, "worker-b", lease_s=0.5)  # another model version
    assert state.claim("1.2.3", "a" * 64, "worker-a", lease_s=0.5)  # renewed by its holder
    time.sleep(0.6)
    assert state.claim("1.2.3", "a" * 64, "worker-b", lease_s=60)  # lapsed: taken over
    state.release("1.2.3", "a" * 64, "worker-a")  # not worker-a's any more: nothing changes
    assert not state.claim("1.2.3", "a" * 64, "worker-a", lease_s=60)
    state.release("1.2.3", "a" * 64, "worker-b")
    assert state.claim("1.2.3", "a" * 64, "worker-a", lease_s=60)


@pytest.mark.parametrize("lease", [0, -1, float("nan")])
def test_a_lease_must_be_positive(lease):
    with pytest.raises(ValueError, match="lease"):
        PacsWorker(pacs_settings("http://127.0.0.1:1/dicom-web"), lease_s=lease)


def test_a_dead_worker_of_this_machine_is_recognised():
    import socket
    import subprocess

    finished = subprocess.Popen(["true"])
    finished.wait()
    host = socket.gethostname()
    assert worker.is_dead_local_worker(f"{host}:{finished.pid}:ab12")
    assert not worker.is_dead_local_worker(f"{host}:{os.getpid()}:ab12")  # alive
    assert not worker.is_dead_local_worker(f"another-machine:{finished.pid}:ab12")


def test_a_claim_can_be_taken_from_a_named_dead_worker(database_engine):
    assert state.claim("1.2.3", "a" * 64, "dead", lease_s=60)
    assert not state.claim("1.2.3", "a" * 64, "next", lease_s=60, take_from="someone-else")
    assert state.claim_holder("1.2.3", "a" * 64) == "dead"
    assert state.claim("1.2.3", "a" * 64, "next", lease_s=60, take_from="dead")
    assert state.claim_holder("1.2.3", "a" * 64) == "next"
