"""cli: the `pneumonet` command (data check, train, evaluate, predict) as users call it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pneumonet_core import INTENDED_USE
from pneumonet_core.cli.main import EXIT_ERROR, main

PREDICTION_KEYS = {"file", "probability", "label", "threshold", "error", "ood", "ood_reason"}
EVALUATION_KEYS = {
    "n",
    "accuracy",
    "loss",
    "roc_auc",
    "pr_auc",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "threshold",
    "confusion_matrix",
}


def count_row(output: str, split: str) -> list[int]:
    """The numbers on the counts table's row for a split."""
    match = re.search(rf"^{split}\s+(\d+)\s+(\d+)\s+(\d+)\s*$", output, re.MULTILINE)
    assert match, output
    return [int(value) for value in match.groups()]


# --- data check ------------------------------------------------------------------------------


def test_data_check_prints_counts_as_numbers(synthetic_data, capsys):
    assert main(["data", "check", str(synthetic_data)]) == 0
    output = capsys.readouterr().out
    assert f"Dataset: {synthetic_data}" in output
    assert count_row(output, "train") == [24, 24, 48]
    assert count_row(output, "val") == [4, 4, 8]
    assert "No problems found." in output


def test_data_check_uses_pneumonet_data_by_default(synthetic_data, capsys, monkeypatch):
    monkeypatch.setenv("PNEUMONET_DATA", str(synthetic_data))
    assert main(["data", "check"]) == 0
    assert count_row(capsys.readouterr().out, "train") == [24, 24, 48]


def test_data_check_reports_problems_and_fails(dataset_factory, corrupt_jpeg, capsys):
    root = dataset_factory(per_class=3)
    shutil.rmtree(root / "train" / "PNEUMONIA")
    copied = root / "train" / "NORMAL" / "IM-9999-0001.jpeg"
    shutil.copy(corrupt_jpeg, copied)
    assert main(["data", "check", str(root)]) == 1
    output = capsys.readouterr().out
    assert "1 problem(s)" in output
    assert "missing class folder" in output
    assert main(["data", "check", "--verify", str(root)]) == 1
    output = capsys.readouterr().out
    assert "2 problem(s)" in output
    assert f"unreadable image: {copied.name}" in output


def test_data_check_missing_folder_exits_2_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["data", "check", str(missing)]) == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.err.startswith("pneumonet: error: dataset folder")
    assert str(missing) in captured.err
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1


# --- predict ---------------------------------------------------------------------------------


def test_predict_json_prints_one_object_per_line(
    trained_model_path, image_factory, corrupt_jpeg, capsys
):
    files = [image_factory("a.png", 0, 1), image_factory("b.jpeg", 1, 2), corrupt_jpeg]
    args = ["predict", *map(str, files), "--model", str(trained_model_path), "--json"]
    assert main(args) == 1  # one file failed
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert all(set(record) == PREDICTION_KEYS for record in records)
    assert [record["file"] for record in records] == [str(path) for path in files]
    for record in records[:2]:
        assert record["error"] is None
        assert 0.0 <= record["probability"] <= 1.0
        assert record["label"] in ("NORMAL", "PNEUMONIA")
        assert (record["label"] == "PNEUMONIA") == (record["probability"] >= record["threshold"])
    assert records[2]["probability"] is None and "not a recognised image" in records[2]["error"]


def test_predict_folder_in_text_mode(trained_model_path, synthetic_data, capsys):
    folder = synthetic_data / "val" / "NORMAL"
    args = ["predict", str(folder), "--model", str(trained_model_path), "--quiet"]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"# {INTENDED_USE}"
    assert len(lines) == 1 + 4
    assert all(re.search(r"\t(NORMAL|PNEUMONIA)\tp=[01]\.\d{4}\t", line) for line in lines[1:])


def test_predict_with_a_missing_model_exits_2(image_factory, tmp_path, capsys):
    absent = tmp_path / "absent.keras"
    args = ["predict", str(image_factory("a.png")), "--model", str(absent)]
    assert main(args) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"pneumonet: error: no model at {absent}")
    assert "Traceback" not in err


def test_predict_without_images_exits_2(tmp_path, capsys):
    assert main(["predict", str(tmp_path)]) == EXIT_ERROR
    assert "no image files found" in capsys.readouterr().err


# --- evaluate --------------------------------------------------------------------------------


