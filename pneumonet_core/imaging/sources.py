"""What every decoder shares: accepted inputs, the error, the file description, limits.

`decode` (Pillow formats) and `dicom` both build on this module, so neither needs the
other's internals.
"""

from __future__ import annotations

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

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

# Larger images are refused before decoding (a small file can claim billions of pixels).
MAX_PIXELS = 60_000_000
# A DICOM file whose header claims more decoded bytes than this (frames x rows x columns x
# samples per pixel x bytes per sample) is refused before any decoding: a small compressed
# upload can otherwise claim gigabytes of frames. Only one frame of an accepted file is decoded.
MAX_DECODED_BYTES = 1024**3
# The Pillow formats the decoder opens, and no other (a renamed EPS, PSD, ICO... never reaches
# a decoder that was not chosen). JPEG also opens cameras' MPO files.
PILLOW_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF")
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
        frames: Number of frames (animated images, multi-frame DICOM); only one frame is
            decoded: the first (Pillow) or the middle one (DICOM), named by `decoded_frame`.
        decoded_frame: Index (from 0) of the frame that was decoded.
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
    decoded_frame: int = 0
    modality: str | None = None
    body_part: str | None = None
    view_position: str | None = None

    @property
    def frame_note(self) -> str | None:
        """ "frame 3 of 5 decoded" for a multi-frame file, None for a single image."""
        if self.frames <= 1:
            return None
        return f"frame {self.decoded_frame + 1} of {self.frames} decoded"

    @property
    def aspect_ratio(self) -> float:
        """Long side over short side of the original image (>= 1)."""
        return max(self.width, self.height) / max(1, min(self.width, self.height))


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


def read_bytes(source: ImageSource) -> tuple[bytes, str]:
    """The input's bytes and a display name; ImageReadError when it cannot be read."""
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


def looks_like_dicom(data: bytes, name: str) -> bool:
    return data[128:132] == b"DICM" or name.lower().endswith(DICOM_SUFFIXES)


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


def check_size(width: int, height: int, name: str) -> None:
    """Refuse an image with no pixels or more than `MAX_PIXELS`, before decoding it."""
    if width < 1 or height < 1:
        raise ImageReadError(f"{name}: the image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise ImageReadError(
            f"{name}: the image is too large ({width}x{height} pixels, limit {MAX_PIXELS:,})"
        )


def scale_to_unit(pixels: np.ndarray) -> np.ndarray:
    """Min-max scale any numeric array to float32 [0, 1]; a constant image becomes zeros."""
    pixels = np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.float32)
    return ((pixels - low) / (high - low)).astype(np.float32)
