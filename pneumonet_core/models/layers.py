"""Keras layers that live inside a saved model, so they travel with its file.

`HistogramEqualization` and `LungFocus` (which uses the lung region defined in `data.lungs`).
"""

from __future__ import annotations

import keras
from keras import ops


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
        from pneumonet_core.data.lungs import lung_region

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
