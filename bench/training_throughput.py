"""Training throughput: the project's input pipeline against the model's own ceiling.

For each architecture (the original `seed` CNN and the shipped `pneumonet`, default sizes) it
measures training images/second three ways, each after a warm-up epoch, as the median of
several epochs:

- pipeline: `load_images` + `make_dataset(training=True, augmentation=...)` with class weights,
  exactly as `pneumonet_core.training.trainer` feeds `model.fit`;
- ceiling: the same model fed one pre-materialised, already augmented batch repeated (no
  decoding, shuffling or augmentation left to do), the most the model can take;
- pipeline alone: iterating the dataset without a model (how fast decoding is not needed
  because images are decoded once, and how fast augmentation produces batches).

Pipeline and ceiling epochs alternate, so a change in machine load hits both alike. Besides
wall-clock images/s it records this process's CPU milliseconds per image, which other processes
on a shared machine hardly disturb. Target: pipeline >= 0.9 x ceiling.

    python bench/training_throughput.py [--per-class 128] [--epochs 3]
"""

from __future__ import annotations

import argparse
import time

import benchlib

NAME = "training_throughput"
ARCHITECTURES = ("seed", "pneumonet")
TARGET_RATIO = 0.9


def compile_like_training(model) -> None:
    """Adam + binary cross-entropy + the metrics `pneumonet_core.training.trainer` tracks."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
        ],
    )


def epoch_clock():
    """A Keras callback measuring each epoch's wall-clock and CPU seconds (`.timings`).

    Timing from epoch begin to epoch end leaves out `fit`'s own set-up, which a real training
    run pays once, not per epoch; it keeps the per-epoch cost of starting the data iterator.
    """
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.timings: list[tuple[float, float]] = []
            self._started = (0.0, 0.0)

        def on_epoch_begin(self, epoch, logs=None):
            self._started = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            wall, cpu = self._started
            self.timings.append((time.perf_counter() - wall, time.process_time() - cpu))

    return EpochClock()


def timed_epoch(model, dataset, class_weight=None) -> tuple[float, float]:
    """Train one epoch; return (wall-clock seconds, CPU seconds of this process)."""
    clock = epoch_clock()
    model.fit(dataset, epochs=1, class_weight=class_weight, callbacks=[clock], verbose=0)
    return clock.timings[0]


def interleaved_epochs(model, feeds: dict, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Warm every feed up once, then alternate one timed epoch of each feed `rounds` times.

    Alternating the feeds spreads any change in machine load evenly over them.

    Args:
        model: A compiled model.
        feeds: name -> (dataset, class_weight or None).
        rounds: Timed epochs per feed.
    """
    for dataset, class_weight in feeds.values():
        timed_epoch(model, dataset, class_weight)
    timings = {name: [] for name in feeds}
    for _ in range(rounds):
        for name, (dataset, class_weight) in feeds.items():
            timings[name].append(timed_epoch(model, dataset, class_weight))
    return timings


def materialised_dataset(pipeline, steps: int, weights: dict[int, float]):
    """One augmented batch from the pipeline, with its sample weights, repeated `steps` times."""
    import numpy as np
    import tensorflow as tf

    images, labels = next(iter(pipeline))
    label_values = labels.numpy().reshape(-1).astype(int)
    sample_weights = np.array([weights[value] for value in label_values], dtype=np.float32)
    batch = (images, labels, tf.constant(sample_weights))
    return tf.data.Dataset.from_tensors(batch).repeat(steps).cache()


def pipeline_alone_seconds(pipeline, epochs: int) -> list[float]:
    """Seconds to iterate every batch of the pipeline (no model), after one warm-up pass."""

    def one_pass():
        for _ in pipeline:
            pass

    one_pass()
    return benchlib.time_runs(one_pass, epochs)


def measure_architecture(architecture: str, per_class: int, epochs: int, batch_size: int) -> dict:
    """Images/second through the pipeline and at the ceiling, for one architecture."""
    import keras

    from pneumonet_core.data import (
        AugmentationConfig,
        build_augmentation,
        class_weights,
        load_images,
        make_dataset,
    )
    from pneumonet_core.models import build_model, default_image_size

    keras.utils.set_random_seed(42)
    image_size = default_image_size(architecture)
    frame = benchlib.sample_training_images(per_class)
    started = time.perf_counter()
    images = load_images(frame["path"], image_size).images
    load_seconds = time.perf_counter() - started
    labels = frame["label_index"].to_numpy()
    count = len(images) - len(images) % batch_size
    images, labels = images[:count], labels[:count]
    weights = class_weights(labels)
    augmentation = build_augmentation(AugmentationConfig(), seed=42)
    pipeline = make_dataset(
        images, labels, batch_size=batch_size, training=True, augmentation=augmentation
    )
    steps = count // batch_size
    model = build_model(architecture)
    compile_like_training(model)
    feeds = {
        "pipeline": (pipeline, weights),
        "ceiling": (materialised_dataset(pipeline, steps, weights), None),
    }
    timings = interleaved_epochs(model, feeds, epochs)
    alone_epochs = pipeline_alone_seconds(pipeline, epochs)
    result = {
        "architecture": architecture,
        "image_size": image_size,
        "images": count,
        "batch_size": batch_size,
        "steps_per_epoch": steps,
        "timed_epochs": epochs,
        "load_images_s": load_seconds,
        "pipeline_alone_images_per_s": count / benchlib.median(alone_epochs),
        "epoch_seconds_wall_cpu": timings,
    }
    result.update(rates(timings, count))
    return result


