"""The Worklist page in Chromium against a real Orthanc: studies scored by the worker, listed in
triage order; opening one shows its Grad-CAM, as Predict does."""

from __future__ import annotations

import io
import subprocess
import sys

import pydicom
import pytest
from browser_helpers import save_screenshot, wait_until_idle
from dashboard_fixtures import require_data
from pneumonet_testing.concurrent_sessions import start_dashboard, stop_dashboard
from pneumonet_testing.dicom_studies import chest_dicom, chest_images
from pneumonet_testing.orthanc import orthanc_available, start_orthanc

pytestmark = pytest.mark.e2e


@pytest.fixture
def pacs_dashboard(tmp_path, server_environment):
    if not orthanc_available():
        pytest.fail("Orthanc with its DICOMweb plugin is missing (./run test installs it)")
    from pneumonet_core.pacs import client, pacs_settings

    orthanc = start_orthanc(tmp_path / "orthanc")
    try:
        environment = {
            **server_environment,
            "PNEUMONET_HOME": str(tmp_path / "home"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}",
            "PNEUMONET_DICOMWEB_URL": orthanc.dicomweb_url,
        }
        files = [
            chest_dicom(path, modality="DX", patient_name=f"Hidden^Name{index}")
            for index, path in enumerate(chest_images(require_data(), 2))
        ]
        settings = pacs_settings(orthanc.dicomweb_url)
        client.connect(settings).store_instances([pydicom.dcmread(io.BytesIO(d)) for d in files])
        worker = subprocess.run(
            [sys.executable, "-m", "pneumonet_core.cli", "pacs", "watch", "--once"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert worker.returncode == 0, worker.stderr
        log = open(tmp_path / "server.log", "w")  # noqa: SIM115  (closed below)
        url, process = start_dashboard(environment, log)
        try:
            yield url
        finally:
            stop_dashboard(process)
            log.close()
    finally:
        orthanc.stop()  # a failed set-up leaves no server behind either


def test_worklist_shows_triage_order_and_opens_a_study_with_its_heatmap(
    standalone_browser, pacs_dashboard
):
    context = standalone_browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(f"{pacs_dashboard}/worklist")
        wait_until_idle(page)
        grid = page.locator('[data-testid="stDataFrame"]').first
        grid.wait_for()
        text = page.inner_text("body")
        assert "the most urgent first" in text
        assert "Hidden^Name" not in text
        page.get_by_text("Open a study").wait_for()
        page.locator('[data-testid="stSelectbox"]').last.click()
        options = page.get_by_role("option").all_inner_texts()[1:]  # after "-"
        kinds = [option.split(" · ")[1] for option in options]
        assert kinds == sorted(kinds, key=lambda kind: kind != "PNEUMONIA"), kinds
        assert kinds[0] == "PNEUMONIA" and "NORMAL" in kinds
        page.get_by_role("option").nth(1).click()
        wait_until_idle(page)
        page.get_by_text("Grad-CAM", exact=True).wait_for()  # the overlay's caption
        assert page.locator('[data-testid="stImage"]').count() >= 2
        save_screenshot(page, "worklist")
    finally:
        context.close()
