"""Model files: safe-mode loading, clear errors for corrupt or foreign files, atomic promotion."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from pneumonet_core import config, modelio
from pneumonet_core.modelio import (
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
from pneumonet_core.predict import Predictor


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


def test_promote_model_makes_it_the_active_model(untrained_model_path):
    destination = promote_model(untrained_model_path)
    assert destination == config.promoted_model_path()
    assert config.active_model_path() == destination
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
