"""shortcuts: the audit tells a model that reads the lungs from one that reads the borders.

Both toy models look at a masked copy of the image (the layer named `last_conv`, so Grad-CAM
explains it) and score its mean. The images keep the same overall mean grey, so hiding a
region with the image's mean removes exactly the information that region carried.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pneumonet_core.data.lungs import lung_region
from pneumonet_core.inference.shortcuts import audit

SIZE = 40


class FixedMask(keras.layers.Layer):
    def __init__(self, mask, **kwargs):
        super().__init__(**kwargs)
        self.mask = np.asarray(mask, dtype=np.float32)[np.newaxis, :, :, np.newaxis]

    def call(self, images):
        return images * self.mask


def toy_model(mask: np.ndarray, weight: float):
    inputs = keras.Input((SIZE, SIZE, 1))
    x = FixedMask(mask)(inputs)
    # An identity 1x1 convolution: Grad-CAM's tape needs a variable upstream of `last_conv`.
    x = keras.layers.Conv2D(1, 1, kernel_initializer="ones", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(1, activation="sigmoid", name="pneumonia_probability")
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    dense.set_weights([np.array([[weight]], np.float32), np.array([-weight * 0.25], np.float32)])
    return model


def images_with_signal_in(region: np.ndarray, count: int = 40, seed: int = 0):
    """Half the images are brighter inside `region`, darker outside; every image's mean is 0.5."""
    generator = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    images = np.empty((count, SIZE, SIZE, 1), dtype=np.float32)
    inside_share = region.mean()
    for index, label in enumerate(labels):
        inside = 0.5 + (0.15 if label else -0.15) + generator.normal(0, 0.02)
        outside = (0.5 - inside * inside_share) / (1 - inside_share)
        images[index, :, :, 0] = np.where(region, inside, outside)
    return images, labels


def test_a_model_that_reads_the_lungs_loses_its_skill_when_they_are_hidden():
    region = lung_region(SIZE)
    images, labels = images_with_signal_in(region)
    result = audit(toy_model(region, 20.0), images, labels)
    assert result["original_auc"] == pytest.approx(1.0)
    assert result["lungs_hidden_auc"] <= 0.6  # chance: the scores differ only by float rounding
    assert result["outside_hidden_auc"] == pytest.approx(1.0)
    assert result["gradcam_lung_share"] == pytest.approx(1.0)
    assert result["meets_targets"] == {"lungs_hidden_auc": True, "outside_hidden_auc": True}


def test_a_model_that_reads_the_borders_is_caught():
    region = lung_region(SIZE)
    images, labels = images_with_signal_in(~region)
    result = audit(toy_model(~region, 20.0), images, labels)
    assert result["original_auc"] == pytest.approx(1.0)
    assert result["lungs_hidden_auc"] == pytest.approx(1.0)
    assert result["outside_hidden_auc"] <= 0.6
    assert result["gradcam_lung_share"] == pytest.approx(0.0)
    assert result["meets_targets"] == {"lungs_hidden_auc": False, "outside_hidden_auc": False}


def test_audit_needs_both_classes_and_matching_labels():
    region = lung_region(SIZE)
    images, labels = images_with_signal_in(region, count=4)
    model = toy_model(region, 1.0)
    with pytest.raises(ValueError, match="both classes"):
        audit(model, images, np.zeros(4), with_gradcam=False)
    with pytest.raises(ValueError, match="labels"):
        audit(model, images, labels[:3], with_gradcam=False)
