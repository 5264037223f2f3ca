"""layers: the fused RandomAffine warp: exact transforms for known draws, and the draws' ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pneumonet_core.data.augment_layers import RandomAffine


def bright_square(size: int = 33) -> np.ndarray:
    """(1, size, size, 1) dark image with a bright square right of the centre."""
    image = np.zeros((1, size, size, 1), dtype=np.float32)
    image[:, 12:21, 20:29, :] = 1.0
    return image


def centroid(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(image[0, :, :, 0] > 0.5)
    return float(rows.mean()), float(cols.mean())


def affine_with(rotation=0.0, zoom=0.0, translation=0.0) -> RandomAffine:
    return RandomAffine(rotation, zoom, translation, seed=0)


def fixed_transform(layer, angle=0.0, scale=1.0, shift=(0.0, 0.0)):
    """Monkeypatch the layer's draws so the test knows the exact parameters."""
    values = iter([angle, scale - 1.0, shift[0], shift[1]])
    layer._uniform = lambda count, limit: np.full((count,), next(values), dtype=np.float32)
    return layer


def test_identity_at_inference_and_with_zero_ranges():
    image = bright_square()
    np.testing.assert_allclose(np.asarray(affine_with(10, 0.1, 0.1)(image, training=False)), image)
    np.testing.assert_allclose(np.asarray(affine_with()(image, training=True)), image, atol=1e-6)


def test_pure_shift_moves_the_content_by_the_drawn_pixels():
    layer = fixed_transform(affine_with(translation=0.2), shift=(-4.0 / 33, 0.0))
    moved = np.asarray(layer(bright_square(), training=True))
    (row0, col0), (row1, col1) = centroid(bright_square()), centroid(moved)
    assert row1 == pytest.approx(row0, abs=0.01)
    assert col1 == pytest.approx(col0 + 4.0, abs=0.01)  # input = output + shift


def test_rotation_turns_the_content_about_the_centre():
    layer = fixed_transform(affine_with(rotation=90), angle=math.pi / 2)
    turned = np.asarray(layer(bright_square(), training=True))
    row, col = centroid(turned)
    # the square right of the centre (16, 24) ends up above or below it, at the same distance
    assert col == pytest.approx(16.0, abs=0.6)
    assert abs(row - 16.0) == pytest.approx(8.0, abs=0.6)


def test_zoom_scales_the_content_about_the_centre():
    layer = fixed_transform(affine_with(zoom=0.5), scale=0.5)
    centred = np.roll(bright_square(), -8, axis=2)  # square at rows/cols 12..20
    zoomed = np.asarray(layer(centred, training=True))
    assert (zoomed > 0.5).sum() == pytest.approx((centred > 0.5).sum() * 4, rel=0.25)
    assert centroid(zoomed) == pytest.approx(centroid(centred), abs=0.6)


def test_random_draws_stay_in_range_and_differ_per_image():
    layer = affine_with(rotation=10, zoom=0.1, translation=0.05)
    transforms = np.asarray(layer.random_transforms((256, 40, 41, 1))).astype(np.float64)
    assert transforms.shape == (256, 8)
    scale = np.hypot(transforms[:, 0], transforms[:, 3])
    angle = np.degrees(np.arctan2(transforms[:, 3], transforms[:, 0]))
    assert np.all((scale >= 0.9 - 1e-6) & (scale <= 1.1 + 1e-6))
    assert np.all(np.abs(angle) <= 10.0 + 1e-4)
    assert len(np.unique(np.round(angle, 4))) == 256
    # The shift is what maps the centre elsewhere: input centre = output centre + shift.
    centre = np.array([(41 - 1) / 2, (40 - 1) / 2])
    mapped_x = transforms[:, 0] * centre[0] + transforms[:, 1] * centre[1] + transforms[:, 2]
    mapped_y = transforms[:, 3] * centre[0] + transforms[:, 4] * centre[1] + transforms[:, 5]
    shift_x, shift_y = mapped_x - centre[0], mapped_y - centre[1]
    assert np.all(np.abs(shift_x) <= 0.05 * 41 + 1e-3)
    assert np.all(np.abs(shift_y) <= 0.05 * 40 + 1e-3)
    assert np.abs(shift_x).max() > 0.04 * 41  # the whole range is used
    assert np.all(transforms[:, 6:] == 0.0)  # affine, not projective


