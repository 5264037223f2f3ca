"""chest_layout: the classical second witness for "not a chest X-ray"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom.data
import pytest
from sklearn.datasets import load_sample_images

from pneumonet_core.imaging import ImageReadError, read_image, resize_image
from pneumonet_core.inference import ChestLayout, chest_layout, looks_like_chest
from pneumonet_core.inference.chest_likeness import MIN_MEDIASTINUM_CONTRAST

SIZE = 128
PYDICOM_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "JPEG2000.dcm",
    "693_J2KI.dcm",
    "examples_overlay.dcm",
    "liver_1frame.dcm",
    "image_dfl.dcm",
    "examples_palette.dcm",
    "examples_ybr_color.dcm",
    "examples_jpeg2k.dcm",
    "SC_rgb_jpeg_dcmd.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "ExplVR_BigEnd.dcm",
    "JPEGLSNearLossless_16.dcm",
    "rtdose_1frame.dcm",
)


def non_chest_images() -> list[np.ndarray]:
    """scikit-learn's two photos in grayscale and pydicom's test images, at the model size."""
    photos = [
        pixels.astype(np.float32).mean(axis=-1) / 255 for pixels in load_sample_images().images
    ]
    folder = Path(pydicom.data.__file__).parent / "test_files"
    scans = []
    for name in PYDICOM_FILES:
        try:
            scans.append(read_image(folder / name))
        except ImageReadError:
            continue
    return [resize_image(image, SIZE) for image in photos + scans]


def test_real_x_rays_look_like_chests(real_data):
    paths = sorted((real_data / "test" / "NORMAL").glob("*.jpeg"))[::8]
    paths += sorted((real_data / "test" / "PNEUMONIA").glob("*.jpeg"))[::8]
    paths += sorted((real_data / "val").glob("*/*.jpeg"))
    assert len(paths) > 50
    unlike = [
        path.name for path in paths if not looks_like_chest(resize_image(read_image(path), SIZE))
    ]
    assert unlike == []


def test_most_non_chest_images_do_not_look_like_chests():
    images = non_chest_images()
    assert len(images) >= 15
    chest_like = sum(looks_like_chest(image) for image in images)
    # Measured: 2 of 17 (a CT slice and a colour ultrasound frame) have a chest-like layout;
    # those stay "outside validated use", never unflagged.
    assert chest_like <= 0.2 * len(images), chest_like


def test_a_flat_or_inverted_picture_has_no_chest_layout():
    flat = np.full((SIZE, SIZE), 0.5, dtype=np.float32)
    assert not looks_like_chest(flat)
    columns = np.abs(np.linspace(-1, 1, SIZE))  # bright sides, dark middle: no mediastinum
    assert not looks_like_chest(np.tile(columns, (SIZE, 1)))


def test_a_drawn_chest_has_the_layout():
    columns = 1 - np.abs(np.linspace(-1, 1, SIZE))  # bright middle, darker lungs beside it
    rows = np.linspace(0.0, 0.3, SIZE)[:, None]  # brighter towards the abdomen
    layout = chest_layout((np.tile(columns, (SIZE, 1)) + rows)[..., None])
    assert isinstance(layout, ChestLayout)
    assert layout.mediastinum_contrast >= MIN_MEDIASTINUM_CONTRAST
    assert layout.looks_like_chest


@pytest.mark.parametrize("shape", [(8, 8), (32, 32, 3), (10,)])
def test_a_wrong_shape_is_a_clear_error(shape):
    with pytest.raises(ValueError, match="expected a grayscale image at least 16x16"):
        chest_layout(np.zeros(shape, dtype=np.float32))
