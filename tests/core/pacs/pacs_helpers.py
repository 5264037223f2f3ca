"""Helpers the PACS tests share (chest images from test/, DICOM bytes to a dataset)."""

from __future__ import annotations

import io

import pydicom
from dashboard_fixtures import require_data
from pneumonet_testing import dicom_studies


def chest_images(count_per_class: int = 2):
    """The first `test/` images of each class, PNEUMONIA first (the shared data is needed)."""
    return dicom_studies.chest_images(require_data(), count_per_class)


def dataset(data: bytes):
    return pydicom.dcmread(io.BytesIO(data))
