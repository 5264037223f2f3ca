"""preprocessing: the one contract from any decoded image to the model input (S, S, 1)."""

from __future__ import annotations

import numpy as np
import pytest

from pneumonet_core.imaging import ImageReadError, read_image
from pneumonet_core.imaging.preprocessing import (
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    PREPROCESSING,
    check_image_size,
    preprocess_image,
    resize_array,
    resize_image,
)


@pytest.mark.parametrize("size", [32, 64, 150])
def test_resize_image_returns_square_single_channel_float32(size):
    image = np.random.default_rng(0).random((40, 70)).astype(np.float32)
    resized = resize_image(image, size)
    assert resized.shape == (size, size, 1)
    assert resized.dtype == np.float32
    assert resized.min() >= 0.0 and resized.max() <= 1.0


def test_resize_image_keeps_extremes_in_range_and_constants_constant():
    checker = np.indices((10, 10)).sum(axis=0) % 2  # 0/1 checkerboard: worst case for overshoot
    resized = resize_image(checker.astype(np.float32), 37)
    assert resized.min() >= 0.0 and resized.max() <= 1.0
    constant = resize_image(np.full((13, 29), 0.25, dtype=np.float32), 32)
    np.testing.assert_allclose(constant, 0.25, atol=1e-6)


def test_resize_image_keeps_orientation():
    image = np.zeros((60, 80), dtype=np.float32)
    image[:, :40] = 1.0  # bright left half
    image[:30, :] *= 0.5  # top half dimmer
    resized = resize_image(image, 32)[..., 0]
    assert resized[:, :12].mean() > 0.7 and resized[:, 20:].mean() < 0.05
    assert resized[:12, :12].mean() < resized[20:, :12].mean()


@pytest.mark.parametrize("bad", [MIN_IMAGE_SIZE - 1, MAX_IMAGE_SIZE + 1, 0, -64, 64.0, "64", None])
def test_bad_image_size_raises_value_error_naming_it(bad):
    with pytest.raises(ValueError, match="image_size") as caught:
        check_image_size(bad)
    assert repr(bad) in str(caught.value)


def test_check_image_size_accepts_numpy_integers():
    assert check_image_size(np.int64(64)) == 64
    assert type(check_image_size(np.int64(64))) is int


def test_resize_image_refuses_non_2d_input():
    with pytest.raises(ValueError, match=r"\(10, 10, 3\)"):
        resize_image(np.zeros((10, 10, 3), dtype=np.float32), 32)


def test_preprocess_image_is_read_then_resize(image_factory):
    path = image_factory("sample.png", label_index=1, seed=4)
    expected = resize_image(read_image(path), 48)
    np.testing.assert_array_equal(preprocess_image(path, 48), expected)
    np.testing.assert_array_equal(preprocess_image(path.read_bytes(), 48), expected)


def test_preprocess_image_propagates_read_and_size_errors(image_factory):
    with pytest.raises(ImageReadError):
        preprocess_image(b"not an image", 32)
    with pytest.raises(ValueError, match="image_size .* got 8"):
        preprocess_image(image_factory("ok.png"), 8)


def test_preprocessing_contract_is_described():
    assert PREPROCESSING["name"] == "pneumonet-gray-v1"
    assert {"color", "resize", "scale"} <= set(PREPROCESSING)


def test_resize_array_takes_height_then_width_and_matches_pillow_bilinear():
    from PIL import Image

    image = np.random.default_rng(1).random((40, 70)).astype(np.float32)
    resized = resize_array(image, (25, 90))
    assert resized.shape == (25, 90)
    assert resized.dtype == np.float32
    direct = Image.fromarray(image, mode="F").resize((90, 25), Image.Resampling.BILINEAR)
    np.testing.assert_allclose(resized, np.clip(np.asarray(direct), 0.0, 1.0), atol=1e-7)
    np.testing.assert_array_equal(resize_image(image, 32)[..., 0], resize_array(image, (32, 32)))


def test_resize_array_refuses_bad_shapes_and_sizes():
    with pytest.raises(ValueError, match=r"\(10, 10, 1\)"):
        resize_array(np.zeros((10, 10, 1), dtype=np.float32), (5, 5))
    with pytest.raises(ValueError, match="positive"):
        resize_array(np.zeros((10, 10), dtype=np.float32), (0, 5))
