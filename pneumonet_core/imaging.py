"""Decode any supported input into one grayscale image.

Everything that reads pixels (training, the command line, the dashboard) goes through
`read_image`, so a PNG, a JPEG and a DICOM file of the same X-ray reach the model alike.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


# A pixel counts as "strongly coloured" when its chroma (max - min of R, G, B) exceeds this.
STRONG_CHROMA = 0.15
# Colour statistics are measured on a thumbnail at most this many pixels on its long side.
COLOR_THUMBNAIL_SIDE = 256
# catch_warnings() changes process-wide state; the lock keeps decoding threads from mixing it up.
_WARNINGS_LOCK = threading.RLock()


class ImageReadError(ValueError):
    """An input that cannot be turned into an image; the message is one line for the user."""


@dataclass(frozen=True)
class ImageInfo:
    """What decoding learned about the original file (used by the out-of-distribution checks).

    Attributes:
        format: "PNG", "JPEG", "TIFF", ... or "DICOM".
        width: Width of the original image in pixels (before any resizing).
        height: Height of the original image in pixels.
        mode: Pillow mode ("L", "RGB", ...) or the DICOM photometric interpretation.
        color_fraction: Share of pixels, in [0, 1], that are strongly coloured (chroma above
            `STRONG_CHROMA`); 0.0 for grayscale images.
        frames: Number of frames (animated images, multi-frame DICOM); the first (Pillow) or
            middle (DICOM) frame is the one decoded.
        modality: DICOM Modality ("CR", "DX", "CT", ...), None for other formats.
        body_part: DICOM BodyPartExamined, None when absent.
        view_position: DICOM ViewPosition ("PA", "AP", "LL", ...), None when absent.
    """

    format: str
    width: int
    height: int
    mode: str
    color_fraction: float = 0.0
    frames: int = 1
    modality: str | None = None
    body_part: str | None = None
    view_position: str | None = None

    @property
    def aspect_ratio(self) -> float:
        """Long side over short side of the original image (>= 1)."""
        return max(self.width, self.height) / max(1, min(self.width, self.height))


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
    return read_image_with_info(source)[0]


def read_image_with_info(source: ImageSource) -> tuple[np.ndarray, ImageInfo]:
    """Decode an image like `read_image` and also describe the original file.

    Args:
        source: A path, the file's bytes, or a binary file object.

    Returns:
        `(gray, info)`: gray is float32 (height, width) in [0, 1], exactly what `read_image`
        returns; info is an `ImageInfo` (original size, colour, DICOM modality...).

    Raises:
        ImageReadError: As `read_image`.
    """
    data, name = _read_bytes(source)
    if not data:
        raise ImageReadError(f"{name}: the file is empty")
    if data[128:132] == b"DICM":
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
        with quiet_warnings():
            dataset = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    except Exception as error:
        raise ImageReadError(f"{name}: not a readable DICOM file ({_first_line(error)})") from None
    fields = TECHNICAL_FIELDS + (PATIENT_FIELDS if include_patient_fields else ())
    values = {field: _dicom_value(dataset, field) for field in fields}
    return {field: value for field, value in values.items() if value is not None}


def _dicom_value(dataset, keyword: str) -> str | None:
    """An element's value as a string; None when absent or malformed (unknown VR, bad value)."""
    try:
        with quiet_warnings():
            value = dataset.get(keyword)
            return None if value is None else str(value)
    except Exception:  # a malformed element must not stop reading the others
        return None


@contextmanager
def quiet_warnings() -> Iterator[None]:
    """Silence library warnings (pydicom and Pillow warn on odd files) in a thread-safe way.

    A file that decodes with warnings is fine; one that does not decode raises ImageReadError.
    Either way nothing is printed or logged (pydicom also logs its warnings, with element
    values that may identify a patient), and `-W error` cannot turn a warning into a crash.
    """
    pydicom_logger = logging.getLogger("pydicom")
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous_disabled = pydicom_logger.disabled
        pydicom_logger.disabled = True
        try:
            yield
        finally:
            pydicom_logger.disabled = previous_disabled


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
    """The error's message as one line of at most 200 characters.

    A message that only introduces details on the following lines ("...: ") keeps its first
    detail line, so "all plugins failed:" becomes "all plugins failed: pylibjpeg: ...".
    """
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    text = lines[0]
    if text.endswith(":") and len(lines) > 1:
        text = f"{text} {lines[1]}"
    return text[:200]


def _read_pillow_pixels(data: bytes, name: str) -> tuple[np.ndarray, ImageInfo]:
    try:
        with _open_pillow(data, name) as image:
            image.seek(0)
            image.load()
            with quiet_warnings():
                oriented = ImageOps.exif_transpose(image)
            info = _pillow_info(image, oriented)
            return _pillow_to_gray(oriented), info
    except UnidentifiedImageError as error:
        raise ImageReadError(
            f"{name}: not a recognised image (expected PNG, JPEG or DICOM)"
        ) from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageReadError(
            f"{name}: the image claims too many pixels to be decoded ({_first_line(error)})"
        ) from None
    except ImageReadError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Warning, MemoryError) as error:
        raise ImageReadError(
            f"{name}: the image is damaged or truncated ({_first_line(error)})"
        ) from None


