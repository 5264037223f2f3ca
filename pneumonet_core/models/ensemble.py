"""Deep ensembles shipped as one `.keras` model that works wherever a single model does.

The members' feature maps are concatenated into one layer named `GRADCAM_LAYER`, pooled, and
read by one Dense layer whose weights are the members' own, stacked and divided by the member
count. The ensemble's logit is therefore the mean of the members' logits (a geometric mean of
their odds), and Grad-CAM and the OOD guard see one feature map and one feature vector, as they
do for a single model. An optional Platt scaling (`logit * scale + shift`) is folded into the
same Dense layer.
"""

from __future__ import annotations

import numpy as np

from pneumonet_core.models.architectures import GRADCAM_LAYER

OUTPUT_LAYER = "pneumonia_probability"


def _check_member(member, index: int) -> None:
    """A member must end in last_conv -> global average pooling -> dropout -> Dense sigmoid."""
    import keras

    try:
        feature_map = member.get_layer(GRADCAM_LAYER)
        output = member.get_layer(OUTPUT_LAYER)
    except ValueError:
        raise ValueError(
            f"member {index} ({member.name}) has no {GRADCAM_LAYER!r} or {OUTPUT_LAYER!r} layer"
        ) from None
    pooled = [
        layer for layer in member.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)
    ]
    if len(pooled) != 1 or pooled[0].input is not feature_map.output:
        raise ValueError(
            f"member {index} ({member.name}) must pool {GRADCAM_LAYER!r} with global average "
            "pooling before its output (the 'pneumonet' architecture does; 'seed' does not)"
        )
    if output.get_config().get("activation") != "sigmoid":
        raise ValueError(f"member {index} ({member.name}) must end in a sigmoid Dense layer")


def build_ensemble(members, *, platt_scale: float = 1.0, platt_shift: float = 0.0, name=None):
    """One Keras model whose PNEUMONIA logit is the mean of the members' logits.

    Args:
        members: Trained PneumoNet models of one input size, each pooling `GRADCAM_LAYER` with
            global average pooling before a sigmoid Dense output (the "pneumonet"
            architecture).
        platt_scale: Calibration: the mean logit is multiplied by this (> 0)...
        platt_shift: ...and this is added, before the sigmoid.
        name: Model name (default "pneumonet_ensemble").

    Returns:
        A keras.Model mapping (batch, S, S, 1) in [0, 1] to (batch, 1) probabilities.

    Raises:
        ValueError: Fewer than two members, different input sizes, an unsupported member, or
            a scale that is not positive.
    """
    import keras
    from keras import layers

    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    if not platt_scale > 0:
        raise ValueError(f"platt_scale must be positive, got {platt_scale!r}")
    shapes = {tuple(member.input_shape) for member in members}
    if len(shapes) != 1:
        raise ValueError(f"members must share one input shape, got {sorted(shapes)}")
    for index, member in enumerate(members, start=1):
        _check_member(member, index)
    inputs = keras.Input(shape=tuple(members[0].input_shape[1:]), name="image")
    trunks = [
        keras.Model(member.input, member.get_layer(GRADCAM_LAYER).output, name=f"member{index}")
        for index, member in enumerate(members, start=1)
    ]
    x = layers.Concatenate(name=GRADCAM_LAYER)([trunk(inputs) for trunk in trunks])
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = layers.Dropout(0.0, name="dropout")(x)
    head = layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER)
    outputs = head(x)
    kernel, bias = _mean_logit_weights(members)
    head.set_weights([kernel * platt_scale, bias * platt_scale + platt_shift])
    return keras.Model(inputs, outputs, name=name or "pneumonet_ensemble")


def _mean_logit_weights(members) -> tuple[np.ndarray, np.ndarray]:
    """Stacked Dense weights giving the mean of the members' logits: (sum d_i, 1) and (1,)."""
    kernels, biases = zip(
        *(member.get_layer(OUTPUT_LAYER).get_weights() for member in members), strict=True
    )
    count = len(members)
    return np.concatenate(kernels, axis=0) / count, np.mean(biases, axis=0)


def member_logits(members, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Each member's PNEUMONIA logit: (n, S, S, 1) -> (n, members) float64."""
    columns = []
    for member in members:
        parts = [
            np.asarray(member(images[start : start + batch_size], training=False)).ravel()
            for start in range(0, len(images), batch_size)
        ]
        probabilities = np.clip(np.concatenate(parts).astype(np.float64), 1e-7, 1 - 1e-7)
        columns.append(np.log(probabilities / (1 - probabilities)))
    return np.stack(columns, axis=1)


def fit_platt(y_true, logits) -> tuple[float, float]:
    """Platt scaling of logits: `(scale, shift)` minimising log loss (scikit-learn).

    Args:
        y_true: n labels, 0 = NORMAL, 1 = PNEUMONIA, both present.
        logits: n logits.
    """
    from sklearn.linear_model import LogisticRegression

    y_true = np.asarray(y_true).astype(int)
    if np.unique(y_true).size < 2:
        raise ValueError("Platt scaling needs labels of both classes")
    fitted = LogisticRegression(C=1e6).fit(np.asarray(logits).reshape(-1, 1), y_true)
    scale = float(fitted.coef_[0, 0])
    if not scale > 0:
        raise ValueError(
            f"Platt scaling found a non-positive scale ({scale:.3g}): scores are not "
            "ranked by the labels"
        )
    return scale, float(fitted.intercept_[0])
