"""explain: Grad-CAM heatmaps and their overlay on the X-ray."""

from __future__ import annotations

import numpy as np
import pytest

from pneumonet_core.imaging.preprocessing import preprocess_image
from pneumonet_core.inference.explain import GradCam, grad_cam, overlay_heatmap
from pneumonet_core.models.architectures import GRADCAM_LAYER
from pneumonet_core.models.modelio import load_model


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

    from pneumonet_core.models.architectures import build_model

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


# --- Grad-CAM finds what a model learned to find --------------------------------------------

PATCH_IMAGE_SIDE = 48
PATCH_SIDE = 8
PEAK_TOLERANCE = 2  # pixels: the heatmap comes from a 12x12 map, 4 pixels per cell


def patch_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Noisy dark images; label 1 adds a bright 8x8 square at a random place.

    Returns:
        `(images (count, 48, 48, 1) float32 in [0, 1], labels (count,), boxes)`; a box is
        `(top, left)` of the square, None for label 0. Squares keep 4 pixels from the border,
        so an all-zero heatmap (peak at (0, 0)) can never land on one.
    """
    rng = np.random.default_rng(seed)
    images = rng.normal(0.3, 0.05, (count, PATCH_IMAGE_SIDE, PATCH_IMAGE_SIDE, 1))
    labels = np.arange(count) % 2
    boxes = []
    for image, label in zip(images, labels, strict=True):
        if not label:
            boxes.append(None)
            continue
        top, left = rng.integers(4, PATCH_IMAGE_SIDE - PATCH_SIDE - 4, size=2)
        image[top : top + PATCH_SIDE, left : left + PATCH_SIDE] += 0.5
        boxes.append((int(top), int(left)))
    return np.clip(images, 0.0, 1.0).astype(np.float32), labels, boxes


def patch_detector():
    """A small CNN whose `GRADCAM_LAYER` is a 12x12 map (PneumoNet's is 2x2 at 48 pixels)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(PATCH_IMAGE_SIDE, PATCH_IMAGE_SIDE, 1))
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name=GRADCAM_LAYER)(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def distance_to_box(row: int, column: int, box: tuple[int, int]) -> int:
    """Pixels between a point and an 8x8 box (0 inside it), along the worse axis."""
    top, left = box
    rows_off = max(top - row, 0, row - (top + PATCH_SIDE - 1))
    columns_off = max(left - column, 0, column - (left + PATCH_SIDE - 1))
    return max(rows_off, columns_off)


@pytest.mark.slow
def test_grad_cam_peaks_on_the_bright_patch_a_model_learned_to_find():
    import keras

    keras.utils.set_random_seed(0)
    train_images, train_labels, _ = patch_images(480, seed=0)
    test_images, test_labels, boxes = patch_images(40, seed=1)
    model = patch_detector()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    model.fit(train_images, train_labels, epochs=8, batch_size=32, verbose=0)
    predicted = model.predict(test_images, verbose=0)[:, 0] >= 0.5
    assert np.mean(predicted == test_labels) >= 0.95  # it really learned to find the patch

    explainer = GradCam(model)
    positives = [(image, box) for image, box in zip(test_images, boxes, strict=True) if box]
    on_patch = 0
    for image, box in positives:
        heatmap = explainer(image)
        assert heatmap.max() > 0.5, "an all-zero heatmap points nowhere"
        row, column = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        on_patch += distance_to_box(int(row), int(column), box) <= PEAK_TOLERANCE
    assert on_patch >= 0.9 * len(positives), f"{on_patch}/{len(positives)} peaks on the patch"


def test_distance_to_box_is_zero_inside_and_counts_pixels_outside():
    assert distance_to_box(10, 10, (10, 10)) == 0
    assert distance_to_box(17, 17, (10, 10)) == 0
    assert distance_to_box(19, 12, (10, 10)) == 2
    assert distance_to_box(0, 0, (4, 4)) == 4


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
