"""In-distribution accuracy benchmark: the stop-7 recipe against the original `seed` CNN.

Both models go through the same pipeline, the same patient-grouped validation split of
`train/` (seed 42) and the same evaluation; prints the measured numbers. This measures the
training distribution only: how recipes hold up on images from outside it is
`bench/generalization.py`, and the shipped model is written by `bench/ship_model.py`.

    python bench/accuracy.py                 # about 25 minutes on 2 CPU cores
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import benchlib
import numpy as np

from pneumonet_core.data import STOP7_AUGMENTATION, training_split
from pneumonet_core.governance import modelcard
from pneumonet_core.inference import load_statistics
from pneumonet_core.metrics import classification as evaluate
from pneumonet_core.training import TrainConfig, train
from pneumonet_core.utils import config

SHIPPED_RECIPE = dict(
    architecture="pneumonet",
    image_size=192,
    epochs=24,
    batch_size=32,
    learning_rate=2e-3,
    lr_schedule="cosine",
    class_balancing="weights",
    label_smoothing=0.0,
    augmentation=STOP7_AUGMENTATION,
    monitor="val_auc",
    threshold_policy="youden",
    seed=42,
    val_fraction=0.2,
)
SEED_RECIPE = dict(
    architecture="seed",
    image_size=150,
    epochs=10,
    batch_size=32,
    learning_rate=1e-3,
    seed=42,
    val_fraction=0.2,
    augmentation=STOP7_AUGMENTATION,
    threshold_policy="youden",
)
CI_METRICS = ("accuracy", "roc_auc", "sensitivity", "specificity", "f1")


def cli_flags(recipe: dict) -> str:
    """The `pneumonet train` flags that reproduce a recipe."""
    flags = [
        f"--arch {recipe['architecture']}",
        f"--image-size {recipe['image_size']}",
        f"--epochs {recipe['epochs']}",
        f"--batch-size {recipe['batch_size']}",
        f"--learning-rate {recipe['learning_rate']}",
        f"--lr-schedule {recipe.get('lr_schedule', 'constant')}",
        f"--threshold-policy {recipe['threshold_policy']}",
        f"--seed {recipe['seed']}",
    ]
    if recipe.get("label_smoothing"):
        flags.append(f"--label-smoothing {recipe['label_smoothing']}")
    return " ".join(flags)


def hardware() -> str:
    return f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.system()}), no GPU"


def validation_scores(model_path: str, data_dir: Path, seed: int, val_fraction: float):
    """Labels and PNEUMONIA probabilities of the patient-grouped validation split."""
    from pneumonet_core.inference import Predictor

    _, val_frame = training_split(data_dir, val_fraction=val_fraction, seed=seed)
    predictor = Predictor(model_path)
    predictions = predictor.predict(list(val_frame["path"]))
    scores = np.array([p.probability for p in predictions], dtype=np.float64)
    return val_frame["label_index"].to_numpy(), scores, predictor.threshold


def run_recipe(name: str, recipe: dict, data_dir: Path, out: Path) -> dict:
    print(f"\n=== {name}: pneumonet train {cli_flags(recipe)}", flush=True)
    started = time.monotonic()
    result = train(
        TrainConfig(data_dir=str(data_dir), out=str(out), run_name=f"bench-{name}", **recipe),
        verbose=2,
    )
    duration = time.monotonic() - started
    y_true, y_score, threshold = validation_scores(
        result.model_path, data_dir, recipe["seed"], recipe["val_fraction"]
    )
    return {
        "result": result,
        "duration_s": duration,
        "threshold": threshold,
        "validation": benchlib.metrics_with_intervals(y_true, y_score, threshold),
        "at_0.5": evaluate.binary_metrics(y_true, y_score, threshold=0.5),
        "y_true": y_true,
        "y_score": y_score,
    }


def ood_summary(model_path: Path) -> dict | None:
    """The out-of-distribution statistics stored in the model file, for the card."""
    return modelcard.ood_guard_summary(load_statistics(model_path))


def main(argv=None) -> int:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--data", default=str(config.data_root()))
    parser.add_argument("--work-dir", default=str(config.state_dir() / "bench-accuracy"))
    parser.add_argument("--skip-seed", action="store_true", help="skip the seed baseline")
    args = parser.parse_args(argv)
    data_dir, work_dir = Path(args.data), Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)

    shipped = run_recipe("shipped", SHIPPED_RECIPE, data_dir, work_dir / "shipped.keras")
    seed = (
        None
        if args.skip_seed
        else run_recipe("seed", SEED_RECIPE, data_dir, work_dir / "seed.keras")
    )
    report = {"hardware": hardware(), "shipped": _summary(shipped)}
    if seed:
        report["seed"] = _summary(seed)
        report["difference"] = {
            name: shipped["validation"][name]["value"] - seed["validation"][name]["value"]
            for name in CI_METRICS
        }
    print(json.dumps(report, indent=2))
    (work_dir / "accuracy.json").write_text(json.dumps(report, indent=2))
    return 0


def _summary(run: dict) -> dict:
    return {
        "threshold": run["threshold"],
        "duration_min": run["duration_s"] / 60,
        "best_epoch": run["result"].best_epoch,
        "validation": run["validation"],
        "at_threshold_0.5": {k: v for k, v in run["at_0.5"].items() if k != "confusion_matrix"},
    }


if __name__ == "__main__":
    sys.exit(main())
