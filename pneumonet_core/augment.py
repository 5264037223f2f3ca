"""Training-time augmentation, applied in the tf.data pipeline (never at evaluation)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class AugmentationConfig:
    """Random transforms for training images in [0, 1].

    Attributes:
        enabled: Apply augmentation at all.
        horizontal_flip: Random left-right flips.
        rotation_degrees: Maximum rotation either way, in degrees (0 turns it off).
        zoom: Maximum zoom in or out, as a fraction of the image (0 turns it off).
        translation: Maximum shift, as a fraction of the image side (0 turns it off).
        contrast: Maximum contrast change factor (0 turns it off).
    """

    enabled: bool = True
    horizontal_flip: bool = True
    rotation_degrees: float = 10.0
    zoom: float = 0.1
    translation: float = 0.05
    contrast: float = 0.1

    def __post_init__(self):
        for name in ("rotation_degrees", "zoom", "translation", "contrast"):
            value = getattr(self, name)
            limit = 180.0 if name == "rotation_degrees" else 0.9
            if not 0.0 <= value <= limit:
                raise ValueError(f"{name} must be between 0 and {limit}, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)


NO_AUGMENTATION = AugmentationConfig(enabled=False)


def build_augmentation(config: AugmentationConfig, *, seed: int = 42):
    """A Keras model of random layers for `config`, or None when nothing is enabled.

    Input and output: float32 batches (batch, size, size, 1) in [0, 1].
    """
    import keras

    if not config.enabled:
        return None
    layers = []
    if config.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.rotation_degrees or config.zoom or config.translation:
        from pneumonet_core.layers import RandomAffine

        # One fused warp instead of RandomRotation + RandomZoom + RandomTranslation.
        layers.append(
            RandomAffine(
                config.rotation_degrees,
                config.zoom,
                config.translation,
                fill_mode="nearest",
                seed=seed + 1,
            )
        )
    if config.contrast:
        layers.append(
            keras.layers.RandomContrast(config.contrast, value_range=(0.0, 1.0), seed=seed + 4)
        )
    if not layers:
        return None
    return keras.Sequential(layers, name="augmentation")
