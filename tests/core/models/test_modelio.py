"""modelio: `.keras` files that carry their metadata, saved atomically, loaded safely.

Safe-mode loading, clear errors for corrupt or foreign files, and atomic promotion.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from pneumonet_core.inference.predict import Predictor
from pneumonet_core.models import modelio
from pneumonet_core.models.modelio import (
    METADATA_ENTRY,
    ModelLoadError,
    ModelMetadata,
    load_model,
    promote_model,
    read_metadata,
    read_model_entry,
    save_model,
    write_model_entries,
)
from pneumonet_core.utils import config

SIZE = 32


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from pneumonet_core.models.architectures import build_model

    keras.utils.set_random_seed(2)
    return build_model("seed", SIZE)


@pytest.fixture
def metadata() -> ModelMetadata:
    return ModelMetadata(
        architecture="seed",
        image_size=SIZE,
        threshold=0.37,
        training_data_fingerprint="ab" * 32,
        run_id="run123",
        metrics={"validation": {"accuracy": 0.9, "roc_auc": 0.95}, "best_epoch": 2},
        training={"epochs": 2, "seed": 3},
    )


def images(n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).random((n, SIZE, SIZE, 1)).astype(np.float32)


def test_round_trip_keeps_metadata_and_predictions(tmp_path, tiny_model, metadata):
    path = save_model(tiny_model, tmp_path / "models" / "m.keras", metadata)
    assert path == tmp_path / "models" / "m.keras" and path.is_file()
    loaded, loaded_metadata = load_model(path)
    assert loaded_metadata == metadata
    assert loaded_metadata.threshold == 0.37
    assert loaded_metadata.metrics["validation"]["roc_auc"] == 0.95
    np.testing.assert_allclose(
        np.asarray(loaded(images(), training=False)),
        np.asarray(tiny_model(images(), training=False)),
        atol=1e-6,
    )


def test_save_is_atomic_and_overwrites(tmp_path, tiny_model, metadata):
    path = tmp_path / "m.keras"
    save_model(tiny_model, path, metadata)
    metadata.threshold = 0.61
    save_model(tiny_model, path, metadata)
    assert read_metadata(path).threshold == 0.61
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]  # no temporary file left


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_and_promoted_models_get_the_users_usual_permissions(
    tmp_path, tiny_model, metadata, umask
):
    previous = os.umask(umask)
    try:
        saved = save_model(tiny_model, tmp_path / "m.keras", metadata)
        promoted = promote_model(saved, tmp_path / "active" / "model.keras")
    finally:
        os.umask(previous)
    for path in (saved, promoted):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, oct(path.stat().st_mode)


def test_save_model_stores_extra_entries_and_refuses_reserved_names(tmp_path, tiny_model, metadata):
    path = save_model(tiny_model, tmp_path / "m.keras", metadata, extra_entries={"x.bin": b"12"})
    assert read_model_entry(path, "x.bin") == b"12"
    load_model(path)  # an extra entry does not disturb loading
    with pytest.raises(ValueError, match="reserved .*'model.weights.h5'"):
        save_model(
            tiny_model, tmp_path / "n.keras", metadata, extra_entries={"model.weights.h5": b""}
        )
    assert not (tmp_path / "n.keras").exists()


def test_read_metadata_does_not_import_tensorflow(tmp_path, tiny_model, metadata):
    path = save_model(tiny_model, tmp_path / "m.keras", metadata)
    assert read_metadata(path).run_id == "run123"
    code = (
        "import sys\n"
        "from pneumonet_core.models.modelio import read_metadata\n"
        f"metadata = read_metadata({str(path)!r})\n"
        "assert metadata.threshold == 0.37, metadata\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_metadata_ignores_unknown_keys():
    values = ModelMetadata(architecture="seed", image_size=SIZE).to_dict()
    values["added_in_a_later_version"] = 1
    assert ModelMetadata.from_dict(values).image_size == SIZE


def test_missing_file_raises_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no model file at") as caught:
        load_model(tmp_path / "absent.keras")
    assert str(tmp_path / "absent.keras") in str(caught.value)


def test_corrupt_file_raises_model_load_error(tmp_path):
    path = tmp_path / "corrupt.keras"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelLoadError, match="not a readable .keras model file"):
        load_model(path)
    with pytest.raises(ModelLoadError):
        read_metadata(path)


def test_zip_without_metadata_raises_model_load_error(tmp_path):
    path = tmp_path / "plain.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ModelLoadError, match="without PneumoNet metadata"):
        load_model(path)


def test_plain_keras_file_raises_model_load_error(tmp_path, tiny_model):
    path = tmp_path / "foreign.keras"
    tiny_model.save(path)
    with pytest.raises(ModelLoadError, match="without PneumoNet metadata") as caught:
        load_model(path)
    assert str(path) in str(caught.value)


def test_metadata_without_a_model_raises_model_load_error(tmp_path, metadata):
    path = tmp_path / "only_metadata.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps(metadata.to_dict()))
    assert read_metadata(path).threshold == 0.37
    with pytest.raises(ModelLoadError, match="could not be loaded as a Keras model"):
        load_model(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not a readable"),
        (json.dumps({"image_size": 32}), "incomplete metadata"),
    ],
)
def test_broken_metadata_raises_model_load_error(tmp_path, content, reason):
    path = tmp_path / "broken.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA_ENTRY, content)
    with pytest.raises(ModelLoadError, match=reason):
        read_metadata(path)


def test_metadata_that_contradicts_the_model_is_refused(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.keras", ModelMetadata("seed", image_size=64))
    with pytest.raises(ModelLoadError, match="does not match its metadata"):
        load_model(path)


@pytest.mark.parametrize("name", ["model.h5", "model", "model.keras.tmp"])
def test_save_refuses_paths_not_ending_in_keras(tmp_path, tiny_model, metadata, name):
    with pytest.raises(ValueError, match=r"must end in \.keras") as caught:
        save_model(tiny_model, tmp_path / name, metadata)
    assert name in str(caught.value)
    assert not (tmp_path / name).exists()


def test_save_into_an_unwritable_folder_raises_os_error_naming_the_path(
    tmp_path, tiny_model, metadata
):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where a folder should be")
    target = blocker / "sub" / "m.keras"
    with pytest.raises(OSError, match="cannot write the model to") as caught:
        save_model(tiny_model, target, metadata)
    assert str(target) in str(caught.value)


def test_a_model_with_a_lambda_layer_is_refused_in_safe_mode(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2.0, name="arbitrary_code")(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(outputs))
    path = save_model(
        keras.Model(inputs, outputs),
        tmp_path / "lambda.keras",
        ModelMetadata(architecture="seed", image_size=32),
    )
    with pytest.raises(ModelLoadError, match=r"lambda\.keras could not be loaded.*[Ll]ambda"):
        load_model(path)
    with pytest.raises(ModelLoadError):
        Predictor(path)


def make_zip(path, entries: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("random bytes", "not a readable .keras model file"),
        ("truncated", "not a readable .keras model file|could not be loaded"),
        ("zip without metadata", "without PneumoNet metadata"),
        ("metadata but no Keras model", "could not be loaded as a Keras model"),
        ("incomplete metadata", "incomplete metadata"),
    ],
)
def test_corrupt_or_foreign_files_give_a_clear_error(kind, message, untrained_model_path, tmp_path):
    path = tmp_path / "model.keras"
    metadata = json.dumps(ModelMetadata(architecture="seed", image_size=32).to_dict()).encode()
    if kind == "random bytes":
        path.write_bytes(b"\x00\x01 definitely not a model " * 100)
    elif kind == "truncated":
        content = untrained_model_path.read_bytes()
        path.write_bytes(content[: len(content) // 2])
    elif kind == "zip without metadata":
        make_zip(path, {"config.json": b"{}"})
    elif kind == "metadata but no Keras model":
        make_zip(path, {METADATA_ENTRY: metadata})
    else:
        make_zip(path, {METADATA_ENTRY: b'{"image_size": 32}'})
    with pytest.raises(ModelLoadError, match=message) as caught:
        load_model(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_extra_entries_are_written_atomically_and_keep_everything_else(
    untrained_model_path, tmp_path
):
    path = tmp_path / "model.keras"
    shutil.copy(untrained_model_path, path)
    write_model_entries(path, {"extra.bin": b"one"})
    write_model_entries(path, {"extra.bin": b"two"})
    assert read_model_entry(path, "extra.bin") == b"two"
    assert read_model_entry(path, "absent.bin") is None
    assert read_metadata(path) == read_metadata(untrained_model_path)
    load_model(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    with pytest.raises(ValueError, match="reserved"):
        write_model_entries(path, {METADATA_ENTRY: b"{}"})


def test_promote_model_copies_it_into_place(untrained_model_path):
    # The registry stores a promoted model with it; the active model is resolved by the
    # registry (tests/core/test_registry.py), no longer from this default destination.
    destination = promote_model(untrained_model_path)
    assert destination == config.promoted_model_path()
    assert destination.read_bytes() == untrained_model_path.read_bytes()
    assert [p.name for p in destination.parent.iterdir()] == ["model.keras"]


def test_promoting_a_broken_model_keeps_the_active_one(untrained_model_path, tmp_path):
    active = promote_model(untrained_model_path)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="broken.keras"):
        promote_model(broken)
    assert active.read_bytes() == untrained_model_path.read_bytes()


def test_a_crash_mid_copy_never_activates_a_half_written_model(
    untrained_model_path, tmp_path, monkeypatch
):
    previous = tmp_path / "previous.keras"
    shutil.copy(untrained_model_path, previous)
    active = promote_model(previous)
    before = active.read_bytes()
    newer = tmp_path / "newer.keras"
    shutil.copy(untrained_model_path, newer)
    write_model_entries(newer, {"marker": b"newer"})

    def crash_half_way(reader, writer):
        writer.write(reader.read(len(before) // 2))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(modelio, "_copy_into", crash_half_way)
    with pytest.raises(OSError, match=f"cannot write {active}: No space left on device"):
        promote_model(newer)
    assert active.read_bytes() == before
    load_model(active)
    assert [p.name for p in active.parent.iterdir()] == ["model.keras"]  # temp file removed
