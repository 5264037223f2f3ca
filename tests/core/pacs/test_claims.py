"""state.claim: a lease on one instance, atomic on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import time

import pytest

from pneumonet_core.pacs import PacsWorker, pacs_settings, state


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
