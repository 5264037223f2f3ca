"""The lung region of a chest X-ray, defined once for the shortcut audit.

The region is a fixed box on the model's square input: rows 15-85% and columns 12-88% of the
image. On these AP paediatric radiographs, resized to a square without keeping the aspect
ratio, the box holds both lung fields with a margin, and leaves out the borders, shoulders,
neck, markers and the abdomen below the diaphragm. A classical threshold-and-morphology mask
was tried (`bench/lung_mask_trial.py`): it passed its own sanity check on 96% of 120 `test/`
and 85% of 120 `train/` images, but looking at the masks showed it often takes the air
outside the body along the image sides, exactly the region the audit must not count as lung.
So the fixed box, the same for every image, is the definition.

NumPy only: this module never imports TensorFlow.
"""

from __future__ import annotations

import numpy as np

LUNG_BOX = {"top": 0.15, "bottom": 0.85, "left": 0.12, "right": 0.88}


def lung_region(image_size: int) -> np.ndarray:
    """Boolean mask of the lung region on a square model input.

    Args:
        image_size: Side of the square input in pixels, at least 1.

    Returns:
        bool array (image_size, image_size): True inside the lung region.
    """
    if int(image_size) < 1:
        raise ValueError(f"image_size must be at least 1, got {image_size!r}")
    size = int(image_size)
    rows = slice(round(LUNG_BOX["top"] * size), round(LUNG_BOX["bottom"] * size))
    columns = slice(round(LUNG_BOX["left"] * size), round(LUNG_BOX["right"] * size))
    mask = np.zeros((size, size), dtype=bool)
    mask[rows, columns] = True
    return mask


def hide_region(images: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Fill a region of each image with that image's mean grey.

    Args:
        images: float array (n, S, S, 1) in [0, 1].
        region: bool array (S, S): True where the image is hidden.

    Returns:
        A new float32 array (n, S, S, 1) in [0, 1].
    """
    images = np.asarray(images, dtype=np.float32)
    region = np.asarray(region, dtype=bool)
    if images.ndim != 4 or images.shape[1:3] != region.shape:
        raise ValueError(
            f"expected images (n, {region.shape[0]}, {region.shape[1]}, 1), got {images.shape}"
        )
    means = images.mean(axis=(1, 2, 3), keepdims=True)
    return np.where(region[np.newaxis, :, :, np.newaxis], means, images).astype(np.float32)
