"""Decode DICOM files into one grayscale image, and read their header fields.

`imaging.read_image` hands DICOM input here: files with the 128-byte preamble and 'DICM'
marker, and files without them (old CR/DX exports that start straight with the data set and
often carry no file meta information, so no Transfer Syntax UID either). For the latter the
transfer syntax is inferred from how the data set was encoded, the way pydicom's `force=True`
reading allows. Pixels go through the modality and VOI LUTs, MONOCHROME1 is inverted and colour
becomes luminance, so every codec pydicom's plugins decode reaches the model alike.
"""

from __future__ import annotations

import io
from functools import partial

import numpy as np

from pneumonet_core.imaging.sources import (
    DETAIL_LIMIT,
    MAX_DECODED_BYTES,
    ImageInfo,
    ImageReadError,
    ImageSource,
    check_size,
    color_fraction,
    quiet_warnings,
    read_bytes,
    scale_to_unit,
)
from pneumonet_core.utils.errors import first_line

_first_line = partial(first_line, limit=DETAIL_LIMIT)

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
# File meta elements that any DICOM file has; without them (and without any standard element)
# bytes that merely start like DICOM are garbage.
_DICOM_META_EVIDENCE = ("TransferSyntaxUID", "MediaStorageSOPClassUID")


def read_dicom(data: bytes, name: str) -> tuple[np.ndarray, ImageInfo]:
    """Decode a DICOM file that has the preamble and 'DICM' marker.

    Args:
        data: The whole file.
        name: File name for error messages.

    Returns:
        `(gray, info)`: gray is float32 (height, width) in [0, 1]; info describes the file.

    Raises:
        ImageReadError: Not readable as DICOM, no image in it, or pixels that do not decode.
    """
    dataset = _parse_dicom(data, name)
    if not _has_dicom_evidence(dataset):
        raise ImageReadError(
            f"{name}: not a readable DICOM file (no DICOM elements after the 'DICM' marker)"
        )
    return _dicom_pixels(dataset, name)


def read_dicom_without_preamble(
    data: bytes, name: str, not_an_image: ImageReadError
) -> tuple[np.ndarray, ImageInfo]:
    """Decode a DICOM data set stored without preamble (and possibly without file meta).

    Args:
        data: The whole file, which Pillow did not recognise.
        name: File name for error messages.
        not_an_image: The error to raise when the bytes are not DICOM either.

    Returns:
        `(gray, info)` as `read_dicom`.

    Raises:
        ImageReadError: `not_an_image` for bytes that are not DICOM, else as `read_dicom`.
    """
    try:
        dataset = _parse_dicom(data, name)
    except ImageReadError:
        raise not_an_image from None
    if not _has_dicom_evidence(dataset):
        raise not_an_image from None
    return _dicom_pixels(dataset, name)


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

    data, name = read_bytes(source)
    try:
        with quiet_warnings():
            dataset = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    except Exception as error:
        raise ImageReadError(f"{name}: not a readable DICOM file ({_first_line(error)})") from None
    fields = TECHNICAL_FIELDS + (PATIENT_FIELDS if include_patient_fields else ())
    values = {field: _dicom_value(dataset, field) for field in fields}
    return {field: value for field, value in values.items() if value is not None}


def infer_transfer_syntax(dataset) -> None:
    """Give a data set without a Transfer Syntax UID the one its elements were encoded in.

    Files without file meta information (or with file meta that lacks the UID) cannot have
    their pixels decoded, although the reader already found out whether the data set is
    implicit or explicit VR, little or big endian. Native (uncompressed) pixel data is fully
    described by that; encapsulated pixel data needs its codec named, so it is left alone and
    fails with pydicom's own message.

    Args:
        dataset: A pydicom data set as `dcmread(..., force=True)` returns it; its file meta
            gains `TransferSyntaxUID` when one can be inferred.
    """
    from pydicom.dataset import FileMetaDataset

    file_meta = getattr(dataset, "file_meta", None)
    if file_meta is not None and "TransferSyntaxUID" in file_meta:
        return
    syntax = _syntax_for_encoding(*getattr(dataset, "original_encoding", (None, None)))
    if syntax is None or _has_encapsulated_pixels(dataset):
        return
    if file_meta is None:
        dataset.file_meta = file_meta = FileMetaDataset()
    file_meta.TransferSyntaxUID = syntax


def _syntax_for_encoding(implicit_vr: bool | None, little_endian: bool | None):
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if implicit_vr is None or little_endian is None:
        return None
    if implicit_vr:
        return ImplicitVRLittleEndian if little_endian else None  # no implicit big endian
    return ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian


def _has_encapsulated_pixels(dataset) -> bool:
    try:
        with quiet_warnings():
            return "PixelData" in dataset and dataset["PixelData"].is_undefined_length
    except Exception:  # a damaged element: leave the decoding error to pydicom
        return False


def _dicom_value(dataset, keyword: str) -> str | None:
    """An element's value as a string; None when absent or malformed (unknown VR, bad value)."""
    try:
        with quiet_warnings():
            value = dataset.get(keyword)
            return None if value is None else str(value)
    except Exception:  # a malformed element must not stop reading the others
        return None


def _parse_dicom(data: bytes, name: str):
    import pydicom

    try:
        with quiet_warnings():
            return pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as error:
        raise ImageReadError(f"{name}: not a readable DICOM file ({_first_line(error)})") from None