def rates(timings: dict[str, list[tuple[float, float]]], images: int) -> dict:
    """Images/s (wall clock), CPU ms per image, and the pipeline-to-ceiling ratios."""
    values = {}
    for name, pairs in timings.items():
        values[f"{name}_images_per_s"] = images / benchlib.median([wall for wall, _ in pairs])
        values[f"{name}_cpu_ms_per_image"] = (
            1000 * benchlib.median([cpu for _, cpu in pairs]) / images
        )
    ratio = values["pipeline_images_per_s"] / values["ceiling_images_per_s"]
    cpu_ratio = values["ceiling_cpu_ms_per_image"] / values["pipeline_cpu_ms_per_image"]
    values.update(
        {
            "ratio_to_ceiling": ratio,
            "cpu_time_ratio_to_ceiling": cpu_ratio,
            "target_ratio": TARGET_RATIO,
            "target_met": ratio >= TARGET_RATIO,
        }
    )
    return values


def augmentation_costs(image_size: int, batch_size: int, batches: int = 10) -> dict:
    """CPU milliseconds per image of the training augmentation, and of its geometric part.

    The geometric part (random resized crop, rotation, zoom, shift) is measured as shipped
    (one `RandomCropThenAffine` warp) and as the two warps it replaced (`RandomResizedCrop`,
    then `RandomAffine`).
    """
    import keras
    import tensorflow as tf

    from pneumonet_core.data import AugmentationConfig, build_augmentation

    images = tf.random.uniform((batch_size, image_size, image_size, 1), seed=1)
    config = AugmentationConfig()
    full = build_augmentation(config, seed=42)
    only_geometry = dict(horizontal_flip=False, contrast=0.0, brightness=0.0, gamma=0.0)
    only_geometry.update(blur=0.0, noise=0.0, downscale=1.0)
    fused = build_augmentation(AugmentationConfig(**only_geometry), seed=42)
    warp = fused.layers[0]  # the RandomCropThenAffine; its two parts, one after the other:
    two_warps = keras.Sequential([warp.crop, warp.affine])
    candidates = {
        "full_augmentation": tf.function(lambda x: full(x, training=True)),
        "geometric_one_warp": tf.function(lambda x: fused(x, training=True)),
        "geometric_two_warps": tf.function(lambda x: two_warps(x, training=True)),
    }
    costs = {"image_size": image_size}
    for name, function in candidates.items():
        costs[f"{name}_cpu_ms_per_image"] = cpu_ms_per_image(function, images, batches)
    costs["per_layer_cpu_ms_per_image"] = {
        layer.name: cpu_ms_per_image(
            tf.function(lambda x, layer=layer: layer(x, training=True)), images, batches
        )
        for layer in full.layers
    }
    return costs


def cpu_ms_per_image(function, images, batches: int) -> float:
    """CPU milliseconds per image of `function(images)`, after one warm-up call."""
    function(images)
    started = time.process_time()
    for _ in range(batches):
        function(images)
    return 1000 * (time.process_time() - started) / (batches * len(images))


def threading_settings() -> dict:
    """TensorFlow's thread pools as configured (0 = one thread per core)."""
    import tensorflow as tf

    return {
        "tensorflow": tf.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def table(result: dict) -> benchlib.Table:
    """The measured numbers as a Markdown table."""
    rows = []
    for item in result["architectures"]:
        name = f"{item['architecture']} ({item['image_size']} px)"
        rows += [
            (f"{name} pipeline, images/s", item["pipeline_images_per_s"], "train.py's feed"),
            (f"{name} ceiling, images/s", item["ceiling_images_per_s"], "pre-materialised batch"),
            (
                f"{name} pipeline / ceiling",
                item["ratio_to_ceiling"],
                f"target >= {TARGET_RATIO}: {'met' if item['target_met'] else 'MISSED'}",
            ),
            (
                f"{name} CPU ms/image, pipeline vs ceiling",
                f"{item['pipeline_cpu_ms_per_image']:.2f} vs "
                f"{item['ceiling_cpu_ms_per_image']:.2f}",
                f"ratio {item['cpu_time_ratio_to_ceiling']:.2f} (independent of other load)",
            ),
            (f"{name} pipeline alone, images/s", item["pipeline_alone_images_per_s"], "no model"),
        ]
    costs = result["augmentation_costs"]
    size = costs["image_size"]
    rows += [
        (f"augmentation CPU ms/image ({size} px)", costs["full_augmentation_cpu_ms_per_image"], ""),
        (
            "  of which crop + rotation + zoom + shift (one RandomCropThenAffine warp)",
            costs["geometric_one_warp_cpu_ms_per_image"],
            "as shipped",
        ),
        (
            "  the same as two warps (RandomResizedCrop, then RandomAffine)",
            costs["geometric_two_warps_cpu_ms_per_image"],
            "before fusion",
        ),
    ]
    rows += [
        (f"  {name}", value, "per layer")
        for name, value in costs.get("per_layer_cpu_ms_per_image", {}).items()
    ]
    return benchlib.Table("Training throughput", rows)


def arguments() -> argparse.ArgumentParser:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--per-class", type=int, default=128, help="images per class")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after a warm-up)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--architectures", nargs="+", default=list(ARCHITECTURES))
    return parser


@benchlib.benchmark(NAME, arguments=arguments, table=table)
def main(args: argparse.Namespace) -> dict:
    result = {"threads": threading_settings()}
    result["architectures"] = [
        measure_architecture(name, args.per_class, args.epochs, args.batch_size)
        for name in args.architectures
    ]
    sizes = {item["architecture"]: item["image_size"] for item in result["architectures"]}
    shipped_size = sizes.get("pneumonet", max(sizes.values()))  # the shipped architecture's
    result["augmentation_costs"] = augmentation_costs(shipped_size, args.batch_size)
    return result


if __name__ == "__main__":
    main()
