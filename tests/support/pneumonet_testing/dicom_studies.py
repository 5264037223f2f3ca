"""Chest X-ray DICOM files for the PACS tests and benchmark, built with pydicom from images.

Each file gets fictitious patient and study tags, so the tests can check that none of them
leaks into the audit trail or the logs.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def chest_dicom(
    image_path: Path,
    *,
    modality: str = "DX",
    patient_name: str = "Doe^Jane",
    patient_id: str = "PID-0001",
    study_uid: str | None = None,
    view_position: str = "AP",
    study_date: str = "20261201",
) -> bytes:
    """A single-frame CR or DX DICOM file holding the image's 8-bit grey pixels."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        ComputedRadiographyImageStorage,
        DigitalXRayImageStorageForPresentation,
        ExplicitVRLittleEndian,
        generate_uid,
    )

    storage = (
        ComputedRadiographyImageStorage
        if modality == "CR"
        else DigitalXRayImageStorageForPresentation
    )
    pixels = np.asarray(Image.open(image_path).convert("L"), dtype=np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = storage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = study_uid or generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.PatientName = patient_name
    dataset.PatientID = patient_id
    dataset.PatientBirthDate = "20230101"
    dataset.PatientSex = "F"
    dataset.StudyDate = study_date
    dataset.StudyTime = "101500"
    dataset.AccessionNumber = "ACC0001"
    dataset.StudyID = "1"
    dataset.ReferringPhysicianName = ""
    dataset.Modality = modality
    dataset.SeriesNumber = 1
    dataset.InstanceNumber = 1
    dataset.BodyPartExamined = "CHEST"
    dataset.ViewPosition = view_position
    dataset.PatientOrientation = ["L", "F"]
    dataset.Manufacturer = "Test"
    dataset.ImageType = ["ORIGINAL", "PRIMARY"]
    dataset.PresentationIntentType = "FOR PRESENTATION"
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def chest_images(data_root: Path, count_per_class: int = 2) -> list[Path]:
    """The first images of each class of `test/` (PNEUMONIA first)."""
    return [
        path
        for label in ("PNEUMONIA", "NORMAL")
        for path in sorted((data_root / "test" / label).iterdir())[:count_per_class]
    ]
