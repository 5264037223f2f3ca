"""Shortcut audit: does the model read the lungs, or what lies around them?

Three figures on a labelled set of model inputs (`lungs.lung_region` defines the region):

- `lungs_hidden_auc`: ROC-AUC with the lung region filled with each image's mean grey. A model
  that reads the lungs falls towards 0.5; a high value means it finds the label elsewhere
  (borders, shoulders, markers, body size).
- `outside_hidden_auc`: ROC-AUC with everything outside the lung region hidden. It should stay
  close to `original_auc`.
- `gradcam_lung_share`: mean share of the Grad-CAM heatmap's mass inside the lung region, in
  [0, 1] (the region's own share of the image is reported beside it as `region_share`).

Imports point one way: this module uses the model, Grad-CAM and the metrics, nothing above them.
"""

from __future__ import annotations

import numpy as np

from pneumonet_core.data.lungs import hide_region, lung_region
from pneumonet_core.metrics import classification as evaluate

TARGETS = {"lungs_hidden_auc_max": 0.65, "outside_hidden_auc_max_drop": 0.03}


def model_scores(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """PNEUMONIA probabilities of model inputs: (n, S, S, 1) -> (n,) float64."""
    parts = [
        np.asarray(model(images[start : start + batch_size], training=False)).ravel()
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)


def gradcam_lung_share(model, images: np.ndarray, region: np.ndarray, explainer=None) -> float:
    """Mean share of Grad-CAM mass inside `region` over the images, in [0, 1] (NaN if none).

    Args:
        model: A PneumoNet keras.Model.
        images: float32 (n, S, S, 1) in [0, 1].
        region: bool (S, S).
        explainer: The model's `explain.GradCam` when one is already built (e.g.
            `Predictor.grad_cam`); default: one built here.
    """
    if explainer is None:
        from pneumonet_core.inference.explain import GradCam

        explainer = GradCam(model)
    shares = []
    for image in images:
        heatmap = explainer(image)
        total = float(heatmap.sum())
        if total > 0:
            shares.append(float(heatmap[region].sum()) / total)
    return float(np.mean(shares)) if shares else float("nan")


def audit(model, images: np.ndarray, labels, *, with_gradcam: bool = True, explainer=None) -> dict:
    """The shortcut figures of a model on labelled inputs.

    Args:
        model: A PneumoNet keras.Model.
        images: float32 (n, S, S, 1) in [0, 1], both classes present.
        labels: n labels, 0 = NORMAL, 1 = PNEUMONIA.
        with_gradcam: Also compute `gradcam_lung_share` (one Grad-CAM per image).
        explainer: The model's `explain.GradCam` when one is already built (e.g.
            `Predictor.grad_cam`); default: one built for this audit.

    Returns:
        Dict with `n, original_auc, lungs_hidden_auc, outside_hidden_auc, gradcam_lung_share,
        region_share, region` and `meets_targets` (a dict of booleans).
    """
    labels = np.asarray(labels).astype(int)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if np.unique(labels).size < 2:
        raise ValueError("the shortcut audit needs images of both classes")
    region = lung_region(int(images.shape[1]))
    original = evaluate.roc_auc(labels, model_scores(model, images))
    lungs_hidden = evaluate.roc_auc(labels, model_scores(model, hide_region(images, region)))
    outside_hidden = evaluate.roc_auc(labels, model_scores(model, hide_region(images, ~region)))
    result = {
        "n": int(len(labels)),
        "original_auc": original,
        "lungs_hidden_auc": lungs_hidden,
        "outside_hidden_auc": outside_hidden,
        "gradcam_lung_share": (
            gradcam_lung_share(model, images, region, explainer) if with_gradcam else float("nan")
        ),
        "region_share": float(region.mean()),
        "region": "fixed lung box: rows 15-85%, columns 12-88% of the model input",
    }
    result["meets_targets"] = {
        "lungs_hidden_auc": lungs_hidden <= TARGETS["lungs_hidden_auc_max"],
        "outside_hidden_auc": original - outside_hidden <= TARGETS["outside_hidden_auc_max_drop"],
    }
    return result
