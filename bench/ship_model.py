"""Ship a recipe's seeds as one ensemble model, with its model card.

The members are the models `bench/generalization.py` trained for the recipe (trained here when
missing). They are joined into one `.keras` file (`pneumonet_core.models.ensemble`), calibrated with
Platt scaling fitted on `test/`, and given the threshold that maximises Youden's J on `test/`.
`test/` is the development set: it chose the recipe, the calibration and the threshold, so
its figures are development figures and labelled so. The OOD guard is fitted on the training
split, and the shortcut audit is run on `test/`. Writes `assets/model/pneumonet.keras`,
`model_card.json` and `MODEL_CARD.md`.

    python bench/ship_model.py --recipe equalize+photometric --seeds 1 2 3
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import benchlib
import generalization
import numpy as np
import pandas as pd

from pneumonet_core.governance import modelcard
from pneumonet_core.metrics import classification as evaluate
from pneumonet_core.utils import config

DEVELOPMENT_SET = (
    "test/: half of the official Kermany et al. test split (314 images: 118 NORMAL, 196 "
    "PNEUMONIA), different patients and acquisition from train/"
)


def load_members(recipe: str, seeds: list[int], epochs: int | None) -> list[Path]:
    return [generalization.train_member(recipe, seed, epochs) for seed in seeds]


def member_mean_logits(paths: list[Path], sets) -> tuple[list, dict, dict, int]:
    """Members, their mean logit per image set, the labels, and the input size."""
    from pneumonet_core.models import load_model, member_logits

    loaded = [load_model(path) for path in paths]
    members = [model for model, _ in loaded]
    image_size = loaded[0][1].image_size
    data = sets.get(image_size)
    logits = {
        part: member_logits(members, images).mean(axis=1) for part, (images, _) in data.items()
    }
    labels = {part: labels for part, (_, labels) in data.items()}
    return members, logits, labels, image_size


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def fit_ood(model, seed: int = 42):
    from pneumonet_core.data import load_images, training_split
    from pneumonet_core.inference import ood

    train_frame, val_frame = training_split(
        benchlib.data_root(), val_fraction=0.2, seed=generalization.SPLIT_SEED
    )
    size = int(model.input_shape[1])
    from pneumonet_core.data import data_fingerprint

    fingerprint = data_fingerprint(pd.concat([train_frame["path"], val_frame["path"]]))
    train_images = load_images(train_frame["path"], size, on_error="skip").images
    val_images = load_images(val_frame["path"], size, on_error="skip").images
    statistics = ood.fit_on_images(model, train_images, val_images, seed=seed)
    counts = {"train_images": len(train_images), "val_images": len(val_images)}
    return statistics, counts, fingerprint


def main() -> int:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--recipe", required=True, choices=sorted(generalization.RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=config.shipped_model_path().parent,
        help="where the model and its card go (default: assets/model)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    from pneumonet_core.inference import ood, shortcuts
    from pneumonet_core.models import ModelMetadata, build_ensemble, fit_platt, save_model

    paths = load_members(args.recipe, args.seeds, args.epochs)
    sets = generalization.EvaluationSets()
    members, logits, labels, image_size = member_mean_logits(paths, sets)
    scale, shift = fit_platt(labels["test"], logits["test"])
    probabilities = {part: sigmoid(scale * value + shift) for part, value in logits.items()}
    threshold = evaluate.youden_threshold(labels["test"], probabilities["test"])
    model = build_ensemble(members, platt_scale=scale, platt_shift=shift)
    check = np.asarray(model(sets.get(image_size)["test"][0][:8])).ravel()
    np.testing.assert_allclose(check, probabilities["test"][:8], atol=1e-4)

    member_config = generalization.recipe_config(args.recipe, args.seeds[0], args.epochs)
    training = member_config.to_dict() | {
        "seed": args.seeds[0],
        "member_seeds": args.seeds,
        "out": None,
        "run_name": None,
    }
    figures = {
        part: benchlib.metrics_with_intervals(labels[part], probabilities[part], threshold)
        | {"ece": evaluate.expected_calibration_error(labels[part], probabilities[part])}
        for part in ("validation", "test")
    }
    metadata = ModelMetadata(
        architecture=f"{member_config.architecture}-ensemble",
        image_size=image_size,
        threshold=threshold,
        name=f"pneumonet ensemble ({args.recipe})",
        training=training,
        metrics={"validation": figures["validation"], "development_test": figures["test"]},
    )
    statistics, counts, metadata.training_data_fingerprint = fit_ood(model, seed=args.seeds[0])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    destination = args.out_dir / config.SHIPPED_MODEL_RELATIVE_PATH.name
    temporary = destination.with_name("pneumonet.tmp.keras")
    save_model(model, temporary, metadata, extra_entries={ood.OOD_ENTRY: statistics.to_bytes()})
    os.replace(temporary, destination)
    audit = shortcuts.audit(model, *sets.get(image_size)["test"])
    results = generalization.load_results()
    key = f"{args.recipe} ({member_config.epochs} epochs)"
    card = build_card(
        args,
        model,
        metadata,
        figures,
        audit,
        statistics,
        counts,
        results["recipes"].get(key),
        (scale, shift),
        [json.loads(path.with_suffix(".train.json").read_text()) for path in paths],
    )
    modelcard.write_model_card(card, args.out_dir)
    print(
        json.dumps({k: card[k] for k in ("development", "validation", "shortcut_audit")}, indent=2)
    )
    print(
        f"shipped {destination} ({destination.stat().st_size / 1e6:.1f} MB) in "
        f"{(time.monotonic() - started) / 60:.1f} min"
    )
    return 0


def build_card(args, model, metadata, figures, audit, statistics, counts, recipe, platt, trainings):
    """The model card (`governance.modelcard.build_model_card`) of the shipped ensemble."""
    seeds = ", ".join(str(seed) for seed in args.seeds)
    minutes = [record["duration_s"] / 60 for record in trainings]
    return modelcard.build_model_card(
        metadata=metadata,
        parameters=model.count_params(),
        model_file=args.out_dir / config.SHIPPED_MODEL_RELATIVE_PATH.name,
        training={
            "recipe": f"{args.recipe}: {generalization.RECIPES[args.recipe]['about']}",
            "members": len(args.seeds),
            "seed": seeds,
            "split_seed": generalization.SPLIT_SEED,
            **counts,
            "duration_min": float(sum(minutes)),
            "member_minutes": minutes,
            "hardware": f"{os.cpu_count()} CPU cores ({benchlib.cpu_model_name()}), no GPU",
        },
        development={
            "label": modelcard.DEVELOPMENT_LABEL,
            "set": DEVELOPMENT_SET,
            "metrics": figures["test"],
            "seed_spread": modelcard.seed_spread(recipe["test"] if recipe else None),
            "note": "test/ chose the recipe, the calibration and the threshold: these are "
            "development figures, optimistic for new images. The other half of the official "
            "test split is held back to judge this model.",
        },
        validation=figures["validation"],
        operating_point=(
            f"Threshold {metadata.threshold:.3f} on the calibrated probability, chosen on "
            "test/ (the development set) by Youden's J. The mean of the members' logits is "
            f"calibrated by Platt scaling fitted on test/ (logit x {platt[0]:.3f} "
            f"{platt[1]:+.3f})."
        ),
        shortcut_audit=audit,
        ood_statistics=statistics,
        reproduce=f"python bench/ship_model.py --recipe {args.recipe} --seeds "
        + " ".join(str(seed) for seed in args.seeds),
    )


if __name__ == "__main__":
    raise SystemExit(main())
