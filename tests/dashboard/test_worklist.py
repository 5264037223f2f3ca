"""The Worklist page against a real Orthanc: off without a PACS, triage order, a study opened
with the same result view as Predict, patient fields hidden until asked for, Score now for the
ML team only, and the cached statuses while the PACS is down."""

from __future__ import annotations

import io

import pydicom
import pytest
from dashboard_fixtures import CLINICIAN, ML, open_as, open_page, page_texts, require_data
from pneumonet_testing.dicom_studies import chest_dicom, chest_images
from pneumonet_testing.orthanc import orthanc_available, start_orthanc

pytestmark = pytest.mark.slow


@pytest.fixture
def worklist_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PNEUMONET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PNEUMONET_MODEL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PNEUMONET_DICOMWEB_URL", raising=False)
    from dashboard import worklist

    worklist.worklist.clear()  # rows are cached a few seconds across sessions
    return tmp_path


@pytest.fixture
def scored_pacs(worklist_env, monkeypatch):
    if not orthanc_available():
        pytest.fail("Orthanc with its DICOMweb plugin is missing (./run test installs it)")
    from pneumonet_core.pacs import PacsWorker, client, pacs_settings

    server = start_orthanc(worklist_env / "orthanc")
    try:
        monkeypatch.setenv("PNEUMONET_DICOMWEB_URL", server.dicomweb_url)
        files = [
            chest_dicom(path, modality="DX", patient_name=f"Hidden^Name{index}")
            for index, path in enumerate(chest_images(require_data(), 2))
        ]
        connection = client.connect(pacs_settings())
        connection.store_instances([pydicom.dcmread(io.BytesIO(data)) for data in files])
        PacsWorker(pacs_settings()).run_pass()
        yield server
    finally:
        server.stop()


def test_without_a_pacs_the_page_says_so_in_one_line(worklist_env):
    app = open_page("worklist")
    assert "No PACS is configured" in page_texts(app)
    assert not app.dataframe


def test_studies_in_triage_order_and_a_study_opened_like_predict(scored_pacs):
    app = open_page("worklist")
    table = app.dataframe[0].value
    results = list(table["result"])
    assert results[:2] == ["PNEUMONIA", "PNEUMONIA"]
    assert results.index("PNEUMONIA") < results.index("NORMAL")
    assert "Hidden^Name" not in table.to_string()
    choice = app.selectbox(key="worklist_open")
    choice.set_value(choice.options[1]).run()
    assert not app.exception, app.exception
    texts = page_texts(app)
    assert "Hidden^Name" not in texts  # patient fields only once their expander is opened
    captions = [image.caption for element in app.get("image") for image in element.proto.imgs]
    assert "Grad-CAM" in captions  # the same result view as Predict
    assert [button.label for button in app.button if button.label == "Score now"] == ["Score now"]


def test_the_page_keeps_the_cached_statuses_while_the_pacs_is_down(scored_pacs):
    scored_pacs.stop()
    from dashboard import worklist

    worklist.worklist.clear()  # past the rows' few seconds of caching
    app = open_page("worklist")
    assert "does not answer" in page_texts(app)
    assert len(app.dataframe[0].value) == 4


def test_a_clinician_sees_results_but_no_score_now(scored_pacs):
    def opened(email):
        app = open_as(email, "worklist")
        choice = app.selectbox(key="worklist_open")
        choice.set_value(choice.options[1]).run()
        assert not app.exception, app.exception
        return [button.label for button in app.button]

    assert "Score now" not in opened(CLINICIAN)
    assert "Score now" in opened(ML)
