"""The PACS worker against a real Orthanc: one pass, skips and failures, no duplicates, a new
model version, a crash between scoring and write-back, an outage, and the audit trail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from pacs_helpers import chest_images, dataset
from pneumonet_testing.dicom_studies import chest_dicom

from pneumonet_core.governance import audit, registry
from pneumonet_core.pacs import PacsWorker, client, results, state

pytestmark = pytest.mark.slow


def written_objects(pacs_client):
    """(SR count, SC count) per source SOP Instance UID, from the PACS itself."""
    found = {}
    for reference in client.find_instances(pacs_client):
        if reference.manufacturer != results.MANUFACTURER:
            continue
        instance = pacs_client.retrieve_instance(
            reference.study_uid, reference.series_uid, reference.sop_uid
        )
        source = _source_uid(instance)
        counts = found.setdefault(source, {"SR": 0, "OT": 0, "study": instance.StudyInstanceUID})
        counts[instance.Modality] += 1
    return found


def _source_uid(instance) -> str:
    if instance.Modality == "SR":
        evidence = instance.CurrentRequestedProcedureEvidenceSequence[0]
        series = evidence.ReferencedSeriesSequence[0]
        return series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    return instance.SourceImageSequence[0].ReferencedSOPInstanceUID


def test_one_pass_writes_one_sc_and_one_sr_per_chest_image(
    settings, pacs_client, chest_studies, tmp_path, capsys
):
    from pneumonet_core.cli import main

    summary = PacsWorker(settings).run_pass()
    assert (summary.written, summary.skipped, summary.failed) == (4, 1, 0)
    objects = written_objects(pacs_client)
    sources = {dataset(data).SOPInstanceUID: dataset(data) for data in chest_studies}
    assert set(objects) == set(sources)
    for sop_uid, counts in objects.items():
        assert (counts["SR"], counts["OT"]) == (1, 1)
        assert counts["study"] == sources[sop_uid].StudyInstanceUID  # in the same study
    data = chest_studies[0]
    path = tmp_path / "first.dcm"
    path.write_bytes(data)
    assert main(["predict", "--json", "--quiet", str(path)]) == 0
    expected = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["probability"]
    source = dataset(data)
    report = _retrieve_result(pacs_client, source, "sr")
    assert report.VerificationFlag == "UNVERIFIED"
    assert abs(results.read_finding(report)["probability"] - expected) <= 1e-6
    capture = _retrieve_result(pacs_client, source, "sc")
    assert capture.BurnedInAnnotation == "YES"
    assert list(capture.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert capture.pixel_array.shape[-1] == 3 and capture.pixel_array.max() > 0
    assert capture.PatientName == source.PatientName


def _retrieve_result(pacs_client, source, kind):
    model_sha256 = audit.sha256_of_file(registry.active_model_path())
    sop_uid = results.derived_uid(source.SOPInstanceUID, model_sha256, kind)
    series_uid = results.derived_uid(source.SOPInstanceUID, model_sha256, f"{kind}-series")
    return pacs_client.retrieve_instance(source.StudyInstanceUID, series_uid, sop_uid)


def test_ct_is_skipped_a_truncated_image_fails_and_the_rest_are_scored(
    settings, pacs_client, chest_studies
):
    broken = dataset(chest_dicom(chest_images_first()))
    broken.PixelData = broken.PixelData[: len(broken.PixelData) // 3]
    pacs_client.store_instances([broken])
    PacsWorker(settings).run_pass()
    model_sha256 = audit.sha256_of_file(registry.active_model_path())
    by_status = {}
    for record in state.records(model_sha256):
        by_status.setdefault(record.status, []).append(record)
    assert len(by_status["written"]) == 4
    assert [record.modality for record in by_status["skipped"]] == ["CT"]
    assert "not CR or DX" in by_status["skipped"][0].reason
    assert [record.sop_uid for record in by_status["failed"]] == [broken.SOPInstanceUID]
    assert broken.SOPInstanceUID not in written_objects(pacs_client)


def chest_images_first():
    return chest_images(1)[0]


def test_a_second_pass_writes_nothing_new(settings, pacs_client, chest_studies):
    PacsWorker(settings).run_pass()
    before = len(client.find_instances(pacs_client))
    summary = PacsWorker(settings).run_pass()
    assert summary.written == 0 and summary.already_done == 5
    assert len(client.find_instances(pacs_client)) == before


def test_a_new_model_version_scores_everything_again_once(
    settings, pacs_client, chest_studies, untrained_model_path
):
    PacsWorker(settings).run_pass()
    registry.promote(untrained_model_path, user="ml@example.org")
    assert PacsWorker(settings).run_pass().written == 4
    assert PacsWorker(settings).run_pass().written == 0
    per_source = written_objects(pacs_client)
    assert all((counts["SR"], counts["OT"]) == (2, 2) for counts in per_source.values())


CRASHING_WORKER = """\
import os, signal
from pneumonet_core.pacs import PacsWorker, client, pacs_settings, state
{patch}
PacsWorker(pacs_settings({url!r})).run_pass()
"""
BEFORE_STOW = "client.store = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)"
AFTER_STOW = """\
real_save = state.save
def save(record, path=None):
    if record.status == "written":
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(record, path)
state.save = save
"""


@pytest.mark.parametrize("patch", [BEFORE_STOW, AFTER_STOW], ids=["before-stow", "after-stow"])
def test_a_worker_killed_between_scoring_and_writing_leaves_no_duplicate(
    settings, pacs_client, chest_studies, patch
):
    script = CRASHING_WORKER.format(patch=patch, url=settings.url)
    crashed = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    summary = PacsWorker(settings).run_pass()
    assert summary.written == 4
    per_source = written_objects(pacs_client)
    assert len(per_source) == 4
    assert all((counts["SR"], counts["OT"]) == (1, 1) for counts in per_source.values())


def test_the_worker_waits_out_an_outage_and_finishes(settings, orthanc, chest_studies):
    orthanc.stop()
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 2:
            orthanc.start()

    summary = PacsWorker(settings).watch(once=True, sleep=sleep)
    assert waits[:2] == [1.0, 2.0]  # backed off, then found the PACS again
    assert summary.written == 4


def test_the_audit_trail_holds_pacs_entries_without_uids_or_patient_names(settings, chest_studies):
    PacsWorker(settings).run_pass()
    entries = [entry for entry in audit.read_entries() if entry["source"] == "pacs:worker"]
    assert len(entries) == 4
    exported = json.dumps(entries)
    for data in chest_studies:
        source = dataset(data)
        for secret in (source.StudyInstanceUID, source.SOPInstanceUID, str(source.PatientName)):
            assert secret not in exported
    details = entries[0]["details"]
    details = json.loads(details) if isinstance(details, str) else details
    assert set(details) == {"study_uid_sha256", "instance_uid_sha256"}


def test_a_non_xray_gets_an_sr_that_says_so_and_a_lateral_view_is_skipped(
    settings, pacs_client, tmp_path
):
    from PIL import Image
    from sklearn.datasets import load_sample_image

    photo = tmp_path / "photo.png"
    Image.fromarray(load_sample_image("china.jpg")).save(photo)
    not_an_xray = dataset(chest_dicom(photo, modality="DX"))
    lateral = dataset(chest_dicom(chest_images_first(), modality="DX", view_position="LL"))
    pacs_client.store_instances([not_an_xray, lateral])
    summary = PacsWorker(settings).run_pass()
    assert (summary.written, summary.skipped) == (1, 1)
    finding = results.read_finding(_retrieve_result(pacs_client, not_an_xray, "sr"))
    assert finding["ood"] == "yes" and finding["ood_reason"] != "none"
    if finding["ood_reason"].startswith("not a chest X-ray"):
        assert finding["label"] == "no result"
    pixels = _retrieve_result(pacs_client, not_an_xray, "sc").pixel_array
    picture = pixels[: pixels.shape[0] // 2]  # above the text band: grey, no heatmap colours
    assert (picture[..., 0] == picture[..., 1]).all() and (picture[..., 1] == picture[..., 2]).all()
    model_sha256 = audit.sha256_of_file(registry.active_model_path())
    skipped = state.find(lateral.SOPInstanceUID, model_sha256)
    assert skipped.status == "skipped" and skipped.reason == "lateral view (LL)"
    assert lateral.SOPInstanceUID not in written_objects(pacs_client)