def test_each_image_of_a_batch_gets_its_own_transform():
    images = np.repeat(bright_square(), 8, axis=0)
    out = np.asarray(affine_with(20, 0.2, 0.1)(images, training=True))
    assert out.shape == images.shape
    assert len({centroid(image[np.newaxis]) for image in out}) == 8


def test_negative_range_raises_naming_it():
    with pytest.raises(ValueError, match="zoom must be 0 or more, got -0.1"):
        RandomAffine(zoom=-0.1)


def test_config_round_trips():
    layer = RandomAffine(5.0, 0.2, 0.1, fill_mode="reflect", seed=3)
    restored = RandomAffine.from_config(layer.get_config())
    assert (restored.rotation_degrees, restored.zoom, restored.translation) == (5.0, 0.2, 0.1)
    assert restored.fill_mode == "reflect" and restored.seed == 3


def test_histogram_equalization_undoes_exposure_changes():
    from pneumonet_core.models.layers import HistogramEqualization

    generator = np.random.default_rng(0)
    levels = generator.integers(0, 256, size=(1, 32, 32, 1)).astype(np.float32) / 255.0
    equalize = HistogramEqualization()
    reference = np.asarray(equalize(levels))
    # A monotonic exposure change keeps each pixel's rank: same output up to grey-level ties.
    darker = np.round((levels**2.0) * 255.0) / 255.0
    changed = np.asarray(equalize(darker))
    assert np.corrcoef(reference.ravel(), changed.ravel())[0, 1] > 0.99
    assert reference.min() == 0.0 and reference.max() == 1.0
    # The output's histogram is flat: each quarter of the range holds about a quarter.
    quarters = np.histogram(reference, bins=4, range=(0, 1))[0] / reference.size
    np.testing.assert_allclose(quarters, 0.25, atol=0.03)


def test_histogram_equalization_of_a_flat_image_is_finite():
    from pneumonet_core.models.layers import HistogramEqualization

    flat = np.full((2, 8, 8, 1), 0.4, dtype=np.float32)
    output = np.asarray(HistogramEqualization()(flat))
    assert np.isfinite(output).all() and output.min() >= 0 and output.max() <= 1


def test_histogram_equalization_rejects_bad_bins():
    from pneumonet_core.models.layers import HistogramEqualization

    with pytest.raises(ValueError, match="bins"):
        HistogramEqualization(bins=1)


def test_random_gamma_draws_within_its_range_and_is_identity_at_inference():
    from pneumonet_core.data.augment_layers import RandomGamma

    image = np.full((64, 4, 4, 1), 0.5, dtype=np.float32)
    layer = RandomGamma(0.4, seed=1)
    np.testing.assert_allclose(np.asarray(layer(image, training=False)), image)
    values = np.asarray(layer(image, training=True))[:, 0, 0, 0]
    low, high = 0.5 ** math.exp(0.4), 0.5 ** math.exp(-0.4)
    assert values.min() >= low - 1e-5 and values.max() <= high + 1e-5
    assert values.std() > 0.02  # it does change the images


def test_random_resolution_blurs_fine_detail_and_keeps_shape():
    from pneumonet_core.data.augment_layers import RandomResolution

    stripes = np.zeros((4, 32, 32, 1), dtype=np.float32)
    stripes[:, :, ::2, :] = 1.0
    layer = RandomResolution(0.5, seed=3)
    output = np.asarray(layer(stripes, training=True))
    assert output.shape == stripes.shape
    assert np.abs(output - stripes).mean() > 0.1  # alternating columns were averaged away
    np.testing.assert_allclose(np.asarray(layer(stripes, training=False)), stripes)
    with pytest.raises(ValueError, match="min_scale"):
        RandomResolution(0.0)


