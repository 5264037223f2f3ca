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


@keras.saving.register_keras_serializable(package="pneumonet")
class HistogramEqualization(keras.layers.Layer):
    """Per-image histogram equalisation, part of the model (training and inference alike).

    Maps each pixel to the share of the image's pixels at or below its grey level, so any
    monotonic change of exposure (brightness, gamma, contrast) gives the same output. Being a
    layer of the model, it travels with the `.keras` file and leaves the preprocessing contract
    (grey [0, 1] input) unchanged.

    Input and output: float batches (batch, height, width, 1), values in [0, 1].

    Args:
        bins: Number of grey levels the image is quantised to.
    """

    def __init__(self, bins: int = 256, **kwargs):
        super().__init__(**kwargs)
        if not 2 <= int(bins) <= 65536:
            raise ValueError(f"bins must be between 2 and 65536, got {bins!r}")
        self.bins = int(bins)

    def call(self, images):
        import tensorflow as tf

        shape = tf.shape(images)
        flat = tf.reshape(images, (shape[0], -1))
        levels = tf.cast(
            tf.clip_by_value(flat, 0.0, 1.0) * (self.bins - 1) + 0.5, tf.int32
        )  # (batch, pixels) in [0, bins)
        counts = tf.math.bincount(
            levels, minlength=self.bins, maxlength=self.bins, axis=-1, dtype=tf.float32
        )  # (batch, bins)
        cdf = tf.math.cumsum(counts, axis=-1)
        first = tf.reduce_min(tf.where(counts > 0, cdf, tf.reduce_max(cdf)), axis=-1, keepdims=True)
        lookup = (cdf - first) / tf.maximum(cdf[:, -1:] - first, 1.0)
        equalised = tf.gather(lookup, levels, batch_dims=1)
        return tf.reshape(equalised, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}


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
class LungFocus(keras.layers.Layer):
    """Damps everything outside the lung region (`lungs.lung_region`) towards the image mean.

    Part of the model, so training and inference see the same input; `strength` 1 hides the
    outside completely (like cropping to the lung box), 0 leaves the image as it is.

    Input and output: float batches (batch, size, size, 1), values in [0, 1].

    Args:
        strength: How much of the outside's contrast is removed, in [0, 1].
    """

    def __init__(self, strength: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength!r}")
        self.strength = float(strength)

    def build(self, input_shape):
        from pneumonet_core.lungs import lung_region

        if input_shape[1] != input_shape[2]:
            raise ValueError(f"LungFocus needs square images, got {input_shape}")
        outside = ~lung_region(int(input_shape[1]))
        self.keep = ops.convert_to_tensor(
            (1.0 - self.strength * outside)[None, :, :, None].astype("float32")
        )

    def call(self, images):
        means = ops.mean(images, axis=(1, 2, 3), keepdims=True)
        return means + (images - means) * self.keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "strength": self.strength}


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