def _has_dicom_evidence(dataset) -> bool:
    from pydicom.datadict import keyword_for_tag

    try:
        with quiet_warnings():
            file_meta = getattr(dataset, "file_meta", None) or {}
            if any(keyword in file_meta for keyword in _DICOM_META_EVIDENCE):
                return True
            tags = dataset.keys()  # tags only: iterating the dataset would convert values
            return any(keyword_for_tag(tag) for tag in tags)
    except Exception:  # a garbage dataset can fail while being searched
        return False


def _dicom_pixels(dataset, name: str) -> tuple[np.ndarray, ImageInfo]:
    if "PixelData" not in dataset:
        modality = _dicom_text(dataset, "Modality") or "unknown"
        raise ImageReadError(
            f"{name}: this DICOM object holds no image (modality {modality}); it is truncated "
            "or not an image object: upload a chest radiograph"
        )
    rows, columns = _dicom_int(dataset, "Rows", 0), _dicom_int(dataset, "Columns", 0)
    check_size(columns, rows, name)
    check_decoded_size(dataset, name)
    frame = decoded_frame_index(dataset)
    try:
        with quiet_warnings():
            infer_transfer_syntax(dataset)
            pixels = _decode_one_frame(dataset, frame)
            gray, colors = _dicom_to_gray(dataset, np.asarray(pixels))
    except Exception as error:
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        syntax_name = getattr(syntax, "name", None) or "unknown transfer syntax"
        raise ImageReadError(
            f"{name}: the DICOM pixel data could not be decoded ({syntax_name}: "
            f"{_first_line(error)})"
        ) from None
    if gray.ndim != 2 or gray.size == 0:
        raise ImageReadError(f"{name}: the DICOM pixel data is not a 2-D image ({gray.shape})")
    return gray, _dicom_info(dataset, gray, colors, frame)


def decoded_size(dataset) -> int:
    """Bytes the whole pixel data would take decoded, from the header alone.

    frames x rows x columns x samples per pixel x bytes per sample (bits allocated, rounded up
    to whole bytes; 1-bit data is unpacked to one byte a sample).
    """
    frames = max(1, _dicom_int(dataset, "NumberOfFrames", 1))
    rows, columns = _dicom_int(dataset, "Rows", 0), _dicom_int(dataset, "Columns", 0)
    samples = max(1, _dicom_int(dataset, "SamplesPerPixel", 1))
    bytes_per_sample = max(1, -(-_dicom_int(dataset, "BitsAllocated", 8) // 8))
    return frames * rows * columns * samples * bytes_per_sample


def check_decoded_size(dataset, name: str) -> None:
    """Refuse, before any decoding, a file whose header claims more than `MAX_DECODED_BYTES`."""
    size = decoded_size(dataset)
    if size > MAX_DECODED_BYTES:
        frames = max(1, _dicom_int(dataset, "NumberOfFrames", 1))
        raise ImageReadError(
            f"{name}: the DICOM image is too large to decode ({frames} frame(s), "
            f"{size / 1024**2:,.0f} MiB decoded, limit {MAX_DECODED_BYTES / 1024**2:,.0f} MiB)"
        )


def decoded_frame_index(dataset) -> int:
    """The one frame decoded from a multi-frame file: the middle one (0 for a single image)."""
    return max(1, _dicom_int(dataset, "NumberOfFrames", 1)) // 2


def _decode_one_frame(dataset, frame: int) -> np.ndarray:
    """One frame's pixels; pydicom decodes only that frame, never the whole pixel data."""
    from pydicom.pixels import pixel_array

    if max(1, _dicom_int(dataset, "NumberOfFrames", 1)) == 1:
        return pixel_array(dataset)
    return pixel_array(dataset, index=frame)


def _dicom_text(dataset, keyword: str) -> str | None:
    """An element's value stripped and upper-cased; None when absent, empty or malformed."""
    text = (_dicom_value(dataset, keyword) or "").strip()
    return text.upper() or None


def _dicom_int(dataset, keyword: str, default: int) -> int:
    try:
        with quiet_warnings():
            return int(dataset.get(keyword, default) or default)
    except Exception:  # a malformed element must not stop decoding
        return default


def _dicom_info(dataset, gray: np.ndarray, colors: float, frame: int) -> ImageInfo:
    return ImageInfo(
        format="DICOM",
        width=int(gray.shape[1]),
        height=int(gray.shape[0]),
        mode=_dicom_text(dataset, "PhotometricInterpretation") or "unknown",
        color_fraction=colors,
        frames=max(1, _dicom_int(dataset, "NumberOfFrames", 1)),
        decoded_frame=frame,
        modality=_dicom_text(dataset, "Modality"),
        body_part=_dicom_text(dataset, "BodyPartExamined"),
        view_position=_dicom_text(dataset, "ViewPosition"),
    )


def _dicom_to_gray(dataset, pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """(gray float32 (H, W) in [0, 1], colour fraction) for decoded DICOM pixels."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

    photometric = _dicom_text(dataset, "PhotometricInterpretation") or ""
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, dataset)
    if pixels.ndim == 3 and pixels.shape[-1] >= 3:
        rgb = scale_to_unit(pixels[..., :3])
        luminance = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return scale_to_unit(luminance), color_fraction(rgb)
    pixels = apply_modality_lut(pixels, dataset)
    pixels = apply_voi_lut(pixels, dataset, index=0)
    gray = scale_to_unit(np.asarray(pixels))
    if photometric == "MONOCHROME1":
        gray = 1.0 - gray
    return gray, 0.0
