"""Keras layers for training-time augmentation (random warps, crops, gamma, resolution).

They run in the input pipeline only, never inside a saved model.
"""

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


@keras.saving.register_keras_serializable(package="pneumonet")
class RandomGamma(keras.layers.Layer):
    """Random gamma curve per image: x ** exp(u), u uniform in [-log_gamma, log_gamma].

    Input and output: float batches (batch, height, width, channels) in [0, 1]; identity when
    `training` is False.

    Args:
        log_gamma: Maximum absolute natural log of the exponent (0.4: gamma in [0.67, 1.49]).
        seed: Seed of the layer's random generator.
    """

    def __init__(self, log_gamma: float = 0.4, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if log_gamma < 0:
            raise ValueError(f"log_gamma must be 0 or more, got {log_gamma!r}")
        self.log_gamma = float(log_gamma)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        exponent = ops.exp(
            keras.random.uniform(
                (ops.shape(images)[0], 1, 1, 1),
                minval=-self.log_gamma,
                maxval=self.log_gamma,
                seed=self.seed_generator,
            )
        )
        return ops.power(ops.clip(images, 1e-6, 1.0), exponent)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "log_gamma": self.log_gamma, "seed": self.seed}


@keras.saving.register_keras_serializable(package="pneumonet")
class RandomResolution(keras.layers.Layer):
    """Down-then-up scaling: a batch is shrunk by a random factor and enlarged back.

    Imitates lower-resolution sources (small exports, re-sampled copies). One factor per batch
    keeps the shapes static.

    Input and output: float batches (batch, height, width, channels) in [0, 1]; identity when
    `training` is False.

    Args:
        min_scale: Smallest shrink factor, in (0, 1] (1 turns it off).
        seed: Seed of the layer's random generator.
    """

    def __init__(self, min_scale: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < min_scale <= 1.0:
            raise ValueError(f"min_scale must be in (0, 1], got {min_scale!r}")
        self.min_scale = float(min_scale)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training or self.min_scale == 1.0:
            return images
        height, width = ops.shape(images)[1], ops.shape(images)[2]
        scale = keras.random.uniform((), self.min_scale, 1.0, seed=self.seed_generator)
        small = (
            ops.cast(ops.cast(height, "float32") * scale, "int32"),
            ops.cast(ops.cast(width, "float32") * scale, "int32"),
        )
        import tensorflow as tf

        shrunk = tf.image.resize(images, small, method="area")
        return tf.image.resize(shrunk, (height, width), method="bilinear")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_scale": self.min_scale, "seed": self.seed}


@keras.saving.register_keras_serializable(package="pneumonet")
class RandomResizedCrop(keras.layers.Layer):
    """A random crop of each image, stretched back to the full size (one warp per image).

    The crop covers a share of the image's area drawn uniformly from [min_area, 1], with each
    side scaled independently by up to `aspect_jitter`, at a random position inside the image.

    Input and output: float batches (batch, height, width, channels) in [0, 1]; identity when
    `training` is False.

    Args:
        min_area: Smallest share of the image the crop keeps, in (0, 1] (1 turns it off).
        aspect_jitter: Largest relative change of one side against the other, in [0, 0.5).
        seed: Seed of the layer's random generator.
    """

    def __init__(
        self, min_area: float = 0.35, aspect_jitter: float = 0.1, seed: int | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        if not 0.0 < min_area <= 1.0:
            raise ValueError(f"min_area must be in (0, 1], got {min_area!r}")
        if not 0.0 <= aspect_jitter < 0.5:
            raise ValueError(f"aspect_jitter must be in [0, 0.5), got {aspect_jitter!r}")
        self.min_area = float(min_area)
        self.aspect_jitter = float(aspect_jitter)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training or self.min_area == 1.0:
            return images
        return ops.image.affine_transform(
            images,
            self.random_transforms(ops.shape(images)),
            interpolation="bilinear",
            fill_mode="nearest",
        )

    def random_transforms(self, shape):
        """(batch, 8) transforms mapping output pixels into the crop: input = scale * p + offset."""
        count = shape[0]
        height = ops.cast(shape[1], "float32")
        width = ops.cast(shape[2], "float32")
        side = ops.sqrt(self._uniform(count, self.min_area, 1.0))
        aspect = 1.0 + self._uniform(count, -self.aspect_jitter, self.aspect_jitter)
        scale_x = ops.minimum(side * aspect, 1.0)
        scale_y = ops.minimum(side / aspect, 1.0)
        offset_x = self._uniform(count, 0.0, 1.0) * (1.0 - scale_x) * (width - 1.0)
        offset_y = self._uniform(count, 0.0, 1.0) * (1.0 - scale_y) * (height - 1.0)
        zeros = ops.zeros_like(scale_x)
        return ops.stack([scale_x, zeros, offset_x, zeros, scale_y, offset_y, zeros, zeros], axis=1)

    def _uniform(self, count, low: float, high: float):
        return keras.random.uniform((count,), minval=low, maxval=high, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "min_area": self.min_area,
            "aspect_jitter": self.aspect_jitter,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="pneumonet")
class RandomCropThenAffine(keras.layers.Layer):
    """`RandomResizedCrop` followed by `RandomAffine`, composed into one warp per image.

    Both draw exactly what they draw on their own (each keeps its own seed), and the two
    output-to-input maps are composed, so every image is interpolated once instead of twice:
    half the CPU time of the geometric augmentation (`bench/training_throughput.py`).

    Args:
        crop: The `RandomResizedCrop` applied first.
        affine: The `RandomAffine` applied to the crop.
    """

    def __init__(self, crop: RandomResizedCrop, affine: RandomAffine, **kwargs):
        super().__init__(**kwargs)
        self.crop = crop
        self.affine = affine

    def build(self, input_shape):
        for layer in (self.crop, self.affine):
            layer.build(input_shape)
        super().build(input_shape)

    def call(self, images, training=True):
        if not training:
            return images
        return ops.image.affine_transform(
            images,
            self.random_transforms(ops.shape(images)),
            interpolation="bilinear",
            fill_mode=self.affine.fill_mode,
        )

    def random_transforms(self, shape):
        """(batch, 8): the crop's map after the affine's, input = crop(affine(p))."""
        crop = self.crop.random_transforms(shape)
        affine = self.affine.random_transforms(shape)
        if self.crop.min_area == 1.0:
            return affine
        scale_x, offset_x, scale_y, offset_y = crop[:, 0], crop[:, 2], crop[:, 4], crop[:, 5]
        zeros = ops.zeros_like(scale_x)
        return ops.stack(
            [
                scale_x * affine[:, 0],
                scale_x * affine[:, 1],
                scale_x * affine[:, 2] + offset_x,
                scale_y * affine[:, 3],
                scale_y * affine[:, 4],
                scale_y * affine[:, 5] + offset_y,
                zeros,
                zeros,
            ],
            axis=1,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "crop": keras.saving.serialize_keras_object(self.crop),
            "affine": keras.saving.serialize_keras_object(self.affine),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        crop = keras.saving.deserialize_keras_object(config.pop("crop"))
        affine = keras.saving.deserialize_keras_object(config.pop("affine"))
        return cls(crop, affine, **config)
