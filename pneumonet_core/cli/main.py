"""The `pneumonet` command line: data check, train, evaluate, predict, model, audit.

Errors are printed as one line on stderr (exit status 2), never as a traceback. Predictions
and training runs are recorded in the audit trail (`audit`); a failed audit write is reported
on one line on stderr and never loses a prediction.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from pneumonet_core import INTENDED_USE
from pneumonet_core.cli import admin as admin_cli
from pneumonet_core.cli import model_checks, pacs_commands
from pneumonet_core.cli.admin import report_audit_failure
from pneumonet_core.cli.common import data_dir, default_evaluation_folder, json_safe
from pneumonet_core.cli.settings_options import (
    SettingsHelpFormatter,
    add_setting_options,
    config_from_args,
)
from pneumonet_core.data.augment import AugmentationConfig
from pneumonet_core.governance import audit
from pneumonet_core.utils import config
from pneumonet_core.utils.settings import settings_of

EXIT_ERROR = 2
# The command line reports failed audit writes itself, in one line (`report_audit_failure`).
logging.getLogger(audit.__name__).addHandler(logging.NullHandler())


def cmd_data_check(args) -> int:
    from pneumonet_core.data import scan_dataset

    scan = scan_dataset(data_dir(args.dir))
    print(f"Dataset: {scan.root}")
    if scan.frame.empty:
        print("No images found.")
    else:
        print(scan.counts().to_string())
    if args.verify:
        scan.problems += _unreadable_images(scan.frame["path"])
    if scan.problems:
        print(f"\n{len(scan.problems)} problem(s):")
        for problem in scan.problems:
            print(f"  - {problem}")
        return 1
    print("\nNo problems found.")
    return 0


def _unreadable_images(paths) -> list[str]:
    from pneumonet_core.imaging import ImageReadError, read_image

    problems = []
    for path in paths:
        try:
            read_image(path)
        except ImageReadError as error:
            problems.append(f"unreadable image: {error}")
    return problems


def cmd_train(args) -> int:
    from pneumonet_core.training.trainer import TrainConfig

    train_config = config_from_args(TrainConfig, args, data_dir=str(data_dir(args.dir)))
    result = admin_cli.audited_train(train_config, verbose=1 if sys.stdout.isatty() else 2)
    metrics = result.val_metrics
    print(
        f"\nBest epoch {result.best_epoch} of {result.epochs_run}"
        f"{' (stopped early on request)' if result.stopped_by_user else ''}; "
        f"threshold {result.threshold:.3f} ({train_config.threshold_policy})"
    )
    print(
        f"Validation: accuracy {metrics['accuracy']:.4f}, ROC-AUC {metrics['roc_auc']:.4f}, "
        f"sensitivity {metrics['sensitivity']:.4f}, specificity {metrics['specificity']:.4f}"
    )
    print(f"Model written to {result.model_path}")
    print(f"Run {result.run_id} recorded in {config.tracking_uri()}")
    return 0


def _predictor(model_path: str | None):
    """The named model file, else the active model (`registry.active_predictor`)."""
    from pneumonet_core.governance import registry
    from pneumonet_core.inference.predict import Predictor

    return Predictor(model_path) if model_path else registry.active_predictor()


def cmd_evaluate(args) -> int:
    from pneumonet_core.data import DatasetError, scan_dataset
    from pneumonet_core.metrics import classification as evaluate

    folder = Path(args.dir) if args.dir else default_evaluation_folder()
    scan = scan_dataset(folder)
    if scan.frame.empty:
        raise DatasetError(f"{folder} holds no images in NORMAL/ and PNEUMONIA/")
    frame = scan.frame if args.dir else scan.frame
    predictor = _predictor(args.model)
    predictions = predictor.predict(list(frame["path"]), batch_size=args.batch_size)
    readable = [p.error is None for p in predictions]
    y_true = frame["label_index"].to_numpy()[readable]
    y_score = [p.probability for p in predictions if p.error is None]
    threshold = predictor.threshold if args.threshold is None else args.threshold
    metrics = evaluate.binary_metrics(y_true, y_score, threshold=threshold)
    metrics["unreadable"] = [p.error for p in predictions if p.error is not None]
    if args.json:
        print(json.dumps(json_safe(metrics)))
    else:
        _print_metrics(folder, f"{predictor.path} ({predictor.model_label})", metrics)
    return 0


PRINTED_METRICS = "accuracy loss roc_auc pr_auc sensitivity specificity precision f1".split()  # noqa: SIM905


def _print_metrics(folder: Path, model: str, metrics: dict) -> None:
    matrix = metrics["confusion_matrix"]
    print(f"Evaluated {metrics['n']} images in {folder} with {model}")
    print(f"threshold    {metrics['threshold']:.3f}")
    for key in PRINTED_METRICS:
        print(f"{key:<12} {metrics[key]:.4f}")
    print("\nconfusion matrix      predicted NORMAL  predicted PNEUMONIA")
    print(f"  true NORMAL         {matrix['tn']:>16}  {matrix['fp']:>19}")
    print(f"  true PNEUMONIA      {matrix['fn']:>16}  {matrix['tp']:>19}")
    for error in metrics["unreadable"]:
        print(f"skipped unreadable image: {error}", file=sys.stderr)


def cmd_predict(args) -> int:
    from pneumonet_core.inference.predict import expand_inputs
    from pneumonet_core.inference.streaming import batched

    files = expand_inputs(args.files)
    if not files:
        raise ValueError(f"no image files found in {' '.join(args.files)}")
    predictor = _predictor(args.model)
    model_sha256 = audit.sha256_of_file(predictor.path)  # once per command
    print(admin_cli.describe_model(predictor), file=sys.stderr)
    failures, audit_failures, first_audit_error = 0, 0, None
    progress = _progress_bar(len(files), enabled=len(files) > 1 and not args.quiet)
    emit = _result_writer(progress)
    if not args.json:
        print(f"# {INTENDED_USE}")
    predictions = predictor.iter_predict([str(f) for f in files], batch_size=args.batch_size)
    results = zip(files, predictions, strict=True)
    for batch in batched(results, args.batch_size):  # one audit write per batch, then its lines
        readable = [(path, prediction) for path, prediction in batch if prediction.error is None]
        recorded = admin_cli.audit_predictions(predictor, model_sha256, readable)
        audit_failures += sum(not result.ok for result in recorded)
        first_audit_error = first_audit_error or next(
            (result.error for result in recorded if not result.ok), None
        )
        for _, prediction in batch:
            progress.update(1)
            failures += prediction.error is not None
            emit(_result_line(prediction, args.json))
    progress.close()
    if audit_failures:
        what = f"{audit_failures} of {len(files)} predictions (shown above)"
        report_audit_failure(audit.AuditResult(False, error=first_audit_error), what)
    return 1 if failures else 0


def _result_line(prediction, as_json: bool) -> str:
    """One `pneumonet predict` output line: JSON, or tab-separated text."""
    if as_json:
        return json.dumps(prediction.to_dict())
    if prediction.error:
        return f"{prediction.file}\terror: {prediction.error}"
    if prediction.is_not_a_chest_xray:  # no label, not even a hedged one
        return f"{prediction.file}\tno result: {prediction.ood_reason}"
    if prediction.ood:
        output = f"model output {prediction.label} p={prediction.probability:.4f}"
        return f"{prediction.file}\t{prediction.ood_reason}\t({output})"
    return (
        f"{prediction.file}\t{prediction.label}\tp={prediction.probability:.4f}"
        f"\t(threshold {prediction.threshold:.3f})"
    )


TENSORFLOW_COMMANDS = (
    cmd_train,
    cmd_evaluate,
    cmd_predict,
    model_checks.cmd_shortcuts,
    model_checks.cmd_ood_fit,
    *admin_cli.TENSORFLOW_COMMANDS,
    pacs_commands.cmd_pacs_watch,
)


def closed_pipe_exit() -> int:
    """The reader of our output went away (`pneumonet ... | head`): stop quietly, as Unix tools
    do, with 128 + SIGPIPE; stdout goes to the null device so the interpreter's final flush
    cannot complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def _result_writer(progress):
    """Print one result line to stdout at once, clearing the progress bar's line first."""

    def emit(line: str) -> None:
        progress.write(line, file=sys.stdout)
        sys.stdout.flush()

    return emit


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    # Results go through the bar's `write`, which clears the bar line first, so a terminal
    # never shows a result glued to a half-drawn bar.
    return tqdm(total=total, disable=not enabled, file=sys.stderr, unit="image")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pneumonet",
        description="PneumoNet: pneumonia screening support for paediatric chest X-rays. "
        f"{INTENDED_USE}",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show TensorFlow's start-up and information lines",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="inspect a dataset")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    check = data_commands.add_parser("check", help="count images per split and class")
    check.add_argument("dir", nargs="?", help="dataset root (default: $PNEUMONET_DATA)")
    check.add_argument("--verify", action="store_true", help="also decode every image")
    check.set_defaults(handler=cmd_data_check)

    _add_train_parser(commands)

    evaluate = commands.add_parser("evaluate", help="metrics on a folder of labelled images")
    evaluate.add_argument(
        "dir",
        nargs="?",
        help="folder holding NORMAL/ and PNEUMONIA/ (default: test/ or val/ of $PNEUMONET_DATA)",
    )
    evaluate.add_argument("--model", help="a .keras model (default: the active model)")
    evaluate.add_argument("--threshold", type=float, help="decision threshold (default: model's)")
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(handler=cmd_evaluate)

    predict = commands.add_parser("predict", help="predict images (files or folders)")
    predict.add_argument("files", nargs="+", help="image files (PNG, JPEG, DICOM) or folders")
    predict.add_argument("--model", help="a .keras model (default: the active model)")
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    predict.set_defaults(handler=cmd_predict)
    model_checks.add_ood_parser(commands)
    model_checks.add_shortcuts_parser(commands)
    admin_cli.add_admin_parsers(commands)
    pacs_commands.add_pacs_parser(commands)
    return parser


