"""Two PACS workers against one real Orthanc and one real PostgreSQL: every instance is scored,
audited and written once, also when one worker is killed with SIGKILL in the middle of an item.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from pacs_helpers import chest_images, dataset
from pneumonet_testing.dicom_studies import chest_dicom
from test_worker import written_objects

from pneumonet_core.governance import audit
from pneumonet_core.pacs import PacsWorker, worker

pytestmark = pytest.mark.slow
IMAGES_PER_CLASS = 4
WORKER_TIMEOUT_S = 600
WORKER = """\
import os, signal, sys
from pneumonet_core.pacs import PacsWorker, client, pacs_settings
{patch}
worker = PacsWorker(pacs_settings({url!r}), lease_s={lease})
worker.predictor_factory()  # the model loaded before the start signal
print("ready", flush=True)
sys.stdin.readline()
print(worker.run_pass().written, flush=True)
"""
# On another machine, killed in the middle of its second item: scored and audited, claimed,
# not yet written back.
KILLED_AT_SECOND_STORE = """\
import socket
socket.gethostname = lambda: "another-machine"
real_store, stores = client.store, []
def store(*arguments, **options):
    stores.append(1)
    if len(stores) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_store(*arguments, **options)
client.store = store
"""


@pytest.fixture
def many_chest_images(shared_database, pacs_client):
    """Eight chest CR instances in Orthanc; the state and audit trail in PostgreSQL."""
    files = [chest_dicom(path, modality="CR") for path in chest_images(IMAGES_PER_CLASS)]
    pacs_client.store_instances([dataset(data) for data in files])
    return files


def start_worker(url: str, patch: str = "", lease: float = 120.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER.format(patch=patch, url=url, lease=lease)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_together(workers: list[subprocess.Popen]) -> list[tuple[str, str]]:
    for process in workers:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
    for process in workers:  # both start their pass at the same moment
        process.stdin.write("go\n")
        process.stdin.flush()
    return [process.communicate(timeout=WORKER_TIMEOUT_S) for process in workers]


def assert_each_written_once(pacs_client, files) -> None:
    per_source = written_objects(pacs_client)
    assert set(per_source) == {dataset(data).SOPInstanceUID for data in files}
    assert all((counts["SR"], counts["OT"]) == (1, 1) for counts in per_source.values())
    predictions = audit.read_entries(action="predict")
    scored = [entry["details"]["instance_uid_sha256"] for entry in predictions]
    assert len(scored) == len(set(scored)) == len(files)  # audited once each
    assert audit.verify_chain().intact


def test_two_workers_share_the_instances_and_score_each_once(
    settings, pacs_client, many_chest_images
):
    workers = [start_worker(settings.url) for _ in range(2)]
    outputs = run_together(workers)
    for process, (_, stderr) in zip(workers, outputs, strict=True):
        assert process.returncode == 0, stderr[-2000:]
    written = [int(stdout.split()[-1]) for stdout, _ in outputs]
    assert sum(written) == len(many_chest_images)
    assert_each_written_once(pacs_client, many_chest_images)


def test_a_worker_killed_mid_item_gives_up_its_claim_and_the_other_finishes(
    settings, pacs_client, many_chest_images
):
    lease = 15.0
    survivor = PacsWorker(settings, lease_s=lease)
    survivor.predictor_factory()  # loaded before, so that its first pass is within the lease
    killed = start_worker(settings.url, KILLED_AT_SECOND_STORE, lease=lease)
    [(_, stderr)] = run_together([killed])
    assert killed.returncode == -signal.SIGKILL, stderr[-2000:]
    killed_at = time.monotonic()

    first = survivor.run_pass()
    if time.monotonic() - killed_at < lease:  # still within the dead worker's lease
        # it held the item it was storing, and the others it had in flight
        assert 1 <= first.claimed_elsewhere <= worker.PARALLEL_INSTANCES
    time.sleep(max(0.0, killed_at + lease - time.monotonic()) + 0.5)
    second = survivor.run_pass()
    # The killed worker stored one item; with others in flight it may not have marked it
    # written, and then the survivor finishes it (without storing it again).
    assert first.written + second.written in (len(many_chest_images) - 1, len(many_chest_images))
    assert second.claimed_elsewhere == 0
    assert_each_written_once(pacs_client, many_chest_images)
