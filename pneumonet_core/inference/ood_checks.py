"""Out-of-distribution simple checks: is the decoded file a frontal chest radiograph at all?

The first layer of the guard described in `inference.ood` (which re-exports every name
here). `simple_check` needs no model: it reads what decoding learned about the original file
(`imaging.ImageInfo`) and the model input, and flags

- `NOT_A_CHEST_XRAY`: a colour image with real saturation, an extreme aspect ratio of the
  original image, an image too small to be a radiograph, a near-constant image, or DICOM tags
  saying it is another modality (CT, MR, ...) or another body part (hand, knee, ...);
- `OUTSIDE_VALIDATED_USE`: a DICOM lateral view.

Every reason is worded by `ood_reason` ("<kind>: <detail>; prediction not reliable"), and
`reason_kind` reads its kind back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pneumonet_core.imaging import ImageInfo

NOT_A_CHEST_XRAY = "not a chest X-ray"
OUTSIDE_VALIDATED_USE = "outside validated use"
OOD_KINDS = (NOT_A_CHEST_XRAY, OUTSIDE_VALIDATED_USE)
UNRELIABLE_NOTE = "prediction not reliable"
NOT_A_CHEST_XRAY_SUMMARY = (
    "colour, tiny, near-constant or extreme-aspect images, and DICOM files of another "
    "modality or body part"
)
SIMPLE_CHECKS_SUMMARY = (
    "colour, tiny, near-constant or extreme-aspect images, and DICOM files of another "
    "modality, body part or a lateral view"
)

# Simple checks (see `simple_check`).
COLOR_FRACTION_LIMIT = 0.05
ASPECT_RATIO_LIMIT = 4.0
MIN_CONTRAST = 0.02
MIN_SIDE = 32
RADIOGRAPH_MODALITIES = ("CR", "DX", "DR", "RG", "OT", "SC")
CHEST_BODY_PARTS = ("CHEST", "THORAX", "LUNG", "PORTABLE")
LATERAL_VIEWS = ("LL", "RL", "LAT", "LATERAL", "LLD", "RLD", "LLO", "RLO")
# Feature distances this many times the threshold or more are called "not a chest X-ray" (when
# the picture also lacks a chest layout, `feature_reason`): no
# X-ray measured came near (largest ratio 1.51 in 2,000 training images, 1.31 on test/; none of
# the 16 val/ and 6 full-resolution samples flagged), while most non-chest images lie beyond
# (median 2.06). Between 1 and this, an image is "outside validated use".
NOT_AN_XRAY_DISTANCE_RATIO = 1.6


def ood_reason(kind: str, detail: str) -> str:
    """The user-facing reason: its kind, the specific cause, and that the prediction is unreliable.

    Args:
        kind: `NOT_A_CHEST_XRAY` or `OUTSIDE_VALIDATED_USE`.
        detail: The cause, e.g. "colour image (40% of pixels strongly coloured)".

    Returns:
        "<kind>: <detail>; prediction not reliable".

    Raises:
        ValueError: `kind` is not one of `OOD_KINDS`.
    """
    if kind not in OOD_KINDS:
        raise ValueError(f"kind must be one of {OOD_KINDS}, got {kind!r}")
    return f"{kind}: {detail}; {UNRELIABLE_NOTE}"


def feature_reason(distance: float, threshold: float, *, chest_like: bool) -> str | None:
    """The reason for a feature distance from the training X-rays, or None within `threshold`.

    Args:
        distance: Mahalanobis distance of an image's penultimate features, >= 0.
        threshold: The distance above which an image is flagged, > 0.
        chest_like: The second witness (`chest_likeness.looks_like_chest`): whether the picture
            has a chest radiograph's layout. The features alone never call an image "not a
            chest X-ray": a sick adult's film can lie as far from them as a photograph.

    Returns:
        None at or below `threshold`; "not a chest X-ray" at `NOT_AN_XRAY_DISTANCE_RATIO` times
        it or more when the picture has no chest layout; else "outside validated use", worded
        without calling the image an X-ray.
    """
    if distance <= threshold:
        return None
    if distance >= NOT_AN_XRAY_DISTANCE_RATIO * threshold and not chest_like:
        detail = (
            f"image features unlike any chest X-ray (feature distance {distance:.1f}) and no "
            "chest layout (lung fields beside a bright mediastinum)"
        )
        return ood_reason(NOT_A_CHEST_XRAY, detail)
    detail = (
        "image unlike the paediatric chest X-rays the model was validated on "
        f"(feature distance {distance:.1f} > {threshold:.1f})"
    )
    return ood_reason(OUTSIDE_VALIDATED_USE, detail)


def reason_kind(reason: str) -> str:
    """Which kind of flag a reason is: `NOT_A_CHEST_XRAY` or `OUTSIDE_VALIDATED_USE`.

    Raises:
        ValueError: The reason starts with neither (it was not made by `ood_reason`).
    """
    for kind in OOD_KINDS:
        if reason.startswith(f"{kind}: "):
            return kind
    raise ValueError(f"not an out-of-distribution reason: {reason!r}")


def flag_counts(reasons: Sequence[str | None]) -> dict[str, int]:
    """How many inputs were flagged, in all and for each kind.

    Args:
        reasons: One `Prediction.ood_reason` per input, None for an input not flagged.

    Returns:
        `{"n": inputs, "flagged": inputs flagged for either kind, NOT_A_CHEST_XRAY: count,
        OUTSIDE_VALIDATED_USE: count}`.

    Raises:
        ValueError: A reason of neither kind.
    """
    kinds = [reason_kind(reason) for reason in reasons if reason is not None]
    counts = {"n": len(reasons), "flagged": len(kinds)}
    counts.update({kind: kinds.count(kind) for kind in OOD_KINDS})
    return counts


def simple_check(model_input: np.ndarray, info: ImageInfo) -> str | None:
    """Cheap checks that need no model features.

    Args:
        model_input: The preprocessed image, float32 (S, S) or (S, S, 1) in [0, 1].
        info: What decoding learned about the original file.

    Returns:
        The reason when the input is not a chest X-ray (starts with `NOT_A_CHEST_XRAY`) or is
        a lateral view (starts with `OUTSIDE_VALIDATED_USE`), else None.
    """
    problem = _dicom_tag_problem(info) or _picture_problem(model_input, info)
    return ood_reason(*problem) if problem else None


def _dicom_tag_problem(info: ImageInfo) -> tuple[str, str] | None:
    """(kind, detail) when the DICOM tags rule the image out, else None."""
    if info.modality and info.modality not in RADIOGRAPH_MODALITIES:
        return NOT_A_CHEST_XRAY, f"DICOM modality {info.modality} is not a radiograph"
    if info.body_part and not any(part in info.body_part for part in CHEST_BODY_PARTS):
        return NOT_A_CHEST_XRAY, f"DICOM body part is {info.body_part}, not chest"
    if info.view_position in LATERAL_VIEWS:
        return (
            OUTSIDE_VALIDATED_USE,
            f"lateral view ({info.view_position}); validated on frontal views only",
        )
    return None


def _picture_problem(model_input: np.ndarray, info: ImageInfo) -> tuple[str, str] | None:
    """(NOT_A_CHEST_XRAY, detail) when the picture cannot be a radiograph, else None."""
    if info.color_fraction > COLOR_FRACTION_LIMIT:
        detail = f"colour image ({info.color_fraction:.0%} of pixels strongly coloured)"
    elif info.aspect_ratio > ASPECT_RATIO_LIMIT:
        detail = f"extreme aspect ratio {info.aspect_ratio:.1f}:1 ({info.width}x{info.height})"
    elif min(info.width, info.height) < MIN_SIDE:
        detail = f"image too small to be a radiograph ({info.width}x{info.height} pixels)"
    elif (contrast := float(np.std(model_input))) < MIN_CONTRAST:
        detail = f"near-constant image (contrast {contrast:.3f})"
    else:
        return None
    return NOT_A_CHEST_XRAY, detail
