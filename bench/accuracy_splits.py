"""The shipped recipe on other patient-grouped splits, and whether flip test-time augmentation pays.

`bench/accuracy.py` measures one split (seed 42), the one the shipped model was chosen on. This
script trains the same recipe with other seeds (each seed draws another patient-grouped split,
other initial weights and another augmentation stream) and reports every split's validation
metrics at its own Youden threshold, their mean and their worst value: how much the figures
depend on the split. For each model it also scores horizontal-flip test-time augmentation
(the mean of the image's and its mirror's probabilities).

    python bench/accuracy_splits.py --seeds 1 2 3     # about 15 minutes per seed on 2 CPU cores
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import benchlib
import numpy as np
from accuracy import SHIPPED_RECIPE, hardware, run_recipe

from pneumonet_core.data import load_images, training_split
from pneumonet_core.metrics import classification as evaluate
from pneumonet_core.utils import config

METRICS = ("accuracy", "roc_auc", "sensitivity", "specificity", "f1")


def flip_tta_metrics(model_path: str, data_dir: Path, seed: int) -> dict:
    """Validation metrics with and without horizontal-flip TTA, each at its Youden threshold."""
    from pneumonet_core.inference import Predictor

    predictor = Predictor(model_path)
    _, val_frame = training_split(data_dir, val_fraction=SHIPPED_RECIPE["val_fraction"], seed=seed)
    images = load_images(val_frame["path"], predictor.image_size).images
    labels = val_frame["label_index"].to_numpy()
    plain = predictor.predict_arrays(images)
    mirrored = predictor.predict_arrays(np.ascontiguousarray(images[:, :, ::-1, :]))
    results = {}
    for name, scores in (("plain", plain), ("flip_tta", (plain + mirrored) / 2)):
        threshold = evaluate.youden_threshold(labels, scores)
        metrics = evaluate.binary_metrics(labels, scores, threshold=threshold)
        results[name] = {key: metrics[key] for key in (*METRICS, "threshold")}
    return results


def summarise(runs: list[dict]) -> dict:
    """Mean, worst and best value of each metric over the runs."""
    return {
        name: {
            "mean": float(np.mean([run["validation"][name] for run in runs])),
            "min": float(np.min([run["validation"][name] for run in runs])),
            "max": float(np.max([run["validation"][name] for run in runs])),
        }
        for name in METRICS
    }


def main(argv=None) -> int:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--data", default=str(config.data_root()))
    parser.add_argument("--work-dir", default=str(config.state_dir() / "bench-accuracy-splits"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args(argv)
    data_dir, work_dir = Path(args.data), Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in args.seeds:
        recipe = {**SHIPPED_RECIPE, "seed": seed}
        run = run_recipe(f"split-{seed}", recipe, data_dir, work_dir / f"split-{seed}.keras")
        with_and_without_flip = flip_tta_metrics(run["result"].model_path, data_dir, seed)
        runs.append(
            {
                "seed": seed,
                "n": int(run["validation"]["n"]),
                "threshold": run["threshold"],
                "duration_min": run["duration_s"] / 60,
                "validation": {name: run["validation"][name]["value"] for name in METRICS},
                "tta": with_and_without_flip,
            }
        )
        print(json.dumps(runs[-1], indent=2), flush=True)
    report = {
        "hardware": hardware(),
        "recipe": {name: value for name, value in SHIPPED_RECIPE.items() if name != "augmentation"},
        "runs": runs,
        "summary": summarise(runs),
        "flip_tta_gain": {
            name: float(
                np.mean([run["tta"]["flip_tta"][name] - run["tta"]["plain"][name] for run in runs])
            )
            for name in METRICS
        },
    }
    print(json.dumps(report, indent=2))
    (work_dir / "accuracy_splits.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
