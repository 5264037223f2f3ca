"""augment: validated augmentation settings and the Keras layers built from them."""

from __future__ import annotations

import numpy as np
import pytest

from pneumonet_core.data.augment import (
    NO_AUGMENTATION,
    STOP7_AUGMENTATION,
    AugmentationConfig,
    build_augmentation,
)


def geometric(**overrides) -> AugmentationConfig:
    """The stop-7 augmentation (geometry and mild contrast, no photometric jitter), changed."""
    return AugmentationConfig(**{**STOP7_AUGMENTATION.to_dict(), **overrides})


def asymmetric_batch(n: int = 4, size: int = 32) -> np.ndarray:
    """Images with a bright block in the top-left corner (changed by flips and shifts)."""
    images = np.full((n, size, size, 1), 0.2, dtype=np.float32)
    images[:, 2:12, 2:12, :] = 0.9
    return images


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rotation_degrees", 181.0),
        ("rotation_degrees", -1.0),
        ("zoom", 0.95),
        ("zoom", -0.1),
        ("translation", 1.0),
        ("contrast", 2.0),
        ("brightness", 1.0),
        ("gamma", -0.1),
        ("blur", 1.5),
        ("noise", 0.5),
        ("downscale", 0.05),
    ],
)
def test_out_of_range_settings_raise_naming_the_field_and_value(field, value):
    with pytest.raises(ValueError, match=field) as caught:
        AugmentationConfig(**{field: value})
    assert repr(value) in str(caught.value)


def test_to_dict_round_trips():
    config = AugmentationConfig(rotation_degrees=5.0, zoom=0.0, horizontal_flip=False)
    assert AugmentationConfig(**config.to_dict()) == config
    assert config.to_dict()["rotation_degrees"] == 5.0


def test_disabled_or_empty_augmentation_builds_nothing():
    assert build_augmentation(NO_AUGMENTATION) is None
    nothing = geometric(
        horizontal_flip=False, rotation_degrees=0, zoom=0, translation=0, contrast=0
    )
    assert build_augmentation(nothing) is None


def test_stop7_augmentation_fuses_the_geometric_transforms_into_one_warp():
    augmentation = build_augmentation(STOP7_AUGMENTATION)
    names = [type(layer).__name__ for layer in augmentation.layers]
    assert names == ["RandomFlip", "RandomAffine", "RandomContrast"]
    affine = augmentation.layers[1]
    assert (affine.rotation_degrees, affine.zoom, affine.translation) == (10.0, 0.1, 0.05)
    only_flip = geometric(rotation_degrees=0, zoom=0, translation=0, contrast=0)
    assert [type(layer).__name__ for layer in build_augmentation(only_flip).layers] == [
        "RandomFlip"
    ]


def test_default_augmentation_is_the_shipped_recipes():
    names = [type(layer).__name__ for layer in build_augmentation(AugmentationConfig()).layers]
    assert names == [
        "RandomFlip",
        "RandomCropThenAffine",  # the crop and the affine warp, composed: one interpolation
        "RandomContrast",
        "RandomBrightness",
        "RandomGamma",
        "RandomResolution",
        "RandomGaussianBlur",
        "GaussianNoise",
        "ReLU",
    ]


def test_augmentation_changes_training_images_keeps_shape_and_range():
    images = asymmetric_batch()
    augmentation = build_augmentation(AugmentationConfig(rotation_degrees=20, zoom=0.2), seed=1)
    augmented = np.asarray(augmentation(images, training=True))
    assert augmented.shape == images.shape
    assert augmented.min() >= -1e-6 and augmented.max() <= 1.0 + 1e-6
    assert not np.allclose(augmented, images)


def test_augmentation_is_identity_at_inference():
    images = asymmetric_batch()
    augmentation = build_augmentation(AugmentationConfig())
    np.testing.assert_allclose(np.asarray(augmentation(images, training=False)), images, atol=1e-6)


def test_flip_only_augmentation_gives_the_image_or_its_mirror():
    images = asymmetric_batch(n=16)
    flip = build_augmentation(
        geometric(rotation_degrees=0, zoom=0, translation=0, contrast=0), seed=0
    )
    out = np.asarray(flip(images, training=True))
    mirrored = images[:, :, ::-1, :]
    same = [np.allclose(o, i) for o, i in zip(out, images, strict=True)]
    flipped = [np.allclose(o, m) for o, m in zip(out, mirrored, strict=True)]
    assert all(s or f for s, f in zip(same, flipped, strict=True))
    assert any(flipped)


def test_photometric_augmentation_changes_exposure_and_stays_in_unit_range():
    config = AugmentationConfig(
        horizontal_flip=False,
        rotation_degrees=0,
        zoom=0,
        translation=0,
        contrast=0,
        brightness=0.15,
        gamma=0.4,
        blur=1.0,
        noise=0.02,
        downscale=0.5,
        crop_area=1.0,
    )
    layer_names = [layer.name for layer in build_augmentation(config, seed=0).layers]
    assert len(layer_names) == 6  # brightness, gamma, resolution, blur, noise, clip
    images = np.repeat(asymmetric_batch(1), 16, axis=0)
    augmented = np.asarray(build_augmentation(config, seed=0)(images, training=True))
    assert augmented.shape == images.shape
    assert augmented.min() >= 0.0 and augmented.max() <= 1.0
    means = augmented.mean(axis=(1, 2, 3))
    assert means.std() > 0.01  # each image got its own exposure