def test_evaluate_json_has_every_metric(trained_model_path, synthetic_data, capsys):
    folder = synthetic_data / "val"
    assert main(["evaluate", str(folder), "--model", str(trained_model_path), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= EVALUATION_KEYS
    assert metrics["n"] == 8
    assert set(metrics["confusion_matrix"]) == {"tn", "fp", "fn", "tp"}
    assert sum(metrics["confusion_matrix"].values()) == 8
    matrix = metrics["confusion_matrix"]
    assert metrics["accuracy"] == pytest.approx((matrix["tn"] + matrix["tp"]) / 8)
    for key in ("accuracy", "roc_auc", "pr_auc", "loss"):
        assert isinstance(metrics[key], float)
    from pneumonet_core.models.modelio import read_metadata

    assert metrics["threshold"] == pytest.approx(read_metadata(trained_model_path).threshold)
    assert metrics["unreadable"] == []


def test_evaluate_threshold_override_and_defaults(
    trained_model_path, synthetic_data, capsys, monkeypatch
):
    monkeypatch.setenv("PNEUMONET_DATA", str(synthetic_data))
    monkeypatch.setenv("PNEUMONET_MODEL", str(trained_model_path))
    assert main(["evaluate", "--json", "--threshold", "0"]) == 0  # default folder: val/
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 8 and metrics["threshold"] == 0.0
    assert metrics["confusion_matrix"] == {"tn": 0, "fp": 4, "fn": 0, "tp": 4}


def test_evaluate_skips_unreadable_images(
    trained_model_path, dataset_factory, corrupt_jpeg, capsys
):
    root = dataset_factory(per_class=3, splits=("val",))
    shutil.copy(corrupt_jpeg, root / "val" / "PNEUMONIA" / corrupt_jpeg.name)
    args = ["evaluate", str(root / "val"), "--model", str(trained_model_path), "--json"]
    assert main(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 6
    assert len(metrics["unreadable"]) == 1 and corrupt_jpeg.name in metrics["unreadable"][0]


def test_evaluate_text_output(trained_model_path, synthetic_data, capsys):
    assert main(["evaluate", str(synthetic_data / "val"), "--model", str(trained_model_path)]) == 0
    output = capsys.readouterr().out
    assert "Evaluated 8 images" in output
    assert re.search(r"^sensitivity\s+[01]\.\d{4}$", output, re.MULTILINE)
    assert "true PNEUMONIA" in output


def test_evaluate_with_a_missing_model_exits_2(synthetic_data, tmp_path, capsys):
    absent = tmp_path / "absent.keras"
    args = ["evaluate", str(synthetic_data / "val"), "--model", str(absent), "--json"]
    assert main(args) == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"no model at {absent}" in captured.err


# --- train -----------------------------------------------------------------------------------


def test_train_rejects_a_bad_threshold_policy_before_training(synthetic_data, capsys):
    args = ["train", str(synthetic_data), "--threshold-policy", "median", "--epochs", "1"]
    assert main(args) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "threshold_policy" in err and "'median'" in err


def test_train_rejects_an_unknown_architecture(synthetic_data, capsys, tmp_path):
    out = tmp_path / "m.keras"
    args = ["train", str(synthetic_data), "--arch", "resnet", "--image-size", "32"]
    assert main([*args, "--out", str(out)]) == EXIT_ERROR
    assert "unknown architecture 'resnet'" in capsys.readouterr().err
    assert not out.exists()


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        main(["train", "--monitor", "val_accuracy"])
    assert caught.value.code == 2


# --- the installed entry point ---------------------------------------------------------------


def test_installed_pneumonet_command_runs(synthetic_data):
    executable = shutil.which("pneumonet", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("the pneumonet entry point is not installed next to this Python")
    completed = subprocess.run(
        [executable, "data", "check", str(synthetic_data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert count_row(completed.stdout, "train") == [24, 24, 48]
    help_text = subprocess.run(
        [executable, "--help"], capture_output=True, text=True, timeout=120
    ).stdout
    assert "usage: pneumonet" in help_text
    for command in ("data", "train", "evaluate", "predict"):
        assert command in help_text


# --- a quiet command line --------------------------------------------------------------------

# What TensorFlow prints on start-up: oneDNN and CPU-feature notices, absl's warning, and any
# line in its C++ log format ("I0000 00:00:1795716974.045821 10549 port.cc:153] ...").
TENSORFLOW_NOISE = ("oneDNN", "absl", "cpu_feature_guard", "I0000", "port.cc")
TENSORFLOW_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d", re.MULTILINE)


def run_pneumonet(*arguments: str) -> subprocess.CompletedProcess:
    """Run the installed `pneumonet` command on this checkout, as a user's terminal would.

    TensorFlow's own logging settings are removed from the environment, as a user has none.
    """
    executable = shutil.which("pneumonet", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-m", "pneumonet_core.cli"]
    project_root = str(Path(__file__).resolve().parents[3])
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")
    }
    environment["PYTHONPATH"] = os.pathsep.join(
        [project_root, *filter(None, [environment.get("PYTHONPATH")])]
    )
    return subprocess.run(
        [*command, *arguments], capture_output=True, text=True, timeout=180, env=environment
    )


def assert_no_tensorflow_noise(stderr: str) -> None:
    for marker in TENSORFLOW_NOISE:
        assert marker not in stderr, stderr
    assert not TENSORFLOW_LOG_LINE.search(stderr), stderr


def test_predict_shows_only_pneumonet_output_and_its_progress_bar(
    untrained_model_path, image_factory
):
    images = [image_factory("a.png", seed=1), image_factory("b.png", seed=2)]
    result = run_pneumonet("predict", "--model", str(untrained_model_path), *map(str, images))
    assert result.returncode == 0, result.stderr
    assert_no_tensorflow_noise(result.stderr)
    assert "2/2" in result.stderr  # the progress bar is still drawn
    assert [line.split("\t")[0] for line in result.stdout.splitlines()[1:]] == list(
        map(str, images)
    )


def test_evaluate_shows_only_pneumonet_output(untrained_model_path, synthetic_data):
    folder = synthetic_data / "val"
    result = run_pneumonet("evaluate", str(folder), "--model", str(untrained_model_path), "--json")
    assert result.returncode == 0, result.stderr
    assert_no_tensorflow_noise(result.stderr)
    assert result.stderr == ""
    assert json.loads(result.stdout)["n"] == 8


def test_train_errors_stay_visible_after_the_quiet_tensorflow_import(tmp_path):
    result = run_pneumonet("train", str(tmp_path / "missing"), "--out", str(tmp_path / "m.keras"))
    assert result.returncode == EXIT_ERROR
    assert_no_tensorflow_noise(result.stderr)
    (line,) = result.stderr.splitlines()
    assert line.startswith("pneumonet: error: dataset folder") and "missing" in line


def test_verbose_is_accepted_before_the_command(untrained_model_path, image_factory):
    image = image_factory("a.png")
    result = run_pneumonet("--verbose", "predict", "--model", str(untrained_model_path), str(image))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(f"{image}\t")


def test_shortcuts_json_reports_the_three_figures(trained_model_path, synthetic_data, capsys):
    folder = synthetic_data / "val"
    code = main(["shortcuts", str(folder), "--model", str(trained_model_path), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 8
    for key in ("original_auc", "lungs_hidden_auc", "outside_hidden_auc"):
        assert 0.0 <= result[key] <= 1.0
    assert 0.0 <= result["gradcam_lung_share"] <= 1.0
    assert set(result["meets_targets"]) == {"lungs_hidden_auc", "outside_hidden_auc"}


def test_shortcuts_text_output_names_targets(trained_model_path, synthetic_data, capsys):
    folder = synthetic_data / "val"
    assert main(["shortcuts", str(folder), "--model", str(trained_model_path), "--no-gradcam"]) == 0
    out = capsys.readouterr().out
    assert "lungs hidden" in out and "target <= 0.65" in out
    assert "Grad-CAM" not in out


def test_shortcuts_on_a_folder_without_images_exits_2(tmp_path, capsys):
    (tmp_path / "NORMAL").mkdir()
    (tmp_path / "PNEUMONIA").mkdir()
    assert main(["shortcuts", str(tmp_path)]) == EXIT_ERROR
    assert "holds no images" in capsys.readouterr().err


def test_train_parser_defaults_are_the_train_config_defaults():
    from pneumonet_core.cli.main import AUGMENTATION_OPTIONS, build_parser
    from pneumonet_core.data.augment import AugmentationConfig
    from pneumonet_core.training.trainer import TrainConfig

    args = build_parser().parse_args(["train"])
    defaults, augmentation = TrainConfig(), AugmentationConfig()
    pairs = {
        "arch": "architecture",
        "epochs": "epochs",
        "image_size": "image_size",
        "learning_rate": "learning_rate",
        "lr_schedule": "lr_schedule",
        "input_normalization": "input_normalization",
        "lung_focus": "lung_focus",
        "label_smoothing": "label_smoothing",
        "threshold_policy": "threshold_policy",
    }
    for option, field in pairs.items():
        assert getattr(args, option) == getattr(defaults, field), option
    for name in AUGMENTATION_OPTIONS:
        assert getattr(args, f"augment_{name}") == getattr(augmentation, name), name


def _train_subparser(parser):
    import argparse

    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["train"]


def test_each_train_config_setting_reaches_the_parser_and_the_form():
    from dashboard import training
    from pneumonet_core.cli.main import build_parser
    from pneumonet_core.cli.settings_options import config_from_args
    from pneumonet_core.training.trainer import TrainConfig
    from pneumonet_core.utils.settings import settings_of

    settings = list(settings_of(TrainConfig))
    parser = build_parser()
    args = parser.parse_args(["train"])
    actions = {action.dest: action for action in _train_subparser(parser)._actions}
    for item in settings:
        assert item.cli, item.name  # every training setting is a `pneumonet train` option
        assert getattr(args, item.dest) == item.default, item.name
        assert actions[item.dest].help == item.help, item.name
        if item.type is not bool:
            assert actions[item.dest].choices == item.choices, item.name
    assert config_from_args(TrainConfig, args) == TrainConfig()

    by_path = {".".join(item.path): item for item in settings}
    for field in training.form_fields():
        item = by_path[field.name]
        assert field.default == item.default, field.name
        assert field.value_type is item.type, field.name
        if item.choices:
            assert field.options == item.choices, field.name


def test_train_options_build_the_train_config():
    from pneumonet_core.cli.main import build_parser
    from pneumonet_core.cli.settings_options import config_from_args
    from pneumonet_core.training.trainer import TrainConfig

    args = build_parser().parse_args(
        [
            *("train", "data", "--arch", "seed", "--no-augment", "--no-flip"),
            *("--early-stopping", "3", "--crop-area", "0.5", "--subset-per-class", "10"),
            *("--monitor", "val_loss", "--on-error", "raise", "--distribute", "mirrored"),
            *("--learning-rate", "0.001", "--image-size", "64", "--run-name", "r"),
        ]
    )
    built = config_from_args(TrainConfig, args)
    assert built.data_dir == "data" and built.architecture == "seed"
    assert (built.augmentation.enabled, built.augmentation.horizontal_flip) == (False, False)
    assert built.augmentation.crop_area == 0.5 and built.early_stopping_patience == 3
    assert (built.subset_per_class, built.monitor, built.on_error) == (10, "val_loss", "raise")
    assert (built.distribute, built.learning_rate, built.image_size) == ("mirrored", 0.001, 64)
    assert built.run_name == "r" and built.epochs == TrainConfig().epochs


def test_a_setting_declared_on_a_dataclass_becomes_an_option():
    import argparse
    from dataclasses import dataclass

    from pneumonet_core.cli.settings_options import add_setting_options, config_from_args
    from pneumonet_core.utils.settings import setting

    @dataclass
    class Settings:
        warmup_epochs: int = setting(2, help="epochs of linear warm-up", choices=(0, 2, 4))
        shuffle: bool = setting(True, help="keep the order")
        note: str | None = setting(None, help="a note")

    parser = argparse.ArgumentParser()
    add_setting_options(parser, Settings)
    assert config_from_args(Settings, parser.parse_args([])) == Settings()
    args = parser.parse_args(["--warmup-epochs", "4", "--no-shuffle", "--note", "x"])
    assert config_from_args(Settings, args) == Settings(4, False, "x")
    with pytest.raises(SystemExit):
        parser.parse_args(["--warmup-epochs", "3"])


def test_a_missing_model_or_folder_is_reported_before_tensorflow_loads(tmp_path):
    missing = tmp_path / "absent.keras"
    script = (
        "import sys\n"
        "from pneumonet_core.cli import main\n"
        f"code = main(['predict', '--model', {str(missing)!r}, 'x.png'])\n"
        "print('TF', 'tensorflow' in sys.modules, code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.stdout.strip() == "TF False 2"
    assert result.stderr.strip().startswith(f"pneumonet: error: no model at {missing}")


def test_a_closed_pipe_ends_the_output_quietly(tmp_path):
    environment = {**os.environ, "PNEUMONET_HOME": str(tmp_path)}
    writes = (
        "from pneumonet_core.governance import audit\n"
        "for i in range(2000):\n"
        "    audit.record('sign_in', source='dashboard:Sign in', user=f'user{i}@example.org')\n"
    )
    writer = subprocess.run(
        [sys.executable, "-c", writes], env=environment, capture_output=True, text=True
    )
    assert writer.returncode == 0, writer.stderr
    command = f"{sys.executable} -m pneumonet_core.cli audit export --format jsonl | head -2"
    shell = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert len(shell.stdout.splitlines()) == 2
    assert shell.stderr == ""
    assert shell.returncode == 128 + signal.SIGPIPE
