"""Shared helpers for the performance benchmarks in `bench/`.

Every benchmark records the hardware it ran on (CPU count, CPU model, the 1-minute load average
at start, so contention from other processes is visible), reports medians of several runs, and
writes its numbers to `bench/results/<name>.json` for `bench/run_all.py` to collect.

A benchmark is its measurement only; `benchmark` wraps it in the common skeleton:

    def arguments() -> argparse.ArgumentParser:
        parser = benchlib.argument_parser(__doc__)
        parser.add_argument("--runs", type=int, default=3)
        return parser

    def table(result: dict) -> benchlib.Table:
        return benchlib.Table("Title", [("metric", result["value"], "target / note")])

    @benchlib.benchmark("name", arguments=arguments, table=table)
    def main(args: argparse.Namespace) -> dict:
        return {"value": ...}          # the measured numbers

    if __name__ == "__main__":
        main()                          # parses sys.argv

The scripts run from the project root (`python bench/<name>.py`, `./run bench`) with the
project installed in the environment (`pip install -e .`): `pneumonet_core`, `dashboard` and
the browser-driving helpers `pneumonet_testing` import as installed packages, and the scripts
import each other (`benchlib`, `generalization`) from their own folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
WORK_DIR = RESULTS_DIR / "work"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@dataclasses.dataclass
class Table:
    """What a benchmark prints after its run: a Markdown table (`print_rows`) under a title.

    Attributes:
        title: The table's heading.
        rows: `(metric, value, target / note)` rows.
        notes: Lines printed before the table (after the hardware line).
    """

    title: str
    rows: list[tuple[str, object, str]]
    notes: list[str] = dataclasses.field(default_factory=list)


def argument_parser(doc: str | None) -> argparse.ArgumentParser:
    """A script's argument parser, described by the first line of its docstring."""
    return argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])


def run_benchmark(
    name: str,
    measure: Callable[[argparse.Namespace], dict],
    *,
    arguments: Callable[[], argparse.ArgumentParser],
    table: Callable[[dict], Table],
    argv: Sequence[str] | None = None,
) -> dict:
    """The skeleton every benchmark runs in.

    Parses the arguments, notes the hardware (and the load at the start), runs `measure`, adds
    the load at the end, writes `bench/results/<name>.json`, then prints the hardware line and
    the benchmark's table.

    Args:
        name: The benchmark's name, also its result file's.
        measure: Takes the parsed arguments, returns the measured numbers.
        arguments: Builds the argument parser.
        table: Turns the result into the table printed at the end.
        argv: The arguments; `sys.argv[1:]` when None.

    Returns:
        The result as written: `{"benchmark", "hardware", **measured,
        "load_average_1min_at_end"}`.
    """
    args = arguments().parse_args(argv)
    result = {"benchmark": name, "hardware": hardware()}
    started = time.perf_counter()
    result.update(measure(args))
    seconds = time.perf_counter() - started
    result["load_average_1min_at_end"] = load_average_1min()
    path = write_result(name, result)
    print_hardware(result["hardware"])
    printed = table(result)
    for line in printed.notes:
        print(line)
    print_rows(printed.title, printed.rows)
    print(f"\nMeasured in {seconds:.0f} s; written: {path}")
    return result


def benchmark(
    name: str,
    *,
    arguments: Callable[[], argparse.ArgumentParser],
    table: Callable[[dict], Table],
) -> Callable[[Callable[[argparse.Namespace], dict]], Callable[..., dict]]:
    """Decorate a benchmark's measurement into its `main(argv=None)` (see `run_benchmark`)."""

    def decorate(measure: Callable[[argparse.Namespace], dict]) -> Callable[..., dict]:
        @functools.wraps(measure)
        def main(argv: Sequence[str] | None = None) -> dict:
            return run_benchmark(name, measure, arguments=arguments, table=table, argv=argv)

        return main

    return decorate


def print_hardware(hardware: dict) -> None:
    """One line: the CPUs and the load at the start."""
    print(
        f"{hardware['cpu_count']} x {hardware['cpu_model']}, "
        f"load average {hardware['load_average_1min_at_start']} at start"
    )


