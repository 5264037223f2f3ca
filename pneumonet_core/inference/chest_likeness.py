"""A second witness for "not a chest X-ray": does the picture have a chest radiograph's layout?

The model's features are trained to tell NORMAL from PNEUMONIA in children, so a very sick
adult can lie as far from them as a photograph. Before the feature distance may call an image
"not a chest X-ray", this classical check, which knows nothing of the model, must agree. On the
image normalised to its 2nd-98th percentiles it measures

- `mediastinum_contrast`: in the column profile of the middle rows (30-70% of the height), how
  much brighter the mediastinum and spine (the brightest column in the middle 40-60%) are than
  the darker lung field (the darkest column in 10-42% or 58-90%): one dark lung suffices, so a
  lung white with consolidation still counts;
- `spine_share`: the share of rows (20-80% of the height) in which the central strip is
  brighter than the darker lung strip by more than `SPINE_STEP` (a bright spine, top to bottom);
- `lower_brightness`: how much brighter the bottom rows (85-98%: diaphragm, abdomen) are than
  the lung rows (30-60%), in the lung columns.

An image looks like a chest radiograph when all three reach their limits. The limits lie below
every paediatric X-ray measured (400 drawn from train/, all of test/ and val/, and the shipped
model's 1,044-image validation split: smallest 0.187, 0.104 and -0.151), so an X-ray passes
with a margin; `tests/core/inference/test_ood_shipped.py` checks this on every run. The spine
limit is low because a rotated child can hide the spine behind the heart in most rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_MEDIASTINUM_CONTRAST = 0.12
MIN_SPINE_SHARE = 0.05
MIN_LOWER_BRIGHTNESS = -0.2
SPINE_STEP = 0.05


@dataclass(frozen=True)
class ChestLayout:
    """The three layout measures of one image (see the module's description)."""

    mediastinum_contrast: float
    spine_share: float
    lower_brightness: float

    @property
    def looks_like_chest(self) -> bool:
        """Whether every measure reaches its limit."""
        return (
            self.mediastinum_contrast >= MIN_MEDIASTINUM_CONTRAST
            and self.spine_share >= MIN_SPINE_SHARE
            and self.lower_brightness >= MIN_LOWER_BRIGHTNESS
        )


def chest_layout(image: np.ndarray) -> ChestLayout:
    """Measure a grayscale image's chest-radiograph layout.

    Args:
        image: float (H, W) or (H, W, 1), any range; at least 16 pixels a side.

    Returns:
        The `ChestLayout` measures.

    Raises:
        ValueError: The image is not 2-D (or 2-D with one channel) or is under 16 pixels a side.
    """
    gray = _normalised(image)
    height, width = gray.shape
    rows = partial_slice(height)
    columns = partial_slice(width)
    profile = gray[rows(0.3, 0.7)].mean(axis=0)
    window = max(3, width // 16)
    profile = np.convolve(profile, np.ones(window) / window, mode="same")
    centre = profile[columns(0.4, 0.6)].max()
    darker_lung = min(profile[columns(0.1, 0.42)].min(), profile[columns(0.58, 0.9)].min())
    band = gray[rows(0.2, 0.8)]
    strip = band[:, columns(0.45, 0.55)].mean(axis=1)
    lungs = np.minimum(
        band[:, columns(0.15, 0.4)].mean(axis=1), band[:, columns(0.6, 0.85)].mean(axis=1)
    )
    lung_columns = np.concatenate(
        [gray[:, columns(0.15, 0.4)], gray[:, columns(0.6, 0.85)]], axis=1
    ).mean(axis=1)
    return ChestLayout(
        mediastinum_contrast=float(centre - darker_lung),
        spine_share=float(np.mean(strip - lungs > SPINE_STEP)),
        lower_brightness=float(
            lung_columns[rows(0.85, 0.98)].mean() - lung_columns[rows(0.3, 0.6)].mean()
        ),
    )


def looks_like_chest(image: np.ndarray) -> bool:
    """Whether a grayscale image has a chest radiograph's layout (`chest_layout`)."""
    return chest_layout(image).looks_like_chest


def partial_slice(length: int):
    """A function of (start, stop) fractions giving the slice of `length` they cover."""
    return lambda start, stop: slice(int(length * start), int(length * stop))


def _normalised(image: np.ndarray) -> np.ndarray:
    gray = np.asarray(image, dtype=np.float32)
    if gray.ndim == 3 and gray.shape[-1] == 1:
        gray = gray[..., 0]
    if gray.ndim != 2 or min(gray.shape) < 16:
        raise ValueError(f"expected a grayscale image at least 16x16, got shape {gray.shape}")
    low, high = np.percentile(gray, [2, 98])
    return np.clip((gray - low) / max(float(high - low), 1e-6), 0.0, 1.0)
