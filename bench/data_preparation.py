"""Data preparation: decoding the training set, and the first epoch against later ones.

- Scanning `train/` (`scan_dataset`) and decoding all of it (`load_images`, parallel threads)
  at the shipped model's input size: median of several runs.
- The first epoch against later ones, over the whole decoded training set through
  `make_dataset` with augmentation, as `training.trainer` builds it. A deliberately tiny
  model keeps the epochs short, so what differs between epochs (graph tracing, iterator
  start-up) stays visible instead of drowning in convolution time.

    python bench/data_preparation.py [--repeats 3] [--epochs 4]
"""

from __future__ import annotations

import argparse
import time

import benchlib

NAME = "data_preparation"


def scan_seconds(repeats: int) -> list[float]:
    """Seconds to scan the dataset root and pick out `train/`."""
    return benchlib.time_runs(benchlib.training_frame, repeats)


def load_seconds(paths: list[str], image_size: int, repeats: int) -> tuple[list[float], object]:
    """Seconds to decode every path with `load_images`; also the last decoded result."""
    from pneumonet_core.data import load_images

    loaded = None

    def load():
        nonlocal loaded
        loaded = load_images(paths, image_size)

    durations = benchlib.time_runs(load, repeats)
    return durations, loaded


def tiny_model(image_size: int):
    """A one-convolution model: cheap enough that the input pipeline dominates an epoch."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(image_size, image_size, 1))
    x = layers.Conv2D(8, 3, strides=4, activation="relu")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def epoch_seconds(images, labels, epochs: int, batch_size: int) -> list[float]:
    """Wall-clock seconds of each epoch of a tiny model over the augmented training pipeline."""
    import keras

    from pneumonet_core.data import (
        AugmentationConfig,
        build_augmentation,
        class_weights,
        make_dataset,
    )

    keras.utils.set_random_seed(42)
    augmentation = build_augmentation(AugmentationConfig(), seed=42)
    dataset = make_dataset(
        images, labels, batch_size=batch_size, training=True, augmentation=augmentation
    )
    model = tiny_model(images.shape[1])
    durations: list[float] = []
    marks = {}
    clock = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: marks.update(start=time.perf_counter()),
        on_epoch_end=lambda epoch, logs: durations.append(time.perf_counter() - marks["start"]),
    )
    model.fit(
        dataset, epochs=epochs, class_weight=class_weights(labels), callbacks=[clock], verbose=0
    )
    return durations


def measure(repeats: int, epochs: int, batch_size: int, architecture: str) -> dict:
    """All data-preparation timings for the full `train/` split."""
    from pneumonet_core.models import default_image_size

    image_size = default_image_size(architecture)
    scans = scan_seconds(repeats)
    frame = benchlib.training_frame()
    paths = [str(path) for path in frame["path"]]
    loads, loaded = load_seconds(paths, image_size, repeats)
    labels = frame["label_index"].to_numpy()[loaded.kept]
    epochs_measured = epoch_seconds(loaded.images, labels, epochs, batch_size)
    later = benchlib.median(epochs_measured[1:])
    return {
        "images": len(paths),
        "image_size": image_size,
        "image_size_of": architecture,
        "decoded_megabytes": loaded.images.nbytes / 2**20,
        "repeats": repeats,
        "scan_s": benchlib.median(scans),
        "load_images_s": benchlib.median(loads),
        "load_images_per_s": len(paths) / benchlib.median(loads),
        "load_runs_s": loads,
        "epochs": epochs,
        "batch_size": batch_size,
        "epoch_model": "tiny (one strided 3x3 convolution, 8 filters)",
        "first_epoch_s": epochs_measured[0],
        "later_epochs_median_s": later,
        "first_epoch_overhead_s": epochs_measured[0] - later,
        "later_epoch_images_per_s": len(labels) / later,
        "epoch_runs_s": epochs_measured,
    }


def table(result: dict) -> benchlib.Table:
    """The measured numbers as a Markdown table."""
    values = result["measurements"]
    images, size = values["images"], values["image_size"]
    rows = [
        ("scan train/ (median), s", values["scan_s"], f"{images} files"),
        (
            "load_images, whole train/ (median), s",
            values["load_images_s"],
            f"{size} px, {values['load_images_per_s']:.0f} images/s, "
            f"{values['decoded_megabytes']:.0f} MiB in memory",
        ),
        ("first epoch, s", values["first_epoch_s"], "tiny model, augmented pipeline"),
        ("later epochs (median), s", values["later_epochs_median_s"], "same"),
        ("first-epoch overhead, s", values["first_epoch_overhead_s"], "tracing, start-up"),
    ]
    return benchlib.Table("Data preparation", rows)


def arguments() -> argparse.ArgumentParser:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="runs of scan and load")
    parser.add_argument("--epochs", type=int, default=4, help="epochs (the first included)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--architecture", default="pneumonet", help="its input size is used")
    return parser


@benchlib.benchmark(NAME, arguments=arguments, table=table)
def main(args: argparse.Namespace) -> dict:
    measurements = measure(args.repeats, args.epochs, args.batch_size, args.architecture)
    return {"measurements": measurements}


if __name__ == "__main__":
    main()
