"""A model on images: the one prediction path (`Predictor`), the out-of-distribution guard,
Grad-CAM and the shortcut audit."""

from pneumonet_core.inference import chest_likeness, explain, ood, ood_checks, predict, shortcuts
from pneumonet_core.inference.chest_likeness import ChestLayout, chest_layout, looks_like_chest
from pneumonet_core.inference.explain import GradCam, grad_cam, overlay_heatmap
from pneumonet_core.inference.ood import OOD_ENTRY, SIMPLE_CHECKS_SUMMARY, load_statistics
from pneumonet_core.inference.predict import (
    Explanation,
    Prediction,
    Predictor,
    check_threshold,
    expand_inputs,
)

__all__ = [
    "OOD_ENTRY",
    "SIMPLE_CHECKS_SUMMARY",
    "ChestLayout",
    "Explanation",
    "GradCam",
    "Prediction",
    "Predictor",
    "check_threshold",
    "chest_layout",
    "chest_likeness",
    "expand_inputs",
    "explain",
    "grad_cam",
    "load_statistics",
    "looks_like_chest",
    "ood",
    "ood_checks",
    "overlay_heatmap",
    "predict",
    "shortcuts",
]
