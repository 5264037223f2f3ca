"""The preprocessing contract: one function turns any input into the model's input.

Training, evaluation, the command line and the dashboard all call `preprocess_image` (or
`resize_image` on an already decoded image), so they can never drift apart. The contract is
recorded in each model's metadata as `PREPROCESSING`. `resize_array` is the bilinear resize
under it, also used for display images and Grad-CAM heatmaps.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pneumonet_core.imaging.decode import read_image
from pneumonet_core.imaging.sources import ImageSource

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


def resize_array(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D float image: the one resize every module uses.

    Args:
        image: float array (height, width) with values in [0, 1] (an image or a heatmap).
        size: `(height, width)` of the output in pixels, each at least 1.

    Returns:
        float32 array of shape `size` with values in [0, 1] (clipped, so interpolation and
        float rounding cannot leave the range).

    Raises:
        ValueError: The image is not 2-D, or `size` is not two positive integers.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
    height, width = (int(side) for side in size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be two positive integers (height, width), got {size!r}")
    resized = Image.fromarray(image, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def resize_image(image: np.ndarray, image_size: int) -> np.ndarray:
    """Resize a decoded grayscale image to the model's square input.

    Args:
        image: float array (height, width) with values in [0, 1].
        image_size: Side of the square output in pixels.

    Returns:
        float32 array (image_size, image_size, 1) with values in [0, 1].
    """
    image_size = check_image_size(image_size)
    return resize_array(image, (image_size, image_size))[..., np.newaxis]


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
