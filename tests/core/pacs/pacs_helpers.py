"""Helpers the PACS tests share (chest images from test/, DICOM bytes to a dataset)."""

from __future__ import annotations

import io

import pydicom
from dashboard_fixtures import require_data


def chest_images(count_per_class: int = 2):
    data = require_data()
    return [
        path
        for label in ("PNEUMONIA", "NORMAL")
        for path in sorted((data / "test" / label).iterdir())[:count_per_class]
    ]


def dataset(data: bytes):
    return pydicom.dcmread(io.BytesIO(data))
