"""CNN architectures, built with the Keras 3 Functional API.

Every architecture takes a (image_size, image_size, 1) grayscale input in [0, 1] and ends in
one sigmoid unit: the probability of PNEUMONIA. The layer named `GRADCAM_LAYER` is the last
spatial feature map, the one Grad-CAM explains.
"""

from __future__ import annotations

from pneumonet_core.imaging.preprocessing import check_image_size

GRADCAM_LAYER = "last_conv"
INPUT_NORMALIZATIONS = ("none", "equalize")


def _normalize_input(inputs, input_normalization: str, lung_focus: float = 0.0):
    """The model's first steps, travelling with the model file.

    "none" keeps the [0, 1] image, "equalize" equalises its histogram; `lung_focus` > 0 then
    damps everything outside the lung region towards the image mean (1: hides it).
    """
    from pneumonet_core.models.layers import HistogramEqualization, LungFocus

    x = inputs
    if input_normalization == "equalize":
        x = HistogramEqualization(name="equalize")(x)
    if lung_focus:
        x = LungFocus(lung_focus, name="lung_focus")(x)
    return x


def build_seed_model(
    image_size: int = 150,
    dropout_rate: float = 0.5,
    input_normalization: str = "none",
    lung_focus: float = 0.0,
):
    """The original PneumoNet CNN: three conv + max-pool blocks, dense 128, sigmoid."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(image_size, image_size, 1), name="image")
    x = _normalize_input(inputs, input_normalization, lung_focus)
    for block, filters in enumerate((32, 64, 128), start=1):
        name = GRADCAM_LAYER if block == 3 else f"conv{block}"
        x = layers.Conv2D(filters, 3, activation="relu", name=name)(x)
        x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="pneumonia_probability")(x)
    return keras.Model(inputs, outputs, name="seed")


def _residual_block(x, filters: int, block: int):
    """Two separable conv + batch-norm + ReLU layers, max-pool, and a strided 1x1 shortcut."""
    from keras import layers

    shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", name=f"block{block}_skip")(x)
    for index in (1, 2):
        x = layers.SeparableConv2D(
            filters, 3, padding="same", use_bias=False, name=f"block{block}_sepconv{index}"
        )(x)
        x = layers.BatchNormalization(name=f"block{block}_bn{index}")(x)
        x = layers.Activation("relu", name=f"block{block}_relu{index}")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{block}_pool")(x)
    return layers.Add(name=f"block{block}_add")([x, shortcut])


def build_pneumonet_model(
    image_size: int = 128,
    dropout_rate: float = 0.3,
    input_normalization: str = "none",
    lung_focus: float = 0.0,
    widths: tuple[int, ...] = (32, 64, 128, 256),
):
    """PneumoNet's improved CNN: a small residual separable-convolution network.

    A strided stem, residual separable blocks with batch normalisation, a final 1x1 feature
    map, global average pooling and dropout (after the keras.io Xception-style example).
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(image_size, image_size, 1), name="image")
    x = _normalize_input(inputs, input_normalization, lung_focus)
    x = layers.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for block, filters in enumerate(widths, start=1):
        x = _residual_block(x, filters, block)
    x = layers.SeparableConv2D(
        widths[-1] * 2, 3, padding="same", use_bias=False, name="head_sepconv"
    )(x)
    x = layers.BatchNormalization(name="head_bn")(x)
    x = layers.Activation("relu", name=GRADCAM_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="pneumonia_probability")(x)
    return keras.Model(inputs, outputs, name="pneumonet")


ARCHITECTURES = {
    "seed": {"builder": build_seed_model, "image_size": 150, "dropout_rate": 0.5},
    "pneumonet": {"builder": build_pneumonet_model, "image_size": 128, "dropout_rate": 0.3},
}


def default_image_size(architecture: str) -> int:
    """The input size an architecture is designed for."""
    return _spec(architecture)["image_size"]


def _spec(architecture: str) -> dict:
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}"
        )
    return ARCHITECTURES[architecture]


def build_model(
    architecture: str = "seed",
    image_size: int | None = None,
    dropout_rate: float | None = None,
    input_normalization: str = "none",
    lung_focus: float = 0.0,
):
    """Build an untrained model by architecture name.

    Args:
        architecture: A key of `ARCHITECTURES` ("seed" or "pneumonet").
        image_size: Square input side in pixels (default: the architecture's own).
        dropout_rate: Dropout before the output, in [0, 1).
        input_normalization: "none" or "equalize" (per-image histogram equalisation as the
            model's first layer, so it travels with the model file).

    Returns:
        An uncompiled keras.Model mapping (batch, S, S, 1) in [0, 1] to (batch, 1) probabilities.
    """
    spec = _spec(architecture)
    image_size = check_image_size(spec["image_size"] if image_size is None else image_size)
    dropout_rate = spec["dropout_rate"] if dropout_rate is None else dropout_rate
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
    if input_normalization not in INPUT_NORMALIZATIONS:
        raise ValueError(
            f"input_normalization must be one of {INPUT_NORMALIZATIONS}, "
            f"got {input_normalization!r}"
        )
    if not 0.0 <= lung_focus <= 1.0:
        raise ValueError(f"lung_focus must be in [0, 1], got {lung_focus!r}")
    return spec["builder"](
        image_size=image_size,
        dropout_rate=dropout_rate,
        input_normalization=input_normalization,
        lung_focus=lung_focus,
    )
