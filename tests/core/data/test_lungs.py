"""lungs: the one definition of the lung region, and hiding a region."""

from __future__ import annotations

import numpy as np
import pytest

from pneumonet_core.data.lungs import hide_region, lung_region


def test_lung_region_is_the_documented_box():
    mask = lung_region(100)
    rows, columns = np.nonzero(mask)
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (15, 84, 12, 87)
    assert mask.sum() == 70 * 76


def test_lung_region_rejects_a_bad_size():
    with pytest.raises(ValueError, match="image_size"):
        lung_region(0)


def test_hide_region_fills_with_each_images_mean_and_keeps_the_rest():
    images = np.stack([np.full((10, 10, 1), 0.2), np.full((10, 10, 1), 0.8)]).astype(np.float32)
    images[0, 0, 0, 0] = 1.0
    region = np.zeros((10, 10), dtype=bool)
    region[4:6, 4:6] = True
    hidden = hide_region(images, region)
    assert hidden[0, 4, 4, 0] == pytest.approx(images[0].mean())
    assert hidden[1, 5, 5, 0] == pytest.approx(0.8)
    np.testing.assert_array_equal(hidden[:, ~region], images[:, ~region])


def test_hide_region_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="expected images"):
        hide_region(np.zeros((1, 8, 8, 1)), np.zeros((10, 10), dtype=bool))