def cpu_model_name() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average_1min() -> float | None:
    """The 1-minute load average (processes wanting a CPU), None where unsupported."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def hardware() -> dict:
    """What the numbers were measured on, including how busy the machine was at the start."""
    from datetime import UTC, datetime

    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model_name(),
        "load_average_1min_at_start": load_average_1min(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return float(statistics.median(values))


def percentile(values: list[float], percent: float) -> float:
    """The `percent`-th percentile (linear interpolation between closest ranks)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * percent / 100.0
    lower = int(rank)
    upper = min(lower + 1, len(ordered) - 1)
    return float(ordered[lower] + (ordered[upper] - ordered[lower]) * (rank - lower))


def time_runs(function: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of `repeats` calls of `function`."""
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return durations


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def data_root() -> Path:
    """The dataset root (`PNEUMONET_DATA` or the project's default)."""
    from pneumonet_core.utils import config

    return config.data_root()


def training_frame():
    """Rows of the `train/` split (path, label_index, ...); fails clearly when data is absent."""
    from pneumonet_core.data import scan_dataset

    frame = scan_dataset(data_root()).split("train")
    if frame.empty:
        raise SystemExit(f"no train/ images under {data_root()}; set PNEUMONET_DATA")
    return frame


def sample_training_images(per_class: int, seed: int = 0):
    """A reproducible, class-balanced sample of `train/` rows."""
    from pneumonet_core.data import stratified_subset

    return stratified_subset(training_frame(), per_class=per_class, seed=seed)


def benchmark_model_path() -> tuple[Path, str]:
    """The shipped model, or else an untrained model of the shipped architecture.

    An untrained `pneumonet` model has exactly the shipped model's compute, so latency,
    throughput and memory are the same; only its predictions are meaningless.

    Returns:
        `(path, note)`: the model file and a sentence saying which model it is.
    """
    from pneumonet_core.utils import config

    shipped = config.shipped_model_path()
    if shipped.is_file():
        return shipped, f"shipped model {shipped.relative_to(PROJECT_ROOT)}"
    path = WORK_DIR / "untrained_pneumonet.keras"
    if not path.is_file():
        _save_untrained_model(path, "pneumonet")
    return path, (
        "assets/model/pneumonet.keras is absent: an untrained model of the shipped architecture "
        "(pneumonet, default size; same compute) was built and saved instead"
    )


def _save_untrained_model(path: Path, architecture: str) -> None:
    from pneumonet_core.models import ModelMetadata, build_model, default_image_size, save_model

    model = build_model(architecture)
    metadata = ModelMetadata(
        architecture=architecture,
        image_size=default_image_size(architecture),
        name=f"untrained-{architecture}-benchmark",
    )
    save_model(model, path, metadata)


def write_result(name: str, result: dict) -> Path:
    """Write one benchmark's result to `bench/results/<name>.json`."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def print_rows(title: str, rows: list[tuple[str, object, str]]) -> None:
    """Print `(metric, value, target/comment)` rows as a small Markdown table."""
    print(f"\n### {title}\n")
    print("| metric | value | target / note |")
    print("|---|---|---|")
    for metric, value, note in rows:
        print(f"| {metric} | {format_value(value)} | {note} |")


def format_value(value: object) -> str:
    """Numbers with sensible precision; anything else as text."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def image_folder(paths: list[str], name: str) -> Path:
    """A fresh folder under `bench/results/work/` holding symbolic links to `paths`."""
    import shutil

    folder = WORK_DIR / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for index, path in enumerate(paths):
        (folder / f"{index:06d}_{Path(path).name}").symlink_to(Path(path).resolve())
    return folder


def pneumonet_command() -> list[str]:
    """The `pneumonet` command installed next to this Python, else `python -m ...cli`."""
    script = Path(sys.executable).with_name("pneumonet")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "pneumonet_core.cli"]


# Runs a command and reports its peak RSS. Measuring through this small launcher keeps the
# figure clean: a child forked straight from a benchmark that holds TensorFlow would count the
# parent's pages it shares until exec, inflating its peak RSS by the parent's size.
RSS_LAUNCHER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[1:])
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(f"\\nPEAK_RSS_KIB {peak}\\n")
sys.exit(code)
"""


def run_cli_predict(folder: Path, model_path: Path, batch_size: int = 32) -> dict:
    """Run `pneumonet predict FOLDER --json` and time it line by line.

    Every JSON line is stamped when it arrives, so the run splits into start-up (process start,
    imports, model load, first batch: until the first result) and steady streaming. The
    command's own peak RSS comes from a small launcher process (`RSS_LAUNCHER`), whose start
    (a bare Python, a few tens of milliseconds) is included in the start-up.

    Returns:
        Seconds to the first and the last result and to exit, the results counted, images/s
        with and without start-up, peak RSS in MiB, and how many progress-bar updates the
        command wrote to stderr.
    """
    import subprocess

    command = [*pneumonet_command(), "predict", str(folder), "--json"]
    command += ["--model", str(model_path), "--batch-size", str(batch_size)]
    stderr_path = WORK_DIR / "cli_stderr.txt"
    with stderr_path.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", RSS_LAUNCHER, *command], stdout=subprocess.PIPE, stderr=stderr
        )
        stamps = [time.perf_counter() - started for line in process.stdout if line.strip()]
        process.wait()
        exited = time.perf_counter() - started
    errors = stderr_path.read_text(errors="replace")
    if process.returncode not in (0, 1) or not stamps:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {errors[-2000:]}")
    peak_kib = int(errors.rsplit("PEAK_RSS_KIB", 1)[1].split()[0])
    return _cli_timings(stamps, exited, batch_size, peak_kib / 1024.0, errors)


def _cli_timings(
    stamps: list[float], exited: float, batch_size: int, peak_rss: float, errors: str
) -> dict:
    streamed = len(stamps) - min(batch_size, len(stamps))
    streaming_seconds = stamps[-1] - stamps[0]
    return {
        "images": len(stamps),
        "first_result_s": stamps[0],
        "last_result_s": stamps[-1],
        "exit_s": exited,
        "images_per_s_including_start": len(stamps) / exited,
        "images_per_s_excluding_start": (
            streamed / streaming_seconds if streaming_seconds > 0 else None
        ),
        "peak_rss_mb": peak_rss,
        "progress_updates": errors.count("image/s") + errors.count("s/image"),
    }


def metrics_with_intervals(y_true, y_score, threshold: float) -> dict:
    """Headline metrics at a threshold, with 95% bootstrap intervals (1,000 resamples)."""
    from pneumonet_core.metrics import classification as evaluate

    metrics = evaluate.binary_metrics(y_true, y_score, threshold=threshold)
    metric_functions = {
        "accuracy": lambda t, s: evaluate.binary_metrics(t, s, threshold=threshold)["accuracy"],
        "roc_auc": evaluate.roc_auc,
        "sensitivity": lambda t, s: evaluate.binary_metrics(t, s, threshold=threshold)[
            "sensitivity"
        ],
        "specificity": lambda t, s: evaluate.binary_metrics(t, s, threshold=threshold)[
            "specificity"
        ],
        "f1": lambda t, s: evaluate.binary_metrics(t, s, threshold=threshold)["f1"],
    }
    result = {}
    for name in ("accuracy", "roc_auc", "sensitivity", "specificity", "f1"):
        low, high = evaluate.bootstrap_interval(
            y_true, y_score, metric_functions[name], n_resamples=1000
        )
        result[name] = {"value": metrics[name], "ci_low": low, "ci_high": high}
    for name in ("pr_auc", "precision", "loss"):
        result[name] = metrics[name]
    result["brier"] = evaluate.brier_score(y_true, y_score)
    result["ece"] = evaluate.expected_calibration_error(y_true, y_score)
    result["n"] = metrics["n"]
    result["confusion_matrix"] = metrics["confusion_matrix"]
    return result
