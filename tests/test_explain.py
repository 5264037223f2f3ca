"""explain: Grad-CAM heatmaps and their overlay on the X-ray."""

from __future__ import annotations

import numpy as np
import pytest

from pneumonet_core.explain import GradCam, grad_cam, overlay_heatmap
from pneumonet_core.modelio import load_model
from pneumonet_core.preprocessing import preprocess_image


@pytest.fixture(scope="module")
def trained_model(trained_model_path):
    model, _ = load_model(trained_model_path)
    return model


@pytest.fixture
def image(image_factory) -> np.ndarray:
    return preprocess_image(image_factory("xray.png", label_index=1, seed=5), 32)


def test_grad_cam_returns_a_unit_heatmap_of_the_input_size(trained_model, image):
    heatmap = grad_cam(trained_model, image)
    assert heatmap.shape == (32, 32)
    assert heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
    assert heatmap.max() > 0.5  # normalised to its maximum, not all zeros


def test_grad_cam_depends_on_the_image(trained_model, image_factory):
    explainer = GradCam(trained_model)
    first = explainer(preprocess_image(image_factory("a.png", label_index=1, seed=1), 32))
    second = explainer(preprocess_image(image_factory("b.png", label_index=1, seed=2), 32))
    assert not np.allclose(first, second)


def test_grad_cam_works_for_the_pneumonet_architecture():
    import keras

    from pneumonet_core.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model("pneumonet", image_size=64)
    image = np.random.default_rng(0).random((64, 64, 1)).astype(np.float32)
    heatmap = grad_cam(model, image)
    assert heatmap.shape == (64, 64)
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0


def test_grad_cam_rejects_bad_layers_and_shapes(trained_model, image):
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        GradCam(trained_model, "nope")
    with pytest.raises(ValueError, match="'dense' must output a 4-D feature map"):
        GradCam(trained_model, "dense")
    with pytest.raises(ValueError, match=r"got \(64, 64, 1\)"):
        grad_cam(trained_model, np.zeros((64, 64, 1), dtype=np.float32))


def test_overlay_returns_rgb_uint8_of_the_image_size(image):
    heatmap = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    overlay = overlay_heatmap(image, heatmap, opacity=0.4)
    assert overlay.shape == (32, 32, 3)
    assert overlay.dtype == np.uint8


def test_overlay_opacity_blends_between_image_and_colour_map(image):
    heatmap = np.ones((8, 8), dtype=np.float32)  # resized up to the image
    plain = overlay_heatmap(image, heatmap, opacity=0.0)
    expected_gray = (np.clip(image[..., 0], 0, 1) * 255).astype(np.uint8)
    for channel in range(3):
        np.testing.assert_allclose(plain[..., channel], expected_gray, atol=1)
    full = overlay_heatmap(image, heatmap, opacity=1.0)
    # 'jet' at 1.0 is dark red everywhere, whatever the image.
    assert (full[..., 0] > 100).all() and (full[..., 1] < 5).all() and (full[..., 2] < 5).all()


def test_overlay_keeps_a_non_square_image_size():
    image = np.zeros((20, 30), dtype=np.float32)
    assert overlay_heatmap(image, np.zeros((5, 5), dtype=np.float32)).shape == (20, 30, 3)


def test_overlay_rejects_bad_arguments(image):
    heatmap = np.zeros((32, 32), dtype=np.float32)
    with pytest.raises(ValueError, match=r"opacity must be in \[0, 1\], got 1.5"):
        overlay_heatmap(image, heatmap, opacity=1.5)
    with pytest.raises(ValueError, match="grayscale"):
        overlay_heatmap(np.zeros((32, 32, 3), dtype=np.float32), heatmap)
