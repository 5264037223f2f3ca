"""Run every performance benchmark, write `bench/results/latest.json`, print a Markdown table.

Each benchmark runs in its own Python process (so memory figures and TensorFlow's state do not
leak from one into the next) and writes `bench/results/<name>.json`; this driver collects them.
About 5 minutes on 2 CPU cores; `./run bench` calls it.

    python bench/run_all.py                       # everything
    python bench/run_all.py --only inference      # some benchmarks only (merged into
                                                  # latest.json with the earlier results)
    python bench/run_all.py --skip dashboard_startup
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import benchlib

BENCHMARKS = (
    "training_throughput",
    "data_preparation",
    "inference",
    "streaming_memory",
    "dashboard_startup",
    "pacs",
)


def run_benchmark(name: str) -> tuple[dict | None, float]:
    """Run `bench/<name>.py` in a subprocess; its result (None if it failed) and seconds."""
    result_path = benchlib.RESULTS_DIR / f"{name}.json"
    result_path.unlink(missing_ok=True)
    print(f"\n## {name}\n", flush=True)
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(benchlib.BENCH_DIR / f"{name}.py")], cwd=benchlib.PROJECT_ROOT
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0 or not result_path.is_file():
        print(f"{name} failed with exit code {completed.returncode}", file=sys.stderr)
        return None, seconds
    return json.loads(result_path.read_text()), seconds


def status(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "MISSED")


def training_rows(result: dict) -> list[tuple]:
    rows = []
    for item in result["architectures"]:
        name = f"{item['architecture']} ({item['image_size']} px)"
        rows += [
            ("training", f"{name} through the pipeline, images/s", item["pipeline_images_per_s"]),
            ("training", f"{name} ceiling (in-memory), images/s", item["ceiling_images_per_s"]),
            (
                "training",
                f"{name} pipeline / ceiling (wall clock)",
                item["ratio_to_ceiling"],
                ">= 0.9",
                status(item["target_met"]),
            ),
            (
                "training",
                f"{name} pipeline / ceiling (CPU time per image)",
                item["cpu_time_ratio_to_ceiling"],
                ">= 0.9",
                status(item["cpu_time_ratio_to_ceiling"] >= item["target_ratio"]),
            ),
        ]
    return rows + augmentation_rows(result)


def augmentation_rows(result: dict) -> list[tuple]:
    """Augmentation CPU cost: all of it, its fused geometric warp, the 2 warps it replaced."""
    costs = result.get("augmentation_costs")
    if not costs or "geometric_one_warp_cpu_ms_per_image" not in costs:
        return []
    return [
        (
            "training",
            f"augmentation CPU ms/image ({costs['image_size']} px): all / geometric as one "
            "RandomCropThenAffine warp / as 2 warps, crop then affine (before fusion)",
            f"{costs['full_augmentation_cpu_ms_per_image']:.2f} / "
            f"{costs['geometric_one_warp_cpu_ms_per_image']:.2f} / "
            f"{costs['geometric_two_warps_cpu_ms_per_image']:.2f}",
        )
    ]


def data_rows(result: dict) -> list[tuple]:
    values = result["measurements"]
    return [
        ("data", f"load_images, {values['images']} training images, s", values["load_images_s"]),
        ("data", "first epoch (tiny model, augmented), s", values["first_epoch_s"]),
        ("data", "later epochs (median), s", values["later_epochs_median_s"]),
    ]


def inference_rows(result: dict) -> list[tuple]:
    measured, cli, met = result["in_process"], result["command_line"], result["targets"]
    dataset = measured["dataset_images"]
    rows = [
        (
            "inference",
            "single image p50, ms",
            dataset["single_image"]["p50_ms"],
            "<= 50",
            status(met["single_image_p50_le_50_ms"]),
        ),
        ("inference", "single image p95, ms", dataset["single_image"]["p95_ms"]),
        (
            "inference",
            "with Grad-CAM p50, ms",
            dataset["with_grad_cam"]["p50_ms"],
            "<= 150",
            status(met["grad_cam_p50_le_150_ms"]),
        ),
        ("inference", "with Grad-CAM p95, ms", dataset["with_grad_cam"]["p95_ms"]),
    ]
    full = measured.get("full_resolution_images")
    if full:
        rows += [
            ("inference", "full-resolution single image p50, ms", full["single_image"]["p50_ms"]),
            ("inference", "full-resolution with Grad-CAM p50, ms", full["with_grad_cam"]["p50_ms"]),
        ]
    rates = measured["throughput"]
    return rows + [
        ("inference", "Predictor on a folder, images/s", rates["predictor_images_per_s"]),
        (
            "inference",
            "Predictor on a folder / bare Keras",
            met.get("predictor_ratio_to_bare_keras"),
            ">= 1.0",
            status(met.get("predictor_ge_bare_keras")),
        ),
        ("inference", "bare model.predict, images/s", rates["bare_keras_images_per_s"]),
        (
            "inference",
            "Predictor.predict_arrays, images/s",
            rates["predictor_forward_images_per_s"],
        ),
        ("inference", "CLI start-up to first result, s", cli["first_result_s"]),
        ("inference", "CLI images/s including start-up", cli["images_per_s_including_start"]),
        (
            "inference",
            "CLI images/s excluding start-up / bare Keras",
            met["cli_ratio_to_bare_keras"],
            ">= 1.0",
            status(met.get("cli_ge_bare_keras")),
        ),
        ("inference", "CLI peak RSS, MiB", cli["peak_rss_mb"]),
    ]


def streaming_rows(result: dict) -> list[tuple]:
    small, large, check = result["n"], result["4n"], result["verdict"]
    return [
        ("streaming", f"CLI peak RSS, {small['images']:.0f} images, MiB", small["peak_rss_mb"]),
        ("streaming", f"CLI peak RSS, {large['images']:.0f} images, MiB", large["peak_rss_mb"]),
        (
            "streaming",
            "RSS growth N -> 4N, MiB",
            check["rss_growth_mb"],
            "bounded (<= 50)",
            status(check["bounded"]),
        ),
    ]


def dashboard_rows(result: dict) -> list[tuple]:
    values = result["measurements"]
    return [
        (
            "dashboard",
            "start until Home rendered, s",
            values["home_rendered_s"],
            "<= 5",
            status(values["startup_target_met"]),
        ),
        ("dashboard", "first upload until prediction shown, s", values["first_prediction_s"]),
        ("dashboard", "second upload until prediction shown, s", values["second_prediction_s"]),
    ]


def pacs_rows(result: dict) -> list[tuple]:
    values = result
    return [
        ("pacs", "pacs watch --once, images/s", values["worker_images_per_s"]),
        ("pacs", "pneumonet predict on the same files, images/s", values["cli_images_per_s"]),
        (
            "pacs",
            "worker / CLI images/s",
            values["ratio"],
            ">= 0.5",
            status(values["ratio"] >= 0.5),
        ),
        ("pacs", "STOW to SR in the PACS (polling), median s", values["latency_median_s"]),
    ]


ROWS = {
    "training_throughput": training_rows,
    "data_preparation": data_rows,
    "inference": inference_rows,
    "streaming_memory": streaming_rows,
    "dashboard_startup": dashboard_rows,
    "pacs": pacs_rows,
}


def markdown_table(results: dict) -> str:
    """One table of the headline numbers of every benchmark that ran."""
    lines = [
        "| area | metric | measured | target | status | load avg at start |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        if name not in ROWS:
            continue  # a benchmark that no longer exists, in an older latest.json
        if result is None:
            lines.append(f"| {name} | failed, see its output | | | | |")
            continue
        load = result["hardware"]["load_average_1min_at_start"]
        for row in ROWS[name](result):
            area, metric, value, target, met = (*row, "", "")[:5]
            value = benchlib.format_value(value)
            lines.append(f"| {area} | {metric} | {value} | {target} | {met} | {load} |")
    return "\n".join(lines)


DOCS_PATHS = (
    benchlib.PROJECT_ROOT / "README.md",
    benchlib.PROJECT_ROOT / "docs" / "PERFORMANCE.md",
)
DOCS_START = "<!-- bench:results:start -->"
DOCS_END = "<!-- bench:results:end -->"


def update_docs(summary: dict, table: str) -> None:
    """Replace the generated section of the README and docs/PERFORMANCE.md with this run."""
    hardware = summary["hardware"]
    load_start = hardware["load_average_1min_at_start"]
    section = (
        f"{DOCS_START}\n"
        f"Measured {summary['measured_at']} by `python bench/run_all.py` in "
        f"{summary['total_seconds']:.0f} s on {hardware['cpu_count']} x {hardware['cpu_model']} "
        f"(Python {hardware['python']}); 1-minute load average {load_start} at start and "
        f"{summary['load_average_1min_at_end']} at end.\n\n"
        f"{table}\n"
        f"{DOCS_END}"
    )
    for path in DOCS_PATHS:
        text = path.read_text()
        before, found, rest = text.partition(DOCS_START)
        _, found_end, after = rest.partition(DOCS_END)
        if not (found and found_end):
            raise SystemExit(f"{path} lacks the {DOCS_START} ... {DOCS_END} markers")
        path.write_text(before + section + after)
        print(f"Updated: {path}")


def previous_results() -> dict:
    """Results of the last `latest.json` (each carries its own time and load), if any."""
    path = benchlib.RESULTS_DIR / "latest.json"
    if not path.is_file():
        return {}
    return {
        name: result
        for name, result in json.loads(path.read_text()).get("results", {}).items()
        if result is not None
    }


def main(argv: list[str] | None = None) -> int:
    parser = benchlib.argument_parser(__doc__)
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--skip", nargs="+", choices=BENCHMARKS, default=[], help="skip these")
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="write the table into README.md and docs/PERFORMANCE.md",
    )
    args = parser.parse_args(argv)
    names = [name for name in (args.only or BENCHMARKS) if name not in args.skip]
    started = time.perf_counter()
    hardware = benchlib.hardware()
    results, durations = {}, {}
    for name in names:
        results[name], durations[name] = run_benchmark(name)
    summary = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "hardware": hardware,
        "total_seconds": time.perf_counter() - started,
        "benchmark_seconds": durations,
        "load_average_1min_at_end": benchlib.load_average_1min(),
        "results": results,
    }
    if args.only or args.skip:
        summary["results"] = {**previous_results(), **results}
    benchlib.write_result("latest", summary)
    print(
        f"\n## Summary\n\n{hardware['cpu_count']} x {hardware['cpu_model']}; load average "
        f"{hardware['load_average_1min_at_start']} at start, "
        f"{summary['load_average_1min_at_end']} at end; {summary['total_seconds']:.0f} s in all\n"
    )
    table = markdown_table(summary["results"])
    print(table)
    print(f"\nWritten: {benchlib.RESULTS_DIR / 'latest.json'}")
    if args.update_docs:
        update_docs(summary, table)
    return 0 if all(result is not None for result in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
