"""From a file, bytes or upload to the model's input: decoding (Pillow formats and DICOM) and
the one preprocessing contract.

Order inside: `sources` (shared types and limits) <- `dicom` <- `decode` <- `preprocessing`.
"""

from pneumonet_core.imaging import decode, dicom, preprocessing, sources
from pneumonet_core.imaging.decode import is_dicom, read_image, read_image_with_info
from pneumonet_core.imaging.dicom import PATIENT_FIELDS, TECHNICAL_FIELDS, read_dicom_header
from pneumonet_core.imaging.preprocessing import (
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    PREPROCESSING,
    check_image_size,
    preprocess_image,
    resize_array,
    resize_image,
)
from pneumonet_core.imaging.sources import (
    DICOM_SUFFIXES,
    IMAGE_SUFFIXES,
    MAX_DECODED_BYTES,
    MAX_PIXELS,
    PILLOW_FORMATS,
    UPLOAD_TYPES,
    ImageInfo,
    ImageReadError,
    ImageSource,
    color_fraction,
    quiet_warnings,
)

__all__ = [
    "DICOM_SUFFIXES",
    "IMAGE_SUFFIXES",
    "MAX_DECODED_BYTES",
    "MAX_IMAGE_SIZE",
    "MAX_PIXELS",
    "MIN_IMAGE_SIZE",
    "PATIENT_FIELDS",
    "PILLOW_FORMATS",
    "PREPROCESSING",
    "TECHNICAL_FIELDS",
    "UPLOAD_TYPES",
    "ImageInfo",
    "ImageReadError",
    "ImageSource",
    "check_image_size",
    "color_fraction",
    "decode",
    "dicom",
    "is_dicom",
    "preprocess_image",
    "preprocessing",
    "quiet_warnings",
    "read_dicom_header",
    "read_image",
    "read_image_with_info",
    "resize_array",
    "resize_image",
    "sources",
]
