"""`.keras` model files that carry their own metadata.

The metadata (class names, input size, preprocessing, threshold, training-data fingerprint,
architecture, validation metrics) is stored as `pneumonet_metadata.json` inside the `.keras`
zip archive, so it can never be separated from the weights. `read_metadata` needs no
TensorFlow.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from pneumonet_core import CLASS_NAMES, __version__
from pneumonet_core.model import GRADCAM_LAYER
from pneumonet_core.preprocessing import PREPROCESSING

METADATA_ENTRY = "pneumonet_metadata.json"


class ModelLoadError(ValueError):
    """A model file that is missing, corrupt, or not a PneumoNet model."""


@dataclass
class ModelMetadata:
    """What a model needs to be used correctly, travelling inside its `.keras` file.

    Attributes:
        architecture: Name in `model.ARCHITECTURES`.
        image_size: Square input side in pixels.
        threshold: Decision threshold on the PNEUMONIA probability.
        class_names: Label names for outputs 0 and 1.
        preprocessing: The preprocessing contract the model was trained with.
        training_data_fingerprint: SHA-256 of the training files.
        metrics: Validation metrics measured when the model was saved.
    """

    architecture: str
    image_size: int
    threshold: float = 0.5
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    preprocessing: dict = field(default_factory=lambda: dict(PREPROCESSING))
    training_data_fingerprint: str = ""
    gradcam_layer: str = GRADCAM_LAYER
    name: str = "pneumonet"
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    run_id: str = ""
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    pneumonet_version: str = __version__

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelMetadata:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def _check_keras_path(path: Path) -> Path:
    if path.suffix != ".keras":
        raise ValueError(f"model files must end in .keras, got {str(path)!r}")
    return path


def save_model(model, path: str | os.PathLike, metadata: ModelMetadata) -> Path:
    """Save a model and its metadata atomically: readers never see a half-written file.

    Raises:
        ValueError: The path does not end in `.keras`.
        OSError: The folder cannot be created or written (message names the path).
    """
    path = _check_keras_path(Path(path).expanduser())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.stem}-", suffix=".keras"
        )
        os.close(handle)
    except OSError as error:
        raise OSError(f"cannot write the model to {path}: {error.strerror or error}") from None
    try:
        model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(METADATA_ENTRY, json.dumps(metadata.to_dict(), indent=2))
        os.replace(temporary, path)
    except OSError as error:
        raise OSError(f"cannot write the model to {path}: {error.strerror or error}") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """Read a model's metadata without loading TensorFlow.

    Raises:
        ModelLoadError: The file is missing, not a `.keras` archive, or has no metadata.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"no model file at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if METADATA_ENTRY not in names:
                raise ModelLoadError(
                    f"{path} is a Keras file without PneumoNet metadata; save it with "
                    "pneumonet_core.modelio.save_model"
                )
            values = json.loads(archive.read(METADATA_ENTRY))
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelLoadError(f"{path} is not a readable .keras model file ({error})") from None
    try:
        return ModelMetadata.from_dict(values)
    except TypeError as error:
        raise ModelLoadError(f"{path} has incomplete metadata ({error})") from None


def load_model(path: str | os.PathLike):
    """Load a model in Keras safe mode, with its metadata.

    Returns:
        `(model, metadata)`.

    Raises:
        ModelLoadError: The file is missing, corrupt, foreign, or does not match its metadata.
    """
    import keras

    metadata = read_metadata(path)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ModelLoadError(
            f"{path} could not be loaded as a Keras model ({first_line})"
        ) from None
    expected = (None, metadata.image_size, metadata.image_size, 1)
    if tuple(model.input_shape) != expected:
        raise ModelLoadError(
            f"{path}: model input {model.input_shape} does not match its metadata {expected}"
        )
    return model, metadata