def test_lung_focus_hides_the_outside_and_keeps_the_lungs():
    from pneumonet_core.data.lungs import lung_region
    from pneumonet_core.models.layers import LungFocus

    image = np.random.default_rng(0).random((2, 20, 20, 1), dtype=np.float32)
    region = lung_region(20)
    focused = np.asarray(LungFocus(1.0)(image))
    means = image.mean(axis=(1, 2, 3))
    np.testing.assert_allclose(
        focused[:, ~region, 0], np.repeat(means[:, None], (~region).sum(), 1), atol=1e-6
    )
    np.testing.assert_allclose(focused[:, region], image[:, region], atol=1e-6)
    np.testing.assert_allclose(np.asarray(LungFocus(0.0)(image)), image, atol=1e-6)
    with pytest.raises(ValueError, match="strength"):
        LungFocus(1.5)


def test_models_with_input_layers_save_and_load_in_safe_mode(tmp_path):
    from pneumonet_core.models.architectures import build_model
    from pneumonet_core.models.modelio import ModelMetadata, load_model, save_model

    model = build_model("pneumonet", 48, input_normalization="equalize", lung_focus=1.0)
    path = tmp_path / "model.keras"
    save_model(model, path, ModelMetadata(architecture="pneumonet", image_size=48))
    loaded, _ = load_model(path)
    images = np.random.default_rng(1).random((2, 48, 48, 1), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(model(images)), atol=1e-6)
    assert {"equalize", "lung_focus"} <= {layer.name for layer in loaded.layers}


def test_random_resized_crop_magnifies_a_part_of_the_image():
    from pneumonet_core.data.augment_layers import RandomResizedCrop

    size = 40
    columns = np.tile(np.linspace(0, 1, size, dtype=np.float32), (8, size, 1))[..., None]
    layer = RandomResizedCrop(0.25, aspect_jitter=0.0, seed=4)
    cropped = np.asarray(layer(columns, training=True))
    assert cropped.shape == columns.shape
    # A horizontal ramp stays a ramp; a crop covers at most the full range, at least half.
    spans = cropped[:, 0, -1, 0] - cropped[:, 0, 0, 0]
    assert (spans <= 1.0 + 1e-5).all() and (spans >= 0.5 - 1e-2).all()
    assert spans.min() < 0.95  # some images were really cropped
    np.testing.assert_allclose(np.asarray(layer(columns, training=False)), columns)
    with pytest.raises(ValueError, match="min_area"):
        RandomResizedCrop(0.0)


def test_crop_then_affine_composes_the_two_maps_with_the_same_draws():
    from pneumonet_core.data.augment_layers import RandomCropThenAffine, RandomResizedCrop

    shape = (6, 40, 30, 1)
    fused = RandomCropThenAffine(
        RandomResizedCrop(0.3, seed=5), RandomAffine(10, 0.1, 0.05, seed=6)
    )
    combined = np.asarray(fused.random_transforms(shape))
    crop = np.asarray(RandomResizedCrop(0.3, seed=5).random_transforms(shape))
    affine = np.asarray(RandomAffine(10, 0.1, 0.05, seed=6).random_transforms(shape))
    for index in range(shape[0]):
        point = np.array([7.0, 11.0, 1.0])  # an output pixel (x, y)
        after_affine = affine[index, :6].reshape(2, 3) @ point
        expected = crop[index, :6].reshape(2, 3) @ np.append(after_affine, 1.0)
        got = combined[index, :6].reshape(2, 3) @ point
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_crop_then_affine_warps_like_the_two_layers_in_turn():
    from pneumonet_core.data.augment_layers import RandomCropThenAffine, RandomResizedCrop

    size = 48
    ramp = np.add.outer(np.linspace(0, 0.5, size), np.linspace(0, 0.5, size)).astype(np.float32)
    images = np.repeat(ramp[None, :, :, None], 4, axis=0)
    fused = RandomCropThenAffine(RandomResizedCrop(0.5, seed=1), RandomAffine(5, 0.05, 0.0, seed=2))
    once = np.asarray(fused(images, training=True))
    cropped = RandomResizedCrop(0.5, seed=1)(images, training=True)
    twice = np.asarray(RandomAffine(5, 0.05, 0.0, seed=2)(cropped, training=True))
    centre = slice(size // 4, 3 * size // 4)  # away from the filled borders
    np.testing.assert_allclose(once[:, centre, centre], twice[:, centre, centre], atol=2e-3)
    np.testing.assert_allclose(np.asarray(fused(images, training=False)), images)