def _add_train_parser(commands) -> None:
    from pneumonet_core.training.train_config import TrainConfig

    train = commands.add_parser(
        "train",
        help="train a model and record the run",
        formatter_class=SettingsHelpFormatter,
    )
    # One option per `TrainConfig` field: flags, types, defaults, choices and help all come
    # from the dataclass, so the CLI and the dashboard cannot drift.
    add_setting_options(train, TrainConfig)
    train.set_defaults(handler=cmd_train)


# The augmentation strengths and their help, as `pneumonet train` offers them.
AUGMENTATION_OPTIONS = {
    item.name: item.help for item in settings_of(AugmentationConfig) if item.type is float
}


def check_named_paths(args: argparse.Namespace) -> None:
    """Refuse a named file or folder that does not exist before any model or TensorFlow load.

    A model or dataset folder must exist; of the images given to `predict`, at least one (the
    missing others are reported per file, as before, and the rest are still predicted).

    Raises:
        FileNotFoundError: One line naming the first missing path.
    """
    from pneumonet_core.data import missing_dataset_message
    from pneumonet_core.inference.predict import missing_model_message

    model = getattr(args, "model", None)
    if model and not Path(model).expanduser().exists():
        raise FileNotFoundError(missing_model_message(Path(model)))
    folder = getattr(args, "dir", None)
    if folder and not Path(folder).expanduser().exists():
        raise FileNotFoundError(missing_dataset_message(Path(folder).expanduser()))
    files = getattr(args, "files", None) or []
    if files and not any(Path(text).expanduser().exists() for text in files):
        raise FileNotFoundError(f"{files[0]}: no such file or folder")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config.quiet_tensorflow(verbose=args.verbose)
    try:
        check_named_paths(args)
        if args.handler in TENSORFLOW_COMMANDS and not args.verbose:
            config.import_tensorflow_quietly()
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return closed_pipe_exit()
    except (ValueError, OSError, RuntimeError) as error:
        print(f"pneumonet: error: {error}", file=sys.stderr)
        return EXIT_ERROR
