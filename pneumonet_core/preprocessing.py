"""The preprocessing contract: one function turns any input into the model's input.

Training, evaluation, the command line and the dashboard all call `preprocess_image` (or
`resize_image` on an already decoded image), so they can never drift apart. The contract is
recorded in each model's metadata as `PREPROCESSING`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pneumonet_core.imaging import ImageSource, read_image

PREPROCESSING = {
    "name": "pneumonet-gray-v1",
    "color": "grayscale (ITU-R 601 luminance), 1 channel",
    "resize": "bilinear to a square image_size x image_size, aspect ratio not kept",
    "scale": "float32 in [0, 1] (8-bit images divided by 255; DICOM and 16-bit min-max scaled "
    "after modality and VOI LUT; MONOCHROME1 inverted)",
}
MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 512


def check_image_size(image_size: int) -> int:
    """Validate a model input size in pixels and return it as int."""
    if not isinstance(image_size, int | np.integer) or not (
        MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE
    ):
        raise ValueError(
            f"image_size must be an integer between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE}, "
            f"got {image_size!r}"
        )
    return int(image_size)


def resize_image(image: np.ndarray, image_size: int) -> np.ndarray:
    """Resize a decoded grayscale image to the model's square input.

    Args:
        image: float array (height, width) with values in [0, 1].
        image_size: Side of the square output in pixels.

    Returns:
        float32 array (image_size, image_size, 1) with values in [0, 1].
    """
    image_size = check_image_size(image_size)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
    resized = Image.fromarray(image, mode="F").resize(
        (image_size, image_size), Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)[..., np.newaxis]


def preprocess_image(source: ImageSource, image_size: int) -> np.ndarray:
    """Decode and resize any supported input into the model's input.

    Args:
        source: A path, bytes or binary file object (PNG, JPEG, DICOM, ...).
        image_size: Side of the square model input in pixels.

    Returns:
        float32 array (image_size, image_size, 1) with values in [0, 1].

    Raises:
        ImageReadError: The input cannot be decoded.
        ValueError: `image_size` is out of range.
    """
    return resize_image(read_image(source), image_size)
