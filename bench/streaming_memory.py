"""Streaming batch prediction: memory stays bounded as the folder grows, and progress shows.

Runs `pneumonet predict FOLDER --json` on N and on 4N images (alternating, several runs each)
and compares the process's peak RSS (from `os.wait4`, the child's own figure). If predictions
streamed batch by batch, 4N images need about the memory of N; if the command held every
image, RSS would grow by the 3N extra decoded images (at least). It also checks that
results stream (the first result comes as early for 4N images as for N) and that the progress
bar reports on stderr.

    python bench/streaming_memory.py [--images 256] [--runs 2]
"""

from __future__ import annotations

import argparse

import benchlib

NAME = "streaming_memory"
GROWTH_LIMIT_MB = 50.0


def measure(model_path, paths: list[str], images: int, runs: int) -> dict:
    """Median CLI figures for N and 4N images."""
    folders = {
        "n": benchlib.image_folder(paths[:images], f"stream_{images}"),
        "4n": benchlib.image_folder(paths[: 4 * images], f"stream_{4 * images}"),
    }
    measured = {name: [] for name in folders}
    for _ in range(runs):
        for name, folder in folders.items():
            measured[name].append(benchlib.run_cli_predict(folder, model_path))
    return {name: summarise(items) for name, items in measured.items()}


def summarise(runs: list[dict]) -> dict:
    """Medians of the numeric fields over runs, plus the runs themselves."""
    keys = ("images", "peak_rss_mb", "first_result_s", "last_result_s", "progress_updates")
    summary = {key: benchlib.median([run[key] for run in runs]) for key in keys}
    summary["images_per_s_excluding_start"] = benchlib.median(
        [run["images_per_s_excluding_start"] for run in runs]
    )
    summary["runs"] = runs
    return summary


def decoded_megabytes(image_size: int, images: int) -> float:
    """Memory that `images` decoded float32 model inputs would take."""
    return images * image_size * image_size * 4 / 2**20


def verdict(result: dict, image_size: int) -> dict:
    """RSS growth from N to 4N against what holding every image would have cost."""
    small, large = result["n"], result["4n"]
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    extra_images = large["images"] - small["images"]
    return {
        "rss_growth_mb": growth,
        "growth_if_images_were_held_mb": decoded_megabytes(image_size, int(extra_images)),
        "bounded": growth <= GROWTH_LIMIT_MB,
        "results_stream": large["first_result_s"]
        <= small["first_result_s"] + 0.25 * (large["last_result_s"] - large["first_result_s"]),
        "progress_reported": large["progress_updates"] > 0,
    }


def table(result: dict) -> benchlib.Table:
    """The measured numbers as a Markdown table."""
    small, large, check = result["n"], result["4n"], result["verdict"]
    rows = [
        (f"peak RSS, {small['images']:.0f} images, MiB", small["peak_rss_mb"], ""),
        (f"peak RSS, {large['images']:.0f} images, MiB", large["peak_rss_mb"], ""),
        (
            "RSS growth N -> 4N, MiB",
            check["rss_growth_mb"],
            f"holding the images would add {check['growth_if_images_were_held_mb']:.0f}; "
            f"bounded: {check['bounded']}",
        ),
        (
            "first result N / 4N; last result 4N, s",
            f"{small['first_result_s']:.1f} / {large['first_result_s']:.1f}; "
            f"{large['last_result_s']:.1f}",
            f"first result independent of folder size: {check['results_stream']}",
        ),
        (
            "progress-bar updates on stderr (4N)",
            large["progress_updates"],
            f"progress shown: {check['progress_reported']}",
        ),
    ]
    return benchlib.Table("Streaming batch prediction", rows)


def arguments() -> argparse.ArgumentParser:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--images", type=int, default=256, help="N (the large run uses 4N)")
    parser.add_argument("--runs", type=int, default=2, help="runs of each size")
    return parser


@benchlib.benchmark(NAME, arguments=arguments, table=table)
def main(args: argparse.Namespace) -> dict:
    from pneumonet_core.models import read_metadata

    result = {}
    model_path, result["model_note"] = benchlib.benchmark_model_path()
    frame = benchlib.training_frame().sample(frac=1.0, random_state=0)
    paths = [str(path) for path in frame["path"][: 4 * args.images]]
    result.update(measure(model_path, paths, args.images, args.runs))
    result["verdict"] = verdict(result, read_metadata(model_path).image_size)
    return result


if __name__ == "__main__":
    main()
