"""`.keras` model files that carry their own metadata.

The metadata (class names, input size, preprocessing, threshold, training-data fingerprint,
architecture, validation metrics) is stored as `pneumonet_metadata.json` inside the `.keras`
zip archive, so it can never be separated from the weights. `read_metadata` needs no
TensorFlow.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from pneumonet_core import CLASS_NAMES, __version__
from pneumonet_core.imaging.preprocessing import PREPROCESSING
from pneumonet_core.models.architectures import GRADCAM_LAYER
from pneumonet_core.utils.errors import first_line

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


def save_model(
    model,
    path: str | os.PathLike,
    metadata: ModelMetadata,
    *,
    extra_entries: dict[str, bytes] | None = None,
) -> Path:
    """Save a model and its metadata atomically: readers never see a half-written file.

    Args:
        model: The Keras model.
        path: A `.keras` file.
        metadata: Written into the file as `METADATA_ENTRY`.
        extra_entries: More zip entries to store alongside (e.g. the OOD statistics).

    Raises:
        ValueError: The path does not end in `.keras`, or an extra entry name is reserved.
        OSError: The folder cannot be created or written (message names the path).
    """
    path = _check_keras_path(Path(path).expanduser())
    _check_entry_names(extra_entries or {})
    with _temporary_sibling(path, suffix=".keras", description="the model to ") as temporary:
        model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(METADATA_ENTRY, json.dumps(metadata.to_dict(), indent=2))
            for name, data in (extra_entries or {}).items():
                archive.writestr(name, data)
        os.replace(temporary, path)
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
                    "pneumonet_core.models.modelio.save_model"
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
        raise ModelLoadError(
            f"{path} could not be loaded as a Keras model ({first_line(error)})"
        ) from None
    expected = (None, metadata.image_size, metadata.image_size, 1)
    if tuple(model.input_shape) != expected:
        raise ModelLoadError(
            f"{path}: model input {model.input_shape} does not match its metadata {expected}"
        )
    return model, metadata


def read_model_entry(path: str | os.PathLike, entry: str) -> bytes | None:
    """The bytes of an extra entry stored inside a `.keras` file, or None if it has none.

    Raises:
        ModelLoadError: The file is missing or not a zip archive.
    """
    path = Path(path).expanduser()
    try:
        with zipfile.ZipFile(path) as archive:
            if entry not in archive.namelist():
                return None
            return archive.read(entry)
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelLoadError(f"{path} is not a readable .keras model file ({error})") from None


def write_model_entries(path: str | os.PathLike, entries: dict[str, bytes]) -> Path:
    """Add or replace extra entries inside a `.keras` file, atomically.

    The archive is rewritten into a temporary file next to it (every other entry, the weights
    and the metadata included, copied unchanged) and then `os.replace`d over the original, so
    readers see the old or the new file, never half of one.

    Args:
        path: An existing `.keras` model file.
        entries: Entry name -> content; Keras' own entries and the metadata may not be named.

    Raises:
        ValueError: An entry name is reserved.
        ModelLoadError: The file is not a readable `.keras` archive.
        OSError: The folder cannot be written (message names the path).
    """
    path = _check_keras_path(Path(path).expanduser())
    _check_entry_names(entries)
    read_metadata(path)
    with _temporary_sibling(path) as temporary:
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(temporary, "w") as target:
            for item in source.infolist():
                if item.filename not in entries:
                    target.writestr(item, source.read(item.filename))
            for name, content in entries.items():
                target.writestr(name, content, compress_type=zipfile.ZIP_DEFLATED)
        _fsync(temporary)
        os.replace(temporary, path)
    return path


KERAS_ENTRIES = ("config.json", "metadata.json", "model.weights.h5")


def _create_temporary(folder: Path, *, prefix: str, suffix: str) -> Path:
    """Create a new empty file in `folder` with the permissions of any file the user writes.

    Unlike `tempfile.mkstemp` (always owner-only), the mode is 0o666 less the umask, so a model
    in a shared run store is as readable as the user's other files.
    """
    while True:
        candidate = folder / f"{prefix}{secrets.token_hex(8)}{suffix}"
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return candidate


def _check_entry_names(entries: dict[str, bytes]) -> None:
    reserved = set(entries) & {METADATA_ENTRY, *KERAS_ENTRIES}
    if reserved:
        raise ValueError(f"entry names reserved for the model itself: {sorted(reserved)}")


@contextmanager
def _temporary_sibling(
    path: Path, *, suffix: str = ".tmp", description: str = ""
) -> Iterator[Path]:
    """A fresh temporary file in `path`'s folder, always removed on exit (unless replaced).

    Args:
        path: The file the temporary will replace.
        suffix: The temporary's suffix (Keras only saves to `.keras` names).
        description: Words before the path in error messages ("the model to ").

    Raises:
        OSError: The folder cannot be written; the message names `path`.
    """
    message = f"cannot write {description}{path}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = _create_temporary(path.parent, prefix=f".{path.stem}-", suffix=suffix)
    except OSError as error:
        raise OSError(f"{message}: {error.strerror or error}") from None
    try:
        yield temporary
    except OSError as error:
        if str(path) in str(error):
            raise
        raise OSError(f"{message}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def check_writable_destination(path: str | os.PathLike) -> Path:
    """Fail fast when a model could not be written to `path` (call before long work).

    Creates the folder if needed and writes (then removes) a small probe file there, so a
    read-only folder, a missing permission or a full disk is reported now, not after training.

    Returns:
        The path, expanded.

    Raises:
        ValueError: The path does not end in `.keras`, or is an existing folder.
        OSError: The folder cannot be created or written; the message names the path.
    """
    path = _check_keras_path(Path(path).expanduser())
    if path.is_dir():
        raise ValueError(f"the model path {path} is a folder; name a .keras file")
    with _temporary_sibling(path, description="the model to ") as probe:
        probe.write_bytes(b"\0" * 65536)  # a full disk shows up here or at the fsync
        _fsync(probe)
    return path


def promote_model(
    source_path: str | os.PathLike, destination: str | os.PathLike | None = None
) -> Path:
    """Make a model the active one, atomically.

    The source is first loaded (safe mode, metadata checked); it is then copied into a
    temporary file in the destination folder, flushed to disk and `os.replace`d over the
    destination. A crash at any point leaves the previous active model in place: a
    half-written model is never active.

    Args:
        source_path: A PneumoNet `.keras` file.
        destination: Where the active model lives (default: `config.promoted_model_path()`).

    Returns:
        The destination path.

    Raises:
        ModelLoadError: The source does not load as a PneumoNet model.
        OSError: The destination cannot be written (message names the path).
    """
    from pneumonet_core.utils import config

    source = Path(source_path).expanduser()
    target = _check_keras_path(Path(destination or config.promoted_model_path()).expanduser())
    load_model(source)
    with _temporary_sibling(target) as temporary:
        with open(source, "rb") as reader, open(temporary, "wb") as writer:
            _copy_into(reader, writer)
            writer.flush()
            os.fsync(writer.fileno())
        read_metadata(temporary)
        os.replace(temporary, target)
    return target


def _copy_into(reader, writer) -> None:
    """Copy one open binary file into another (a seam for crash tests)."""
    shutil.copyfileobj(reader, writer)
