"""Custom Keras layers (import this module lazily: importing Keras loads its backend)."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="pneumonet")
class RandomAffine(keras.layers.Layer):
    """Random rotation, zoom and shift composed into one warp (one interpolation per image).

    Applying `RandomRotation`, `RandomZoom` and `RandomTranslation` one after the other costs
    three full-image warps on the CPU that also runs the training step; this layer draws the
    same parameters and warps once (`bench/training_throughput.py` measures both).

    Input and output: float batches (batch, height, width, channels), values in [0, 1] stay in
    [0, 1] (bilinear interpolation, nearest fill); identity when `training` is False.

    Args:
        rotation_degrees: Maximum rotation either way, in degrees.
        zoom: Maximum zoom in or out, as a fraction of the image (0.1: scale in [0.9, 1.1]).
        translation: Maximum shift, as a fraction of the image side, on each axis.
        fill_mode: How pixels outside the source are filled ("nearest", "reflect", ...).
        seed: Seed of the layer's random generator.
    """

    def __init__(
        self,
        rotation_degrees: float = 10.0,
        zoom: float = 0.1,
        translation: float = 0.05,
        fill_mode: str = "nearest",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("rotation_degrees", rotation_degrees),
            ("zoom", zoom),
            ("translation", translation),
        ):
            if value < 0:
                raise ValueError(f"{name} must be 0 or more, got {value!r}")
        self.rotation_degrees = float(rotation_degrees)
        self.zoom = float(zoom)
        self.translation = float(translation)
        self.fill_mode = fill_mode
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        return ops.image.affine_transform(
            images,
            self.random_transforms(ops.shape(images)),
            interpolation="bilinear",
            fill_mode=self.fill_mode,
        )

    def random_transforms(self, shape):
        """(batch, 8) projective transforms mapping output pixels to input pixels.

        The input point for output point p is scale * R(angle) * (p - centre) + centre + shift.
        """
        count = shape[0]
        height = ops.cast(shape[1], "float32")
        width = ops.cast(shape[2], "float32")
        angle = self._uniform(count, self.rotation_degrees * math.pi / 180.0)
        scale = 1.0 + self._uniform(count, self.zoom)
        shift_x = self._uniform(count, self.translation) * width
        shift_y = self._uniform(count, self.translation) * height
        cosine, sine = scale * ops.cos(angle), scale * ops.sin(angle)
        a0, a1, b0, b1 = cosine, -sine, sine, cosine
        centre_x, centre_y = (width - 1.0) / 2.0, (height - 1.0) / 2.0
        a2 = centre_x - a0 * centre_x - a1 * centre_y + shift_x
        b2 = centre_y - b0 * centre_x - b1 * centre_y + shift_y
        zeros = ops.zeros_like(a0)
        return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)

    def _uniform(self, count, limit: float):
        return keras.random.uniform((count,), minval=-limit, maxval=limit, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rotation_degrees": self.rotation_degrees,
            "zoom": self.zoom,
            "translation": self.translation,
            "fill_mode": self.fill_mode,
            "seed": self.seed,
        }
