"""model: every architecture maps (batch, S, S, 1) in [0, 1] to (batch, 1) probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from pneumonet_core.models.architectures import (
    ARCHITECTURES,
    GRADCAM_LAYER,
    build_model,
    default_image_size,
)

SIZE = 64


@pytest.fixture(scope="module", params=["seed", "pneumonet"])
def built(request):
    import keras

    keras.utils.set_random_seed(0)
    return request.param, build_model(request.param, image_size=SIZE)


def test_output_is_one_probability_per_image(built):
    _, model = built
    images = np.random.default_rng(0).random((3, SIZE, SIZE, 1)).astype(np.float32)
    probabilities = np.asarray(model(images, training=False))
    assert probabilities.shape == (3, 1)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    assert model.input_shape == (None, SIZE, SIZE, 1)
    assert model.output_shape == (None, 1)


def test_has_a_four_dimensional_gradcam_layer(built):
    name, model = built
    layer = model.get_layer(GRADCAM_LAYER)
    shape = layer.output.shape
    assert len(shape) == 4, f"{name}: {shape}"
    assert shape[1] >= 2 and shape[2] >= 2  # still a spatial map
    assert model.name == name


def test_known_architectures_and_their_default_sizes():
    assert {"seed", "pneumonet"} <= set(ARCHITECTURES)
    assert default_image_size("seed") == 150
    assert default_image_size("pneumonet") == 128


def test_unknown_architecture_raises_naming_it():
    with pytest.raises(ValueError, match="unknown architecture 'resnet9000'"):
        build_model("resnet9000", image_size=SIZE)
    with pytest.raises(ValueError, match="'vgg'"):
        default_image_size("vgg")


@pytest.mark.parametrize(
    "bad",
    [
        16,
        1024,
        -64,
        0,
    ],
)
def test_bad_image_size_raises(bad):
    with pytest.raises(ValueError, match=f"image_size .*got {bad}"):
        build_model("seed", image_size=bad)


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5])
def test_bad_dropout_raises(bad):
    with pytest.raises(ValueError, match="dropout_rate") as caught:
        build_model("seed", image_size=SIZE, dropout_rate=bad)
    assert repr(bad) in str(caught.value)


def test_dropout_rate_is_used():
    model = build_model("seed", image_size=32, dropout_rate=0.25)
    assert model.get_layer("dropout").rate == 0.25
