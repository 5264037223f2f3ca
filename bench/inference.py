"""Inference: single-image latency, Grad-CAM latency, batch and command-line throughput, memory.

Uses the shipped model `assets/model/pneumonet.keras` when present, else an untrained model of
the shipped architecture (the same compute; the output says which). Every figure is measured
warm (after a few calls), in one process, on the machine's own cores:

- single image, end to end: `Predictor.predict([path])` (decode, preprocess, predict);
  p50 and p95. Target p50 <= 50 ms.
- with Grad-CAM, as the dashboard does it: decode, preprocess, predict, `GradCam` heatmap and
  `overlay_heatmap`; p50 and p95. Target p50 <= 150 ms.
- the same two on the full-resolution sample X-rays (larger files to decode), when present.
- batch: `Predictor.predict(paths)` over a folder's files, images/s.
- bare Keras: `model.predict` on already preprocessed arrays, images/s (the ceiling the
  targets name), and the predictor's own compiled forward pass on the same arrays
  (`Predictor.predict_arrays`, which skips `model.predict`'s per-call set-up).
- command line: `pneumonet predict FOLDER --json` in a subprocess, on the same images four
  times over (2,048 files by default): time to the first result
  (process start, imports, model load, first batch), images/s with and without that start-up,
  and the process's peak RSS. Target: without start-up >= 1.0 x bare Keras, and the same for
  `Predictor.predict` on the folder (issue 18: decoding is never the bottleneck).

    python bench/inference.py [--runs 40] [--images 512] [--cli-runs 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import benchlib

NAME = "inference"
LATENCY_TARGET_MS = 50.0
GRADCAM_TARGET_MS = 150.0
CLI_TARGET_RATIO = 1.0
PREDICTOR_TARGET_RATIO = 1.0
WARM_UP_CALLS = 5


def latency_summary(durations: list[float]) -> dict:
    """p50 / p95 / mean in milliseconds."""
    milliseconds = [1000 * value for value in durations]
    return {
        "runs": len(milliseconds),
        "p50_ms": benchlib.percentile(milliseconds, 50),
        "p95_ms": benchlib.percentile(milliseconds, 95),
        "mean_ms": sum(milliseconds) / len(milliseconds),
    }


def cycle_timings(function, paths: list[str], runs: int) -> list[float]:
    """Warm up, then time `function(path)` for `runs` calls, cycling through `paths`."""
    for path in paths[:WARM_UP_CALLS]:
        function(path)
    durations = []
    for index in range(runs):
        path = paths[index % len(paths)]
        started = time.perf_counter()
        function(path)
        durations.append(time.perf_counter() - started)
    return durations


def grad_cam_function(predictor):
    """What the dashboard does per upload: decode, preprocess, predict, Grad-CAM, overlay."""
    from pneumonet_core.imaging import read_image, resize_image
    from pneumonet_core.inference import GradCam, overlay_heatmap

    grad_cam = GradCam(predictor.model, predictor.metadata.gradcam_layer)

    def explain(path: str):
        image = read_image(path)
        model_input = resize_image(image, predictor.image_size)
        predictor.predict_arrays(model_input[None])
        return overlay_heatmap(image, grad_cam(model_input))

    return explain


def latencies(predictor, paths: list[str], runs: int) -> dict:
    """Single-image and Grad-CAM latencies for a set of files."""
    explain = grad_cam_function(predictor)
    return {
        "single_image": latency_summary(
            cycle_timings(lambda path: predictor.predict([path]), paths, runs)
        ),
        "with_grad_cam": latency_summary(cycle_timings(explain, paths, runs)),
    }


def throughputs(predictor, paths: list[str], repeats: int) -> dict:
    """Images/s of `Predictor.predict` on files, bare `model.predict` and the predictor's
    forward pass on arrays; the three alternate, so a change in machine load hits all alike."""
    import numpy as np

    arrays = np.stack([predictor.preprocess(path) for path in paths])
    contenders = {
        "predictor_images_per_s": lambda: predictor.predict(paths),
        "bare_keras_images_per_s": lambda: predictor.model.predict(
            arrays, batch_size=32, verbose=0
        ),
        "predictor_forward_images_per_s": lambda: predictor.predict_arrays(arrays),
    }
    for function in contenders.values():
        function()
    durations = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, function in contenders.items():
            durations[name] += benchlib.time_runs(function, 1)
    rates = {name: len(paths) / benchlib.median(values) for name, values in durations.items()}
    return {"images": len(paths), "repeats": repeats, **rates}


def full_resolution_samples() -> list[str]:
    """The original full-resolution X-rays next to the dataset, if that folder exists."""
    folder = benchlib.data_root().parent / "fullres-samples"
    return sorted(str(path) for path in folder.glob("*/*.jpeg"))


def in_process(model_path: Path, paths: list[str], runs: int, repeats: int) -> dict:
    """Everything measured inside this process with one loaded `Predictor`."""
    from pneumonet_core.inference import Predictor

    started = time.perf_counter()
    predictor = Predictor(model_path)
    result = {"predictor_load_s": time.perf_counter() - started}
    result["dataset_images"] = latencies(predictor, paths, runs)
    samples = full_resolution_samples()
    if samples:
        result["full_resolution_images"] = latencies(predictor, samples, runs // 2)
        result["full_resolution_images"]["files"] = len(samples)
    result["throughput"] = throughputs(predictor, paths, repeats)
    result["in_process_peak_rss_mb"] = benchlib.peak_rss_mb()
    return result


def command_line(model_path: Path, paths: list[str], runs: int, repeat: int = 4) -> dict:
    """`pneumonet predict FOLDER --json` timings, medians over `runs` subprocess runs, on a
    folder holding every path `repeat` times (so start-up and warm-up are a small share)."""
    folder = benchlib.image_folder(paths * repeat, f"predict_{len(paths) * repeat}")
    measured = [benchlib.run_cli_predict(folder, model_path) for _ in range(runs)]
    keys = [key for key, value in measured[0].items() if isinstance(value, int | float)]
    summary = {
        key: benchlib.median([run[key] for run in measured if run[key] is not None]) for key in keys
    }
    summary["runs"] = measured
    return summary


def targets(result: dict) -> dict:
    """Which targets were met."""
    dataset = result["in_process"]["dataset_images"]
    bare = result["in_process"]["throughput"]["bare_keras_images_per_s"]
    cli_rate = result["command_line"]["images_per_s_excluding_start"]
    predictor_rate = result["in_process"]["throughput"]["predictor_images_per_s"]
    return {
        "predictor_ratio_to_bare_keras": predictor_rate / bare,
        "predictor_ge_bare_keras": predictor_rate / bare >= PREDICTOR_TARGET_RATIO,
        "single_image_p50_le_50_ms": dataset["single_image"]["p50_ms"] <= LATENCY_TARGET_MS,
        "grad_cam_p50_le_150_ms": dataset["with_grad_cam"]["p50_ms"] <= GRADCAM_TARGET_MS,
        "cli_ratio_to_bare_keras": cli_rate / bare,
        "cli_ge_bare_keras": cli_rate / bare >= CLI_TARGET_RATIO,
    }


def latency_rows(label: str, values: dict) -> list[tuple[str, object, str]]:
    single, explained = values["single_image"], values["with_grad_cam"]
    return [
        (
            f"single image p50 / p95 ({label}), ms",
            f"{single['p50_ms']:.1f} / {single['p95_ms']:.1f}",
            f"target p50 <= {LATENCY_TARGET_MS:.0f}",
        ),
        (
            f"with Grad-CAM p50 / p95 ({label}), ms",
            f"{explained['p50_ms']:.1f} / {explained['p95_ms']:.1f}",
            f"target p50 <= {GRADCAM_TARGET_MS:.0f}",
        ),
    ]


def table(result: dict) -> benchlib.Table:
    """The measured numbers as a Markdown table."""
    measured = result["in_process"]
    rates = measured["throughput"]
    cli = result["command_line"]
    met = result["targets"]
    rows = latency_rows("dataset images", measured["dataset_images"])
    if "full_resolution_images" in measured:
        rows += latency_rows("full resolution", measured["full_resolution_images"])
    rows += [
        (
            "Predictor.predict on a folder, images/s",
            rates["predictor_images_per_s"],
            f"{met['predictor_ratio_to_bare_keras']:.2f} x bare Keras; "
            f"target >= {PREDICTOR_TARGET_RATIO}",
        ),
        ("bare model.predict on arrays, images/s", rates["bare_keras_images_per_s"], "ceiling"),
        (
            "Predictor.predict_arrays on arrays, images/s",
            rates["predictor_forward_images_per_s"],
            "compiled forward pass, no model.predict overhead",
        ),
        ("CLI time to first result, s", cli["first_result_s"], "process start + model load"),
        ("CLI images/s including start-up", cli["images_per_s_including_start"], ""),
        (
            "CLI images/s excluding start-up",
            cli["images_per_s_excluding_start"],
            f"{met['cli_ratio_to_bare_keras']:.2f} x bare Keras; target >= {CLI_TARGET_RATIO}",
        ),
        ("CLI peak RSS, MiB", cli["peak_rss_mb"], f"{cli['images']:.0f} images"),
    ]
    return benchlib.Table("Inference", rows, notes=[f"Model: {result['model_note']}"])


def arguments() -> argparse.ArgumentParser:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--runs", type=int, default=40, help="latency samples")
    parser.add_argument("--images", type=int, default=512, help="images for throughput")
    parser.add_argument("--repeats", type=int, default=5, help="throughput runs")
    parser.add_argument("--cli-runs", type=int, default=3, help="command-line runs")
    return parser


@benchlib.benchmark(NAME, arguments=arguments, table=table)
def main(args: argparse.Namespace) -> dict:
    result = {}
    model_path, result["model_note"] = benchlib.benchmark_model_path()
    result["model_path"] = str(model_path)
    frame = benchlib.sample_training_images(args.images // 2)
    paths = [str(path) for path in frame["path"]]
    result["in_process"] = in_process(model_path, paths, args.runs, args.repeats)
    result["command_line"] = command_line(model_path, paths, args.cli_runs)
    result["targets"] = targets(result)
    return result


if __name__ == "__main__":
    main()
