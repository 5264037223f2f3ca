"""Never lose: training survives kill -9, double starts, unwritable outputs and corrupt images."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from pathlib import Path

import pytest
from job_helpers import wait_until

from pneumonet_core import cli
from pneumonet_core.data import DatasetError
from pneumonet_core.governance import tracking
from pneumonet_core.models.modelio import check_writable_destination, load_model, save_model
from pneumonet_core.training.jobs import JobAlreadyRunning, read_job_status, start_training_job


def kill_and_reap(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@pytest.fixture
def job_cleanup():
    """Kill the job process a test started if it is still running at the end."""
    yield
    status = read_job_status()
    if status is not None and status.pid and status.is_active:
        kill_and_reap(status.pid)


def test_kill_mid_epoch_keeps_the_store_and_the_best_checkpoint(
    synthetic_data, train_config_factory, isolated_state, job_cleanup
):
    out = isolated_state / "models" / "best.keras"
    config = train_config_factory(synthetic_data, out, epochs=500)
    start_training_job(config)

    def past_first_checkpoint():
        # Epochs are short; the process is killed wherever it is in epoch 2 or later.
        status = read_job_status()
        ready = status and status.state == "running" and status.epoch >= 2 and out.is_file()
        return status if ready else None

    running = wait_until(past_first_checkpoint, poll_s=0.05)
    kill_and_reap(running.pid)

    status = read_job_status()
    assert status.state == "failed" and "ended unexpectedly" in status.error
    assert tracking.run_info(running.run_id)["status"] == "FAILED"
    model, metadata = load_model(out)  # the best checkpoint so far is intact
    assert metadata.run_id == running.run_id and model.input_shape == (None, 32, 32, 1)
    # A save cut short leaves at most a hidden temporary file, never a half-written best.keras.
    assert [p.name for p in out.parent.iterdir() if not p.name.startswith(".")] == ["best.keras"]

    mlflow = tracking.configure()
    with mlflow.start_run(experiment_id=tracking.ensure_experiment(), run_name="after") as run:
        mlflow.log_metric("x", 1.0)
    runs = tracking.list_runs()
    assert {running.run_id, run.info.run_id} <= set(runs["run_id"])
    assert dict(zip(runs["run_id"], runs["status"], strict=True))[run.info.run_id] == "FINISHED"


def test_two_concurrent_starts_run_exactly_one_job(
    synthetic_data, train_config_factory, isolated_state, job_cleanup
):
    config = train_config_factory(synthetic_data, isolated_state / "one.keras", epochs=500)
    barrier = threading.Barrier(2)
    started, refused = [], []

    def start():
        barrier.wait()
        try:
            started.append(start_training_job(config))
        except JobAlreadyRunning as error:
            refused.append(str(error))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(started) == 1 and len(refused) == 1, (started, refused)
    assert started[0].job_id in refused[0]
    assert len(list((isolated_state / "jobs").glob("config-*.json"))) == 1

    kill_and_reap(started[0].pid)
    status = read_job_status()
    assert status.state == "failed" and not status.is_active  # a killed start is not "running"


def test_unwritable_output_fails_before_the_job_starts(
    synthetic_data, train_config_factory, isolated_state
):
    blocker = isolated_state / "a_file"
    blocker.write_text("not a folder")
    config = train_config_factory(synthetic_data, blocker / "model.keras")
    with pytest.raises(OSError, match=f"cannot write the model to {blocker / 'model.keras'}"):
        start_training_job(config)
    assert read_job_status() is None  # nothing was started


def test_full_disk_is_reported_with_the_path(tmp_path, monkeypatch):
    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    destination = tmp_path / "models" / "model.keras"
    with pytest.raises(OSError, match=rf"{destination}: No space left on device"):
        check_writable_destination(destination)
    assert list(destination.parent.iterdir()) == []  # the probe file was removed


def test_a_failed_save_leaves_the_previous_model_intact(untrained_model_path, tmp_path):
    model, metadata = load_model(untrained_model_path)
    path = tmp_path / "model.keras"
    save_model(model, path, metadata)
    before = path.read_bytes()

    class FullDiskModel:
        def save(self, filepath):
            Path(filepath).write_bytes(b"half a model")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=f"cannot write the model to {path}"):
        save_model(FullDiskModel(), path, metadata)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


@pytest.fixture
def data_with_corrupt_image(dataset_factory):
    root = dataset_factory(per_class=8)
    corrupt = root / "train" / "PNEUMONIA" / "person999_bacteria_1.jpeg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated JPEG")
    return root, corrupt


def test_corrupt_training_image_stops_training_with_its_path(
    data_with_corrupt_image, train_config_factory, capsys
):
    root, corrupt = data_with_corrupt_image
    from pneumonet_core.training.trainer import train

    with pytest.raises(DatasetError, match=rf"cannot read {corrupt}: .*damaged or truncated"):
        train(train_config_factory(root, None, on_error="raise"), verbose=0)

    arguments = ["train", str(root), "--on-error", "raise", "--epochs", "1", "--image-size", "32"]
    assert cli.main(arguments) == cli.EXIT_ERROR
    error = capsys.readouterr().err
    assert str(corrupt) in error and "Traceback" not in error and "tensorflow" not in error


def test_corrupt_training_image_is_skipped_and_reported(
    data_with_corrupt_image, train_config_factory
):
    root, corrupt = data_with_corrupt_image
    from pneumonet_core.training.trainer import prepare_data

    prepared = prepare_data(train_config_factory(root, None, on_error="skip"))
    assert [path for path, _ in prepared.skipped] == [str(corrupt)]
    assert "damaged or truncated" in prepared.skipped[0][1]
    kept = set(prepared.train_frame["path"]) | set(prepared.val_frame["path"])
    assert str(corrupt) not in kept and len(kept) == 16
