"""`pneumonet shortcuts` and `pneumonet ood fit`: does a model read the lungs, and when is an image
outside its validated use."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from pneumonet_core.cli.common import default_evaluation_folder, json_safe


def cmd_shortcuts(args) -> int:
    from pneumonet_core.data import DatasetError, load_images, scan_dataset
    from pneumonet_core.governance import registry
    from pneumonet_core.inference import shortcuts
    from pneumonet_core.models.modelio import load_model

    folder = Path(args.dir) if args.dir else default_evaluation_folder()
    frame = scan_dataset(folder).frame
    if frame.empty:
        raise DatasetError(f"{folder} holds no images in NORMAL/ and PNEUMONIA/")
    model_path = Path(args.model) if args.model else registry.active_model_path()
    model, metadata = load_model(model_path)
    loaded = load_images(frame["path"], metadata.image_size, on_error="skip")
    labels = frame["label_index"].to_numpy()[loaded.kept]
    result = shortcuts.audit(model, loaded.images, labels, with_gradcam=not args.no_gradcam)
    result["unreadable"] = [reason for _, reason in loaded.errors]
    if args.json:
        print(json.dumps(json_safe(result)))
    else:
        print_shortcuts(folder, model_path, result)
    return 0


def print_shortcuts(folder: Path, model_path: Path, result: dict) -> None:
    from pneumonet_core.inference.shortcuts import TARGETS

    met = result["meets_targets"]
    print(f"Shortcut audit of {model_path} on {result['n']} images in {folder}")
    print(f"lung region: {result['region']}")
    print(f"ROC-AUC, whole image          {result['original_auc']:.3f}")
    print(
        f"ROC-AUC, lungs hidden         {result['lungs_hidden_auc']:.3f}   "
        f"(target <= {TARGETS['lungs_hidden_auc_max']}: "
        f"{'met' if met['lungs_hidden_auc'] else 'NOT met'})"
    )
    print(
        f"ROC-AUC, outside lungs hidden {result['outside_hidden_auc']:.3f}   "
        f"(target: within {TARGETS['outside_hidden_auc_max_drop']} of the whole image: "
        f"{'met' if met['outside_hidden_auc'] else 'NOT met'})"
    )
    share = result["gradcam_lung_share"]
    if math.isfinite(share):
        print(
            f"Grad-CAM mass inside the lungs {share:.1%}   "
            f"(the region covers {result['region_share']:.1%} of the image)"
        )
    for error in result["unreadable"]:
        print(f"skipped unreadable image: {error}", file=sys.stderr)


def cmd_ood_fit(args) -> int:
    from pneumonet_core.inference.ood import (
        DEFAULT_MAX_IMAGES,
        DEFAULT_PERCENTILE,
        fit_ood_for_model,
    )

    statistics = fit_ood_for_model(
        args.model,
        args.dir,
        max_images=DEFAULT_MAX_IMAGES if args.max_images is None else args.max_images,
        percentile=DEFAULT_PERCENTILE if args.percentile is None else args.percentile,
    )
    print(
        f"OOD statistics fitted on {statistics.n_fit} training images; threshold "
        f"{statistics.threshold:.2f} (percentile {statistics.percentile:g} of "
        f"{statistics.n_validation} validation images, "
        f"{statistics.validation_flag_rate:.1%} flagged); stored in {args.model}"
    )
    return 0


def add_ood_parser(commands) -> None:
    ood_parser = commands.add_parser("ood", help="out-of-distribution guard of a model")
    ood_commands = ood_parser.add_subparsers(dest="ood_command", required=True)
    fit = ood_commands.add_parser(
        "fit", help="fit the not-a-chest-X-ray guard and store it inside the model file"
    )
    fit.add_argument("dir", nargs="?", help="dataset root holding train/ (default: model's)")
    fit.add_argument("--model", required=True, help="the .keras model to attach it to")
    fit.add_argument("--max-images", type=int, help="images per split, at most (default: 2000)")
    fit.add_argument(
        "--percentile", type=float, help="validation distance percentile (default: 98)"
    )
    fit.set_defaults(handler=cmd_ood_fit)


# Commands that load TensorFlow; its start-up lines are kept off the terminal unless --verbose.
def add_shortcuts_parser(commands) -> None:
    audit = commands.add_parser(
        "shortcuts",
        help="shortcut audit: ROC-AUC with the lungs hidden, with the outside hidden, and "
        "the share of Grad-CAM inside the lungs",
    )
    audit.add_argument(
        "dir",
        nargs="?",
        help="folder holding NORMAL/ and PNEUMONIA/ (default: test/ or val/ of $PNEUMONET_DATA)",
    )
    audit.add_argument("--model", help="a .keras model (default: the active model)")
    audit.add_argument("--json", action="store_true", help="print one JSON object")
    audit.add_argument("--no-gradcam", action="store_true", help="skip the Grad-CAM share")
    audit.set_defaults(handler=cmd_shortcuts)
