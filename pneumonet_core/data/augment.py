"""Training-time augmentation, applied in the tf.data pipeline (never at evaluation)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pneumonet_core.utils.settings import setting


@dataclass(frozen=True)
class AugmentationConfig:
    """Random transforms for training images in [0, 1].

    Each field is declared with `settings.setting` (help text and command-line flag), so the
    `pneumonet train` options are built from it. The help of a boolean describes its `--no-`
    flag, which turns it off.

    Attributes:
        enabled: Apply augmentation at all.
        horizontal_flip: Random left-right flips.
        rotation_degrees: Maximum rotation either way, in degrees (0 turns it off).
        zoom: Maximum zoom in or out, as a fraction of the image (0 turns it off).
        translation: Maximum shift, as a fraction of the image side (0 turns it off).
        contrast: Maximum contrast change factor (0 turns it off).
        brightness: Maximum brightness shift, as a fraction of the [0, 1] range (0 turns it off).
        gamma: Maximum absolute log of a random gamma exponent (0.4: gamma in [0.67, 1.49]).
        blur: Maximum Gaussian blur sigma in pixels, at most 1 (0 turns it off).
        noise: Standard deviation of additive Gaussian noise (0 turns it off).
        downscale: Smallest factor of a down-then-up rescale, in (0, 1] (1 turns it off).
        crop_area: Smallest share of the image kept by a random resized crop, in (0, 1]
            (1 turns it off).
    """

    enabled: bool = setting(True, help="turn augmentation off", flag="--no-augment")
    horizontal_flip: bool = setting(True, help="no horizontal flips", flag="--no-flip")
    rotation_degrees: float = setting(10.0, help="max rotation, degrees")
    zoom: float = setting(0.1, help="max zoom in or out (fraction)")
    translation: float = setting(0.05, help="max shift (fraction of the side)")
    # The defaults are the shipped recipe's (docs/RECIPES.md): strong exposure and quality
    # jitter with a random resized crop is what held up best on images from outside train/.
    contrast: float = setting(0.5, help="max contrast change")
    brightness: float = setting(0.25, help="max brightness shift (fraction of the range)")
    gamma: float = setting(0.6, help="max |log gamma| of a random gamma curve")
    blur: float = setting(1.0, help="max Gaussian blur sigma (pixels, at most 1)")
    noise: float = setting(0.03, help="Gaussian noise standard deviation")
    downscale: float = setting(0.5, help="smallest down-then-up scaling factor (1: off)")
    crop_area: float = setting(
        0.35, help="smallest image share kept by a random resized crop (1: off)"
    )

    def __post_init__(self):
        limits = {"rotation_degrees": 180.0, "blur": 1.0, "gamma": 1.0, "noise": 0.2}
        for name in ("rotation_degrees", "zoom", "translation", "contrast", "brightness") + (
            "gamma",
            "blur",
            "noise",
        ):
            value = getattr(self, name)
            limit = limits.get(name, 0.9)
            if not 0.0 <= value <= limit:
                raise ValueError(f"{name} must be between 0 and {limit}, got {value!r}")
        for name in ("downscale", "crop_area"):
            value = getattr(self, name)
            if not 0.1 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0.1 and 1, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)


NO_AUGMENTATION = AugmentationConfig(enabled=False)
# The augmentation of the stop-7 model (geometry and mild contrast only), kept for benchmarks.
_NO_PHOTOMETRIC = dict(brightness=0.0, gamma=0.0, blur=0.0, noise=0.0, downscale=1.0, crop_area=1.0)
STOP7_AUGMENTATION = AugmentationConfig(contrast=0.1, **_NO_PHOTOMETRIC)


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
    layers += _geometric_layers(config, seed)
    if config.contrast:
        layers.append(
            keras.layers.RandomContrast(config.contrast, value_range=(0.0, 1.0), seed=seed + 4)
        )
    layers += _photometric_layers(config, seed)
    if not layers:
        return None
    return keras.Sequential(layers, name="augmentation")


def _geometric_layers(config: AugmentationConfig, seed: int) -> list:
    """The random resized crop and the rotation, zoom and shift, as one warp when both are on
    (`RandomCropThenAffine`): each image is interpolated once."""
    from pneumonet_core.data.augment_layers import (
        RandomAffine,
        RandomCropThenAffine,
        RandomResizedCrop,
    )

    crop = RandomResizedCrop(config.crop_area, seed=seed + 2) if config.crop_area < 1.0 else None
    affine = None
    if config.rotation_degrees or config.zoom or config.translation:
        # One fused warp instead of RandomRotation + RandomZoom + RandomTranslation.
        affine = RandomAffine(
            config.rotation_degrees, config.zoom, config.translation, "nearest", seed=seed + 1
        )
    if crop is not None and affine is not None:
        return [RandomCropThenAffine(crop, affine)]
    return [layer for layer in (crop, affine) if layer is not None]


def _photometric_layers(config: AugmentationConfig, seed: int) -> list:
    """Exposure and quality changes: brightness, gamma, down-then-up scaling, blur, noise."""
    import keras

    from pneumonet_core.data.augment_layers import RandomGamma, RandomResolution

    layers = []
    if config.brightness:
        layers.append(
            keras.layers.RandomBrightness(config.brightness, value_range=(0.0, 1.0), seed=seed + 5)
        )
    if config.gamma:
        layers.append(RandomGamma(config.gamma, seed=seed + 6))
    if config.downscale < 1.0:
        layers.append(RandomResolution(config.downscale, seed=seed + 7))
    if config.blur:
        layers.append(
            keras.layers.RandomGaussianBlur(
                factor=1.0, kernel_size=5, sigma=config.blur, value_range=(0.0, 1.0), seed=seed + 8
            )
        )
    if config.noise:
        layers.append(keras.layers.GaussianNoise(config.noise, seed=seed + 9))
    if layers:
        # Noise and blur can step outside [0, 1]; the model's input contract is [0, 1].
        layers.append(keras.layers.ReLU(max_value=1.0, name="clip_to_unit_range"))
    return layers
