"""Decode any supported input into one grayscale image.

Everything that reads pixels (training, the command line, the dashboard) goes through
`read_image`, so a PNG, a JPEG and a DICOM file of the same X-ray reach the model alike.
Pillow formats are decoded here, DICOM in `dicom`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pneumonet_core.imaging import dicom
from pneumonet_core.imaging.sources import (
    COLOR_THUMBNAIL_SIDE,
    DETAIL_LIMIT,
    PILLOW_FORMATS,
    ImageInfo,
    ImageReadError,
    ImageSource,
    check_size,
    color_fraction,
    looks_like_dicom,
    quiet_warnings,
    read_bytes,
    scale_to_unit,
)
from pneumonet_core.utils.errors import first_line


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


def read_image_with_info(
    source: ImageSource, min_side: int | None = None
) -> tuple[np.ndarray, ImageInfo]:
    """Decode an image like `read_image` and also describe the original file.

    Args:
        source: A path, the file's bytes, or a binary file object.
        min_side: When given, a JPEG is decoded at a reduced scale (1/2, 1/4 or 1/8, straight
            from its DCT coefficients, `PIL.Image.draft`) as long as both its sides stay at
            least `min_side` pixels; other formats, and None, decode at full size. The info
            still describes the original (its full width and height).

    Returns:
        `(gray, info)`: gray is float32 (height, width) in [0, 1], exactly what `read_image`
        returns; info is an `ImageInfo` (original size, colour, DICOM modality...).

    Raises:
        ImageReadError: As `read_image`.
    """
    data, name = read_bytes(source)
    if not data:
        raise ImageReadError(f"{name}: the file is empty")
    if data[128:132] == b"DICM":
        return dicom.read_dicom(data, name)
    try:
        return _read_pillow_pixels(data, name, min_side)
    except ImageReadError as pillow_error:
        if _is_unidentified(pillow_error):
            return dicom.read_dicom_without_preamble(data, name, pillow_error)
        raise


def is_dicom(source: ImageSource) -> bool:
    """Whether the input is a DICOM file (by its 'DICM' marker or file name)."""
    data, name = read_bytes(source)
    return looks_like_dicom(data, name)


def _is_unidentified(error: ImageReadError) -> bool:
    return isinstance(error.__cause__, UnidentifiedImageError)


def _read_pillow_pixels(
    data: bytes, name: str, min_side: int | None = None
) -> tuple[np.ndarray, ImageInfo]:
    try:
        with _open_pillow(data, name) as image:
            image.seek(0)
            full_size = image.size
            if min_side is not None and image.format == "JPEG":
                image.draft(image.mode, (min_side, min_side))
            decoded_size = image.size
            image.load()
            with quiet_warnings():
                oriented = ImageOps.exif_transpose(image)
            if oriented.size != decoded_size:  # turned by its EXIF orientation
                full_size = full_size[::-1]
            info = _pillow_info(image, oriented, full_size)
            return _pillow_to_gray(oriented), info
    except UnidentifiedImageError as error:
        raise ImageReadError(
            f"{name}: not a recognised image (expected PNG, JPEG, BMP, TIFF, WebP, GIF or DICOM)"
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
        image = Image.open(io.BytesIO(data), formats=PILLOW_FORMATS)
    try:
        check_size(image.width, image.height, name)
    except ImageReadError:
        image.close()
        raise
    return image


def _pillow_info(
    original: Image.Image, oriented: Image.Image, full_size: tuple[int, int]
) -> ImageInfo:
    return ImageInfo(
        format=str(original.format or "unknown"),
        width=full_size[0],
        height=full_size[1],
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


def _pillow_to_gray(image: Image.Image) -> np.ndarray:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return scale_to_unit(np.asarray(image, dtype=np.float32))
    if image.mode in ("RGBA", "LA", "PA", "P"):
        image = _flatten_alpha(image)
    if image.mode != "L":
        image = image.convert("RGB").convert("L")
    return np.asarray(image, dtype=np.float32) / 255.0


def _flatten_alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")
