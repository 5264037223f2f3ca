"""Decode any supported input into one grayscale image.

Everything that reads pixels (training, the command line, the dashboard) goes through
`read_image`, so a PNG, a JPEG and a DICOM file of the same X-ray reach the model alike.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

# Larger images are refused before decoding (a small file can claim billions of pixels).
MAX_PIXELS = 60_000_000
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
PATIENT_FIELDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyDate",
    "InstitutionName",
    "ReferringPhysicianName",
)
TECHNICAL_FIELDS = (
    "Modality",
    "BodyPartExamined",
    "ViewPosition",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsStored",
)


class ImageReadError(ValueError):
    """An input that cannot be turned into an image; the message is one line for the user."""


def read_image(source: ImageSource) -> np.ndarray:
    """Decode an image file into a grayscale float image.

    Args:
        source: A path, the file's bytes, or a binary file object. PNG, JPEG, BMP, TIFF, WebP,
            GIF (first frame) and DICOM are read; colour is converted to luminance.

    Returns:
        float32 array of shape (height, width) with values in [0, 1].

    Raises:
        ImageReadError: The input is empty, not an image, truncated, too large, or a DICOM
            object without a displayable image.
    """
    data, name = _read_bytes(source)
    if not data:
        raise ImageReadError(f"{name}: the file is empty")
    if _looks_like_dicom(data, name):
        return _read_dicom_pixels(data, name)
    try:
        return _read_pillow_pixels(data, name)
    except ImageReadError as pillow_error:
        if _is_unidentified(pillow_error):
            return _read_dicom_without_preamble(data, name, pillow_error)
        raise


def is_dicom(source: ImageSource) -> bool:
    """Whether the input is a DICOM file (by its 'DICM' marker or file name)."""
    data, name = _read_bytes(source)
    return _looks_like_dicom(data, name)


def read_dicom_header(source: ImageSource, *, include_patient_fields: bool = False) -> dict:
    """Read selected DICOM header fields as strings.

    Args:
        source: A DICOM file as path, bytes or file object.
        include_patient_fields: Also return identifying fields (name, ID, birth date...). Only
            pass True when a user explicitly asks to see them.

    Returns:
        Mapping of field name to value, for the fields present.
    """
    import pydicom

    data, name = _read_bytes(source)
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    except Exception as error:
        raise ImageReadError(f"{name}: not a readable DICOM file ({_first_line(error)})") from None
    fields = TECHNICAL_FIELDS + (PATIENT_FIELDS if include_patient_fields else ())
    return {field: str(dataset.get(field)) for field in fields if dataset.get(field) is not None}


def _read_bytes(source: ImageSource) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), "uploaded file"
    if hasattr(source, "read"):
        name = Path(getattr(source, "name", "uploaded file")).name
        if hasattr(source, "seek"):
            source.seek(0)
        return source.read(), name
    path = Path(source)
    try:
        return path.read_bytes(), path.name
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image file") from None
    except OSError as error:
        raise ImageReadError(f"{path}: cannot be read ({error.strerror or error})") from None


def _looks_like_dicom(data: bytes, name: str) -> bool:
    return data[128:132] == b"DICM" or name.lower().endswith(DICOM_SUFFIXES)


def _is_unidentified(error: ImageReadError) -> bool:
    return isinstance(error.__cause__, UnidentifiedImageError)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]


def _read_pillow_pixels(data: bytes, name: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_size(image.width, image.height, name)
            image.seek(0)
            image.load()
            return _pillow_to_gray(ImageOps.exif_transpose(image))
    except UnidentifiedImageError as error:
        raise ImageReadError(
            f"{name}: not a recognised image (expected PNG, JPEG or DICOM)"
        ) from error
    except Image.DecompressionBombError:
        raise ImageReadError(f"{name}: the image claims too many pixels to be decoded") from None
    except ImageReadError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageReadError(
            f"{name}: the image is damaged or truncated ({_first_line(error)})"
        ) from None


def _check_size(width: int, height: int, name: str) -> None:
    if width < 1 or height < 1:
        raise ImageReadError(f"{name}: the image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise ImageReadError(
            f"{name}: the image is too large ({width}x{height} pixels, limit {MAX_PIXELS:,})"
        )


def _pillow_to_gray(image: Image.Image) -> np.ndarray:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return _scale_to_unit(np.asarray(image, dtype=np.float32))
    if image.mode in ("RGBA", "LA", "PA", "P"):
        image = _flatten_alpha(image)
    if image.mode != "L":
        image = image.convert("RGB").convert("L")
    return np.asarray(image, dtype=np.float32) / 255.0


def _flatten_alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _scale_to_unit(pixels: np.ndarray) -> np.ndarray:
    """Min-max scale any numeric array to float32 [0, 1]; a constant image becomes zeros."""
    pixels = np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.float32)
    return ((pixels - low) / (high - low)).astype(np.float32)


def _read_dicom_without_preamble(data: bytes, name: str, pillow_error: ImageReadError):
    try:
        return _read_dicom_pixels(data, name, require_pixel_data_error=False)
    except ImageReadError:
        raise pillow_error from None


def _read_dicom_pixels(data: bytes, name: str, require_pixel_data_error: bool = True):
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as error:
        raise ImageReadError(f"{name}: not a readable DICOM file ({_first_line(error)})") from None
    if "PixelData" not in dataset:
        modality = dataset.get("Modality", "unknown")
        raise ImageReadError(
            f"{name}: this DICOM object holds no image (modality {modality}); "
            "upload a chest radiograph"
        )
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    _check_size(columns, rows, name)
    try:
        pixels = dataset.pixel_array
    except Exception as error:
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        syntax_name = getattr(syntax, "name", "unknown transfer syntax")
        raise ImageReadError(
            f"{name}: the DICOM pixel data could not be decoded ({syntax_name}: "
            f"{_first_line(error)})"
        ) from None
    return _dicom_to_gray(dataset, pixels, apply_modality_lut, apply_voi_lut)


def _dicom_to_gray(dataset, pixels: np.ndarray, apply_modality_lut, apply_voi_lut) -> np.ndarray:
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        pixels = pixels[frames // 2]
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if samples > 1:
        # Colour DICOM (already RGB after decoding): ITU-R 601 luminance.
        luminance = pixels[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114])
        return _scale_to_unit(luminance)
    pixels = apply_modality_lut(pixels, dataset)
    pixels = apply_voi_lut(pixels, dataset, index=0)
    gray = _scale_to_unit(np.asarray(pixels))
    if str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        gray = 1.0 - gray
    return gray
