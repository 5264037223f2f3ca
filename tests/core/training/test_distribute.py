"""tf.distribute strategies: choosing one by name, and training through MirroredStrategy.

On a CPU-only machine MirroredStrategy has one replica (the CPU), which still runs the whole
strategy path: the model and optimizer are built in the strategy's scope and `fit` distributes
every batch. That is the same code that spreads batches over several GPUs; a subprocess that
splits the CPU into two logical devices checks the two-replica case as well.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from pneumonet_core.cli.main import build_parser
from pneumonet_core.models.modelio import read_metadata
from pneumonet_core.training.distribute import STRATEGIES, global_batch_size, make_strategy
from pneumonet_core.training.trainer import TrainConfig, train

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
        "from pneumonet_core.training.distribute import make_strategy; "
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


@pytest.mark.slow
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


def _run_python(code: str, *args: str, environment: dict | None = None, timeout: int = 240):
    """Run Python code in a fresh interpreter (TensorFlow's devices are fixed at start-up)."""
    env = dict(environment or os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


TWO_REPLICA_TRAINING = """
    import sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pneumonet_core.training import trainer as training

    training.make_strategy = lambda name: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    config = training.TrainConfig(
        data_dir=sys.argv[1], architecture="seed", image_size=32, epochs=1, batch_size=4,
        seed=5, val_fraction=0.25, out=sys.argv[2], distribute="mirrored",
    )
    result = training.train(config, verbose=0)
    print("RESULT", result.epochs_run, result.train_images + result.val_images)
"""


@pytest.mark.slow
def test_training_runs_on_two_mirrored_replicas(dataset_factory, tmp_path):
    """Two logical CPUs stand in for two GPUs: each replica gets half of every global batch."""
    data_dir = dataset_factory(per_class=16)
    out = tmp_path / "two_replicas.keras"
    environment = dict(os.environ, PNEUMONET_HOME=str(tmp_path / "home"))
    environment.pop("MLFLOW_TRACKING_URI", None)

    completed = _run_python(TWO_REPLICA_TRAINING, str(data_dir), str(out), environment=environment)

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "RESULT 1 32" in completed.stdout
    assert read_metadata(out).training["distribute"] == "mirrored"


MULTI_WORKER_FIT = """
    import numpy as np
    import tensorflow as tf
    import keras

    from pneumonet_core.training.distribute import make_strategy
    from pneumonet_core.models.architectures import build_model

    strategy = make_strategy("multiworker")
    images = np.random.default_rng(0).random((32, 32, 32, 1), dtype=np.float32)
    labels = np.arange(32, dtype=np.float32).reshape(-1, 1) % 2
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    with strategy.scope():
        model = build_model("seed", 32)
        model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(dataset, epochs=1, verbose=0)
    print("FITTED", strategy.num_replicas_in_sync)
"""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("localhost", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


PORT_TAKEN = "Could not start gRPC server"
PORT_ATTEMPTS = 3


def _run_two_workers() -> tuple[list, list]:
    """Start two workers on fresh ports; when another process took a port in between, retry."""
    for _ in range(PORT_ATTEMPTS):
        workers = [f"localhost:{port}" for port in _free_ports(2)]
        processes = [_start_worker(index, workers) for index in range(2)]
        outputs = []
        for process in processes:
            try:
                outputs.append(process.communicate(timeout=180))
            except subprocess.TimeoutExpired:
                process.kill()
                outputs.append(process.communicate())
        if not any(PORT_TAKEN in stderr for _, stderr in outputs):
            break
    return processes, outputs


class MultiWorkerFitError(RuntimeError):
    """The known Keras 3 failure of model.fit under MultiWorkerMirroredStrategy."""


KNOWN_MULTIWORKER_ERROR = "PerReplica"


def _start_worker(index: int, workers: list[str]) -> subprocess.Popen:
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    environment["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    )
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(MULTI_WORKER_FIT)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    raises=MultiWorkerFitError,
    reason="Keras 3 model.fit fails under MultiWorkerMirroredStrategy with 2+ workers "
    "(PerReplica conversion error; keras-team/keras#20585, tensorflow/tensorflow#72388). "
    "When this starts passing, multi-host training works: update docs/PERFORMANCE.md.",
)
def test_multiworker_fit_across_two_local_workers():
    processes, outputs = _run_two_workers()
    errors = [stderr for _, stderr in outputs]
    if any(KNOWN_MULTIWORKER_ERROR in stderr for stderr in errors):
        raise MultiWorkerFitError(next(e for e in errors if KNOWN_MULTIWORKER_ERROR in e)[-800:])
    assert all(process.returncode == 0 for process in processes), outputs[0][1][-1500:]
    assert all("FITTED 2" in stdout for stdout, _ in outputs)
