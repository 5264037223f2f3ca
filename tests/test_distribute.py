"""tf.distribute strategies: choosing one by name, and training through MirroredStrategy.

On a CPU-only machine MirroredStrategy has one replica (the CPU), which still runs the whole
strategy path: the model and optimizer are built in the strategy's scope and `fit` distributes
every batch. That is the same code that spreads batches over several GPUs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pneumonet_core.cli import build_parser
from pneumonet_core.distribute import STRATEGIES, global_batch_size, make_strategy
from pneumonet_core.modelio import read_metadata
from pneumonet_core.train import TrainConfig, train

TINY_IMAGE_SIZE = 32


def test_strategy_names_match_the_command_line_choices():
    parser = build_parser()
    args = parser.parse_args(["train", "--distribute", "mirrored"])
    assert args.distribute == "mirrored"
    assert set(STRATEGIES) == {"none", "mirrored", "multiworker"}


def test_default_strategy_has_one_replica():
    import tensorflow as tf

    strategy = make_strategy("none")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_mirrored_strategy_on_the_cpu_has_one_replica():
    import tensorflow as tf

    strategy = make_strategy("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    expected = max(1, len(tf.config.list_logical_devices("GPU")))
    assert strategy.num_replicas_in_sync == expected


@pytest.mark.parametrize("name", ["", "Mirrored", "tpu", "multi-worker", None])
def test_unknown_strategy_is_rejected_with_the_choices(name):
    with pytest.raises(ValueError, match="unknown distribution strategy") as caught:
        make_strategy(name)
    for choice in STRATEGIES:
        assert choice in str(caught.value)


def test_global_batch_size_scales_with_replicas():
    class FourReplicas:
        num_replicas_in_sync = 4

    assert global_batch_size(32, FourReplicas()) == 128
    assert global_batch_size(32, make_strategy("none")) == 32


def test_train_config_rejects_an_unknown_strategy():
    with pytest.raises(ValueError, match="distribute must be one of"):
        TrainConfig(distribute="horovod")


def test_command_line_rejects_an_unknown_strategy(capsys):
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["train", "--distribute", "horovod"])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_multiworker_strategy_without_tf_config_is_a_single_worker():
    """Built in a fresh process: collective ops must be configured before any other strategy."""
    code = (
        "import tensorflow as tf; "
        "from pneumonet_core.distribute import make_strategy; "
        "s = make_strategy('multiworker'); "
        "print(isinstance(s, tf.distribute.MultiWorkerMirroredStrategy), s.num_replicas_in_sync)"
    )
    environment = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    environment["CUDA_VISIBLE_DEVICES"] = ""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split()[-2:] == ["True", "1"]


def test_training_runs_through_mirrored_strategy(dataset_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMONET_HOME", str(tmp_path / "home"))
    data_dir = dataset_factory(per_class=16)
    out = tmp_path / "mirrored.keras"
    config = TrainConfig(
        data_dir=str(data_dir),
        architecture="seed",
        image_size=TINY_IMAGE_SIZE,
        epochs=1,
        batch_size=8,
        seed=5,
        val_fraction=0.25,
        out=str(out),
        distribute="mirrored",
    )

    result = train(config, verbose=0)

    assert result.epochs_run == 1
    assert result.train_images + result.val_images == 32
    assert 0.0 <= result.threshold <= 1.0
    metadata = read_metadata(out)
    assert metadata.training["distribute"] == "mirrored"
    assert metadata.training["batch_size"] == 8
    assert metadata.image_size == TINY_IMAGE_SIZE
    assert (tmp_path / "home" / "mlflow.db").is_file()
