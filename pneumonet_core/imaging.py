"""Decode any supported input into one grayscale image.

Everything that reads pixels (training, the command line, the dashboard) goes through
`read_image`, so a PNG, a JPEG and a DICOM file of the same X-ray reach the model alike.
DICOM decoding lives in `pneumonet_core.dicom`; its public names (`read_dicom_header`,
`PATIENT_FIELDS`, `TECHNICAL_FIELDS`) can still be imported from here.
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

from pneumonet_core.errors import first_line

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

# Larger images are refused before decoding (a small file can claim billions of pixels).
MAX_PIXELS = 60_000_000
# The one list of file suffixes the decoder reads (lower case, with the dot): what a dataset
# scan, a folder given to `pneumonet predict` and the dashboard's uploader accept.
PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
IMAGE_SUFFIXES = PILLOW_SUFFIXES + DICOM_SUFFIXES
# The same, without the dot (as file pickers such as Streamlit's uploader want them).
UPLOAD_TYPES = tuple(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)
# Characters of a library's error message quoted in an ImageReadError.
DETAIL_LIMIT = 200
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
    from pneumonet_core import dicom

    if data[128:132] == b"DICM":
        return dicom.read_dicom(data, name)
    try:
        return _read_pillow_pixels(data, name)
    except ImageReadError as pillow_error:
        if _is_unidentified(pillow_error):
            return dicom.read_dicom_without_preamble(data, name, pillow_error)
        raise


def is_dicom(source: ImageSource) -> bool:
    """Whether the input is a DICOM file (by its 'DICM' marker or file name)."""
    data, name = _read_bytes(source)
    return _looks_like_dicom(data, name)


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
        detail = first_line(error, DETAIL_LIMIT)
        raise ImageReadError(
            f"{name}: the image claims too many pixels to be decoded ({detail})"
        ) from None
    except ImageReadError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Warning, MemoryError) as error:
        raise ImageReadError(
            f"{name}: the image is damaged or truncated ({first_line(error, DETAIL_LIMIT)})"
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


# Names that moved to pneumonet_core.dicom, which imports this module: resolved on first use.
_DICOM_NAMES = ("PATIENT_FIELDS", "TECHNICAL_FIELDS", "read_dicom_header")


def __getattr__(name: str):
    if name in _DICOM_NAMES:
        from pneumonet_core import dicom

        return getattr(dicom, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
