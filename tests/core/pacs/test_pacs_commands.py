"""`pneumonet pacs list` and `pneumonet pacs watch` against a real Orthanc."""

from __future__ import annotations

import json

import pytest
from pacs_helpers import dataset

from pneumonet_core.cli import main
from pneumonet_core.pacs import PacsWorker

pytestmark = pytest.mark.slow


def listed(capsys, *arguments) -> tuple[list[dict], str]:
    assert main(["pacs", "list", "--json", *arguments]) == 0
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_list_puts_pneumonia_first_and_hides_patients_unless_asked(settings, chest_studies, capsys):
    PacsWorker(settings).run_pass()
    rows, _ = listed(capsys, "--url", settings.url)
    labels = [row["label"] for row in rows if row["status"] == "scored"]
    assert labels[:2] == ["PNEUMONIA", "PNEUMONIA"] and labels[-1] == "NORMAL"
    assert [row["status"] for row in rows].count("scored") == 4
    assert all(row["ood"] is False for row in rows if row["status"] == "scored")
    names = {str(dataset(data).PatientName) for data in chest_studies}
    text = json.dumps(rows)
    assert not any(name in text for name in names)
    assert not any(dataset(data).StudyInstanceUID in text for data in chest_studies)
    rows, _ = listed(capsys, "--url", settings.url, "--show-patient")
    assert names <= {row["patient_name"] for row in rows}
    assert main(["pacs", "list", "--url", settings.url]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split("\t") == [
        "reference",
        "study_date",
        "modality",
        "status",
        "probability",
        "label",
        "ood",
        "reason",
    ]
    assert len(lines) == len(rows)


def test_list_shows_pending_studies_and_the_cached_statuses_when_the_pacs_is_down(
    settings, orthanc, chest_studies, capsys
):
    rows, _ = listed(capsys, "--url", settings.url)
    assert {row["status"] for row in rows} == {"pending"}
    PacsWorker(settings).run_pass()
    orthanc.stop()
    rows, notice = listed(capsys, "--url", settings.url)
    assert len([row for row in rows if row["status"] == "scored"]) == 4
    assert "showing the cached statuses" in notice and len(notice.splitlines()) == 1


def test_watch_once_scores_and_reports_one_line(settings, chest_studies, capsys):
    assert main(["pacs", "watch", "--once", "--url", settings.url]) == 0
    err = capsys.readouterr().err
    assert "4 written, 1 skipped, 0 failed" in err
    assert "Traceback" not in err
    for data in chest_studies:
        assert dataset(data).SOPInstanceUID not in err


def test_watch_without_a_pacs_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.delenv("PNEUMONET_DICOMWEB_URL", raising=False)
    assert main(["pacs", "watch", "--once"]) == 2
    assert capsys.readouterr().err.strip() == (
        "pneumonet: error: no PACS configured: pass --url or set PNEUMONET_DICOMWEB_URL"
    )
