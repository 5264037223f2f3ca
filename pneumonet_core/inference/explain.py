"""Grad-CAM: where the model looked (after the keras.io Grad-CAM example).

`grad_cam` returns an array; drawing it is the caller's job (`overlay_heatmap` helps).
"""

from __future__ import annotations

import numpy as np

from pneumonet_core.imaging.preprocessing import resize_array
from pneumonet_core.models.architectures import GRADCAM_LAYER


class GradCam:
    """Grad-CAM for one model, with the gradient model built once.

    Args:
        model: A PneumoNet keras.Model (sigmoid output).
        layer_name: The spatial feature map to explain (default `model.GRADCAM_LAYER`).
    """

    def __init__(self, model, layer_name: str = GRADCAM_LAYER):
        import keras
        import tensorflow as tf

        try:
            feature_layer = model.get_layer(layer_name)
        except ValueError:
            raise ValueError(f"model has no layer named {layer_name!r} to explain") from None
        if len(feature_layer.output.shape) != 4:
            raise ValueError(
                f"layer {layer_name!r} must output a 4-D feature map, got "
                f"{feature_layer.output.shape}"
            )
        self.image_size = int(model.input_shape[1])
        gradient_model = keras.Model(model.inputs, [feature_layer.output, model.output])

        @tf.function(input_signature=[tf.TensorSpec((1, self.image_size, self.image_size, 1))])
        def heatmap_for(images):
            with tf.GradientTape() as tape:
                features, probabilities = gradient_model(images, training=False)
                score = probabilities[:, 0]
            gradients = tape.gradient(score, features)
            channel_weights = tf.reduce_mean(gradients, axis=(0, 1, 2))
            heatmap = tf.nn.relu(tf.tensordot(features[0], channel_weights, axes=1))
            return heatmap / (tf.reduce_max(heatmap) + 1e-8), probabilities[0, 0]

        self._heatmap_for = heatmap_for

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Heatmap of the evidence for PNEUMONIA.

        Args:
            image: One model input (S, S, 1) float32 in [0, 1].

        Returns:
            float32 array (S, S) in [0, 1]; higher where the PNEUMONIA score rose most.
        """
        image = np.asarray(image, dtype=np.float32)
        expected = (self.image_size, self.image_size, 1)
        if image.shape != expected:
            raise ValueError(f"expected an image of shape {expected}, got {image.shape}")
        heatmap, _ = self._heatmap_for(image[np.newaxis])
        return resize_array(np.asarray(heatmap), (self.image_size, self.image_size))


def grad_cam(model, image: np.ndarray, layer_name: str = GRADCAM_LAYER) -> np.ndarray:
    """One-off Grad-CAM heatmap (S, S) in [0, 1] for one image (S, S, 1); see `GradCam`."""
    return GradCam(model, layer_name)(image)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.4) -> np.ndarray:
    """Blend a heatmap, coloured with matplotlib's 'jet' map, over a grayscale image.

    Args:
        image: (H, W) or (H, W, 1) float in [0, 1].
        heatmap: (h, w) float in [0, 1]; resized to the image if needed.
        opacity: Heatmap weight in [0, 1].

    Returns:
        uint8 RGB array (H, W, 3).
    """
    from matplotlib import colormaps

    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity!r}")
    gray = np.asarray(image, dtype=np.float32).squeeze()
    if gray.ndim != 2:
        raise ValueError(f"expected a grayscale image, got shape {np.shape(image)}")
    heat = resize_array(heatmap, gray.shape)
    colored = colormaps["jet"](heat)[..., :3]
    blended = (1 - opacity) * np.repeat(gray[..., np.newaxis], 3, axis=2) + opacity * colored
    return (np.clip(blended, 0, 1) * 255).astype(np.uint8)