def _open_pillow(data: bytes, name: str) -> Image.Image:
    """Open (headers only, no pixels yet) and refuse images that claim too many pixels."""
    with quiet_warnings():
        image = Image.open(io.BytesIO(data))
    try:
        _check_size(image.width, image.height, name)
    except ImageReadError:
        image.close()
        raise
    return image


def _pillow_info(original: Image.Image, oriented: Image.Image) -> ImageInfo:
    return ImageInfo(
        format=str(original.format or "unknown"),
        width=oriented.width,
        height=oriented.height,
        mode=original.mode,
        color_fraction=_pillow_color_fraction(oriented),
        frames=int(getattr(original, "n_frames", 1) or 1),
    )


def _pillow_color_fraction(image: Image.Image) -> float:
    if image.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
        return 0.0
    # reduce() box-averages straight into a small image (no full-size copy); palette images
    # cannot be averaged, so they are subsampled instead.
    factor = max(1, max(image.size) // COLOR_THUMBNAIL_SIDE)
    if factor == 1:
        thumbnail = image
    elif image.mode in ("P", "PA"):
        thumbnail = image.resize(
            (max(1, image.width // factor), max(1, image.height // factor)),
            Image.Resampling.NEAREST,
        )
    else:
        thumbnail = image.reduce(factor)
    rgb = np.asarray(thumbnail.convert("RGB"), dtype=np.float32) / 255.0
    return color_fraction(rgb)


def color_fraction(rgb: np.ndarray) -> float:
    """Share of strongly coloured pixels in an RGB image.

    Args:
        rgb: float array (height, width, 3) with values in [0, 1].

    Returns:
        Fraction in [0, 1] of pixels whose chroma (max - min over R, G, B) exceeds
        `STRONG_CHROMA`; a grayscale picture stored as RGB gives 0.0.
    """
    if rgb.ndim != 3 or rgb.shape[-1] < 3 or rgb.size == 0:
        raise ValueError(f"expected an RGB image of shape (height, width, 3), got {rgb.shape}")
    channels = rgb[..., :3]
    chroma = channels.max(axis=-1) - channels.min(axis=-1)
    return float(np.mean(chroma > STRONG_CHROMA))


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


# File meta elements that any DICOM file has; without them (and without any standard element)
# bytes that merely start like DICOM are garbage.
_DICOM_META_EVIDENCE = ("TransferSyntaxUID", "MediaStorageSOPClassUID")


def _read_dicom_without_preamble(data: bytes, name: str, pillow_error: ImageReadError):
    """DICOM without the 128-byte preamble; when it is not DICOM either, Pillow's error stands."""
    try:
        dataset = _parse_dicom(data, name)
    except ImageReadError:
        raise pillow_error from None
    if not _has_dicom_evidence(dataset):
        raise pillow_error from None
    return _dicom_pixels(dataset, name)


def _read_dicom_pixels(data: bytes, name: str) -> tuple[np.ndarray, ImageInfo]:
    dataset = _parse_dicom(data, name)
    if not _has_dicom_evidence(dataset):
        raise ImageReadError(
            f"{name}: not a readable DICOM file (no DICOM elements after the 'DICM' marker)"
        )
    return _dicom_pixels(dataset, name)


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
    _check_size(columns, rows, name)
    try:
        with quiet_warnings():
            pixels = dataset.pixel_array
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
    return gray, _dicom_info(dataset, gray, colors)


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


def _dicom_info(dataset, gray: np.ndarray, colors: float) -> ImageInfo:
    return ImageInfo(
        format="DICOM",
        width=int(gray.shape[1]),
        height=int(gray.shape[0]),
        mode=_dicom_text(dataset, "PhotometricInterpretation") or "unknown",
        color_fraction=colors,
        frames=_dicom_int(dataset, "NumberOfFrames", 1),
        modality=_dicom_text(dataset, "Modality"),
        body_part=_dicom_text(dataset, "BodyPartExamined"),
        view_position=_dicom_text(dataset, "ViewPosition"),
    )


def _dicom_to_gray(dataset, pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """(gray float32 (H, W) in [0, 1], colour fraction) for decoded DICOM pixels."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

    frames = _dicom_int(dataset, "NumberOfFrames", 1)
    if frames > 1 and pixels.ndim >= 3 and pixels.shape[0] == frames:
        pixels = pixels[frames // 2]
    photometric = _dicom_text(dataset, "PhotometricInterpretation") or ""
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, dataset)
    if pixels.ndim == 3 and pixels.shape[-1] >= 3:
        rgb = _scale_to_unit(pixels[..., :3])
        luminance = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return _scale_to_unit(luminance), color_fraction(rgb)
    pixels = apply_modality_lut(pixels, dataset)
    pixels = apply_voi_lut(pixels, dataset, index=0)
    gray = _scale_to_unit(np.asarray(pixels))
    if photometric == "MONOCHROME1":
        gray = 1.0 - gray
    return gray, 0.0
