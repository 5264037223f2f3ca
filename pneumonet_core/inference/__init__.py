"""A model on images: the one prediction path (`Predictor`), the out-of-distribution guard,
Grad-CAM and the shortcut audit."""

from pneumonet_core.inference import explain, ood, ood_checks, predict, shortcuts
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
    "Explanation",
    "GradCam",
    "Prediction",
    "Predictor",
    "check_threshold",
    "expand_inputs",
    "explain",
    "grad_cam",
    "load_statistics",
    "ood",
    "ood_checks",
    "overlay_heatmap",
    "predict",
    "shortcuts",
]
