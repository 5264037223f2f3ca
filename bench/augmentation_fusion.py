"""What-if: the training pipeline with rotation, zoom and translation fused into one image warp.

`pneumonet_core.augment` applies RandomRotation, RandomZoom and RandomTranslation one after the
other: three full-image warps (and three interpolations) per training image, on the same CPU
cores as the training step. This prototype draws the same random parameters (horizontal flip;
rotation up to +-10 degrees, zoom up to +-10 %, shift up to +-5 % of the side, nearest fill;
then Keras' RandomContrast) but composes the geometric ones into a single affine transform.

It measures, interleaved, for the shipped architecture: the pipeline with today's augmentation,
the pipeline with the fused prototype, and the ceiling (one pre-materialised batch), as
`bench/training_throughput.py` does. The prototype is not used by training; adopting it means
changing `pneumonet_core/augment.py` and re-validating the shipped recipe.

    python bench/augmentation_fusion.py [--architecture pneumonet] [--epochs 3]
"""

from __future__ import annotations

import argparse
import math

import benchlib
import training_throughput

NAME = "augmentation_fusion"


def fused_augmentation(config, seed: int = 42):
    """A callable `(images, training=True) -> images` doing `config`'s transforms, one warp.

    Args:
        config: A `pneumonet_core.augment.AugmentationConfig`.
        seed: Seed of the random generator (the map runs sequentially, so a seed gives one run).
    """
    import keras
    import tensorflow as tf
    from keras import ops

    generator = tf.random.Generator.from_seed(seed)
    contrast = keras.layers.RandomContrast(config.contrast, value_range=(0.0, 1.0), seed=seed + 4)

    def augment(images, training=True):
        count = tf.shape(images)[0]
        if config.horizontal_flip:
            flip = generator.uniform((count, 1, 1, 1)) < 0.5
            images = tf.where(flip, tf.reverse(images, axis=[2]), images)
        images = ops.image.affine_transform(
            images, affine_parameters(generator, config, tf.shape(images)), fill_mode="nearest"
        )
        return contrast(images, training=True) if config.contrast else images

    return augment


def affine_parameters(generator, config, shape):
    """Per-image 8-parameter transforms (output -> input pixel) for rotation, zoom and shift.

    The input point for output point p is R(angle) * scale * (p - centre) + centre + shift.
    """
    import tensorflow as tf

    count = shape[0]
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    angle = generator.uniform((count,), -1.0, 1.0) * config.rotation_degrees * math.pi / 180.0
    scale = 1.0 + generator.uniform((count,), -config.zoom, config.zoom)
    shift_x = generator.uniform((count,), -config.translation, config.translation) * width
    shift_y = generator.uniform((count,), -config.translation, config.translation) * height
    a0, a1 = scale * tf.cos(angle), -scale * tf.sin(angle)
    b0, b1 = scale * tf.sin(angle), scale * tf.cos(angle)
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    a2 = centre_x - a0 * centre_x - a1 * centre_y + shift_x
    b2 = centre_y - b0 * centre_x - b1 * centre_y + shift_y
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def measure(architecture: str, per_class: int, epochs: int, batch_size: int) -> dict:
    """Today's pipeline, the fused prototype and the ceiling, interleaved."""
    import keras

    from pneumonet_core.augment import AugmentationConfig, build_augmentation
    from pneumonet_core.data import class_weights, load_images, make_dataset
    from pneumonet_core.model import build_model, default_image_size

    keras.utils.set_random_seed(42)
    frame = benchlib.sample_training_images(per_class)
    images = load_images(frame["path"], default_image_size(architecture)).images
    labels = frame["label_index"].to_numpy()
    count = len(images) - len(images) % batch_size
    images, labels = images[:count], labels[:count]
    weights = class_weights(labels)
    config = AugmentationConfig()
    current = make_dataset(
        images,
        labels,
        batch_size=batch_size,
        training=True,
        augmentation=build_augmentation(config, seed=42),
    )
    fused = make_dataset(
        images,
        labels,
        batch_size=batch_size,
        training=True,
        augmentation=fused_augmentation(config),
    )
    ceiling = training_throughput.materialised_dataset(current, count // batch_size, weights)
    model = build_model(architecture)
    training_throughput.compile_like_training(model)
    feeds = {"current": (current, weights), "fused": (fused, weights), "ceiling": (ceiling, None)}
    timings = training_throughput.interleaved_epochs(model, feeds, epochs)
    result = {"architecture": architecture, "images": count, "timed_epochs": epochs}
    for name in ("current", "fused"):
        pair = {"pipeline": timings[name], "ceiling": timings["ceiling"]}
        result[name] = training_throughput.rates(pair, count)
    result["epoch_seconds_wall_cpu"] = timings
    return result


def report(result: dict) -> None:
    """Print the measured numbers as a Markdown table."""
    values = result["measurements"]
    rows = []
    for name, label in (("current", "today's augmentation"), ("fused", "one fused warp")):
        item = values[name]
        rows += [
            (f"{label}: pipeline images/s", item["pipeline_images_per_s"], ""),
            (f"{label}: pipeline / ceiling, wall clock", item["ratio_to_ceiling"], ">= 0.9"),
            (f"{label}: pipeline / ceiling, CPU time", item["cpu_time_ratio_to_ceiling"], ">= 0.9"),
        ]
    rows.append(("ceiling images/s", values["current"]["ceiling_images_per_s"], ""))
    hardware = result["hardware"]
    print(
        f"{hardware['cpu_count']} x {hardware['cpu_model']}, "
        f"load average {hardware['load_average_1min_at_start']} at start"
    )
    benchlib.print_rows(f"Augmentation fusion ({values['architecture']})", rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="pneumonet")
    parser.add_argument("--per-class", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    result = {"benchmark": NAME, "hardware": benchlib.hardware()}
    result["measurements"] = measure(
        args.architecture, args.per_class, args.epochs, args.batch_size
    )
    result["load_average_1min_at_end"] = benchlib.load_average_1min()
    benchlib.write_result(NAME, result)
    report(result)
    return result


if __name__ == "__main__":
    main()
