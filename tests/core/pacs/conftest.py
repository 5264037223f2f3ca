"""A real Orthanc (Debian's orthanc + orthanc-dicomweb) per test, and chest DICOM studies."""

from __future__ import annotations

import os

import pydicom
import pytest
from pacs_helpers import chest_images, dataset
from pneumonet_testing.dicom_studies import chest_dicom
from pneumonet_testing.orthanc import orthanc_available, start_orthanc


@pytest.fixture
def orthanc(tmp_path):
    if not orthanc_available():
        message = "Orthanc with its DICOMweb plugin is missing (apt-get install orthanc-dicomweb)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = start_orthanc(tmp_path / "orthanc")
    yield server
    server.stop()


@pytest.fixture
def settings(orthanc):
    from pneumonet_core.pacs import pacs_settings

    return pacs_settings(orthanc.dicomweb_url)


@pytest.fixture
def pacs_client(settings):
    from pneumonet_core.pacs import client

    return client.connect(settings)


@pytest.fixture
def chest_studies(pacs_client):
    """Four chest studies (two CR, two DX) and a CT, stored; returns the chest files' bytes."""
    files = [
        chest_dicom(path, modality=modality, patient_name=f"Doe^Patient{index}")
        for index, (path, modality) in enumerate(
            zip(chest_images(), ("CR", "DX", "CR", "DX"), strict=True)
        )
    ]
    computed_tomography = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    pacs_client.store_instances([dataset(data) for data in files] + [computed_tomography])
    return files
