"""Dataset discovery, the patient-grouped validation split, and tf.data pipelines.

A dataset root is laid out as `{train,val,test}/{NORMAL,PNEUMONIA}/*` (any subset of the
splits); a single split folder holds `NORMAL/` and `PNEUMONIA/` directly. TensorFlow is
imported only by `make_dataset`, so scanning a dataset stays fast.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pneumonet_core import CLASS_NAMES
from pneumonet_core.imaging import IMAGE_SUFFIXES, ImageReadError
from pneumonet_core.imaging.preprocessing import preprocess_image

SPLITS = ("train", "val", "test")
IGNORED_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")
FRAME_COLUMNS = ["path", "split", "label", "label_index", "patient_id"]

_PERSON_PATTERN = re.compile(r"(person\d+)_", re.IGNORECASE)
_IM_PATTERN = re.compile(r"(IM-\d{4})", re.IGNORECASE)


class DatasetError(ValueError):
    """A dataset folder that cannot be used; the message names the folder and what to do."""


@dataclass
class DatasetScan:
    """What was found under a dataset root.

    Attributes:
        root: The folder that was scanned.
        frame: One row per image file: `path, split, label, label_index, patient_id`.
        problems: Human-readable problems (missing or empty folders, foreign files).
    """

    root: Path
    frame: pd.DataFrame
    problems: list[str] = field(default_factory=list)

    def counts(self) -> pd.DataFrame:
        """Image counts: one row per split, one column per class, plus a total."""
        table = pd.crosstab(self.frame["split"], self.frame["label"])
        table = table.reindex(columns=list(CLASS_NAMES), fill_value=0)
        table["total"] = table.sum(axis=1)
        return table

    def split(self, name: str) -> pd.DataFrame:
        """The rows of one split (empty when that split is absent)."""
        return self.frame[self.frame["split"] == name].reset_index(drop=True)


def patient_id(filename: str) -> str:
    """Patient identifier carried by a Kermany et al. file name.

    `person12_bacteria_47.jpeg` -> `person12`; `IM-0117-0001.jpeg` and
    `NORMAL2-IM-0587-0001-0002.jpeg` -> `IM-0117`, `IM-0587`. Any other name is its own
    patient (its stem), so unknown names can never join two patients together.
    """
    name = Path(filename).name
    for pattern in (_PERSON_PATTERN, _IM_PATTERN):
        match = pattern.search(name)
        if match:
            return match.group(1).upper() if pattern is _IM_PATTERN else match.group(1).lower()
    return Path(name).stem


def missing_dataset_message(root: Path) -> str:
    """The one-line reason given for a dataset folder that does not exist."""
    return (
        f"dataset folder {root} does not exist; set PNEUMONET_DATA or pass the folder that "
        "holds train/ (or NORMAL/ and PNEUMONIA/)"
    )


def scan_dataset(root: str | os.PathLike) -> DatasetScan:
    """Find every image under a dataset root or a single split folder.

    Args:
        root: A folder with `train/`, `val/` and/or `test/`, each holding `NORMAL/` and
            `PNEUMONIA/`; or a folder holding `NORMAL/` and `PNEUMONIA/` directly (its split is
            then named after the folder).

    Raises:
        DatasetError: The folder is missing or contains no recognisable split.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(missing_dataset_message(root))
    if _is_split_folder(root):
        split_folders = {root.name: root}
    else:
        split_folders = {name: root / name for name in SPLITS if (root / name).is_dir()}
    if not split_folders:
        raise DatasetError(
            f"{root} holds neither train/, val/, test/ nor NORMAL/ and PNEUMONIA/ folders; "
            "lay the images out as <root>/train/NORMAL/*.jpeg and <root>/train/PNEUMONIA/*.jpeg"
        )
    rows, problems = [], []
    for split_name, folder in split_folders.items():
        split_rows, split_problems = _scan_split(folder, split_name)
        rows += split_rows
        problems += split_problems
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    return DatasetScan(root=root, frame=frame, problems=problems)


def _is_split_folder(folder: Path) -> bool:
    return any((folder / label).is_dir() for label in CLASS_NAMES)


def _scan_split(folder: Path, split_name: str) -> tuple[list[dict], list[str]]:
    rows, problems = [], []
    for label_index, label in enumerate(CLASS_NAMES):
        class_folder = folder / label
        if not class_folder.is_dir():
            problems.append(
                f"{class_folder}: missing class folder; create it and put {label} images in it"
            )
            continue
        images, foreign = _list_images(class_folder)
        if not images:
            problems.append(f"{class_folder}: no images (expected .jpeg, .jpg or .png files)")
        for path in foreign:
            problems.append(f"{path}: not an image file name, ignored")
        rows += [
            {
                "path": str(path),
                "split": split_name,
                "label": label,
                "label_index": label_index,
                "patient_id": patient_id(path.name),
            }
            for path in images
        ]
    return rows, problems


def _list_images(folder: Path) -> tuple[list[Path], list[Path]]:
    images, foreign = [], []
    for path in sorted(folder.iterdir()):
        if path.name in IGNORED_NAMES or path.name.startswith("."):
            continue
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        else:
            foreign.append(path)
    return images, foreign


def split_by_patient(
    frame: pd.DataFrame, *, val_fraction: float = 0.2, seed: int = 42
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carve a validation split whose patients never appear in the training part.

    Stratified by class and deterministic for a seed (scikit-learn's StratifiedGroupKFold,
    taking one fold as validation).

    Args:
        frame: Rows of `scan_dataset(...).frame` with `label_index` and `patient_id`.
        val_fraction: Share of images for validation, in (0, 0.5].

    Returns:
        `(train_frame, val_frame)`, each with a fresh index.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if not 0.0 < val_fraction <= 0.5:
        raise ValueError(f"val_fraction must be in (0, 0.5], got {val_fraction!r}")
    n_splits = max(2, round(1 / val_fraction))
    if frame["patient_id"].nunique() < n_splits:
        raise ValueError(
            f"need at least {n_splits} patients to hold out {val_fraction:.0%}, "
            f"found {frame['patient_id'].nunique()}"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train_index, val_index = next(
        splitter.split(frame, frame["label_index"], groups=frame["patient_id"])
    )
    return (
        frame.iloc[train_index].reset_index(drop=True),
        frame.iloc[val_index].reset_index(drop=True),
    )


def training_split(
    root: str | os.PathLike,
    *,
    val_fraction: float = 0.2,
    seed: int = 42,
    subset_per_class: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `(train_frame, val_frame)` a training run carves from `<root>/train/`.

    Training, the OOD fit, the accuracy benchmark and the dashboard's validation view all call
    this, so they see the same patients on the same side for the same settings.

    Args:
        root: Dataset root holding `train/NORMAL` and `train/PNEUMONIA`.
        val_fraction: Share of patients held out, in (0, 0.5].
        seed: Seed of the subset and the split.
        subset_per_class: Use at most this many images per class first (quick runs).

    Raises:
        DatasetError: `root` has no `train/` images (the message lists the problems found).
    """
    scan = scan_dataset(root)
    frame = scan.split("train")
    if frame.empty:
        raise DatasetError(f"{scan.root} has no train/ images; problems: {scan.problems}")
    if subset_per_class:
        frame = stratified_subset(frame, per_class=int(subset_per_class), seed=seed)
    return split_by_patient(frame, val_fraction=val_fraction, seed=seed)


def stratified_subset(frame: pd.DataFrame, *, per_class: int, seed: int = 0) -> pd.DataFrame:
    """Up to `per_class` rows of each class, drawn reproducibly (for quick runs and tests)."""
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    parts = [
        group.sample(n=min(per_class, len(group)), random_state=seed)
        for _, group in frame.groupby("label_index", sort=True)
    ]
    return pd.concat(parts).sort_values("path").reset_index(drop=True)


def class_weights(labels: Sequence[int]) -> dict[int, float]:
    """Balanced class weights (n_samples / (n_classes * count)), e.g. for 1 : 2.9 imbalance."""
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels).astype(int)
    present = np.unique(labels)
    if present.size < 2:
        raise ValueError(f"class weights need both classes, got only {present.tolist()}")
    weights = compute_class_weight("balanced", classes=present, y=labels)
    return {int(label): float(weight) for label, weight in zip(present, weights, strict=True)}


def data_fingerprint(paths: Sequence[str | os.PathLike]) -> str:
    """SHA-256 over the names and contents of the files, independent of their order."""
    digest = hashlib.sha256()
    for path in sorted(str(p) for p in paths):
        digest.update(Path(path).name.encode())
        digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()


@dataclass
class LoadedImages:
    """Decoded model inputs and the files that could not be read.

    Attributes:
        images: float32 array (n_ok, image_size, image_size, 1) in [0, 1].
        kept: Boolean mask over the requested paths: True where the image was decoded.
        errors: `(path, reason)` for every file that could not be read.
    """

    images: np.ndarray
    kept: np.ndarray
    errors: list[tuple[str, str]]


def load_images(
    paths: Sequence[str | os.PathLike],
    image_size: int,
    *,
    on_error: str = "raise",
    workers: int | None = None,
) -> LoadedImages:
    """Decode and preprocess images in parallel threads (the preprocessing contract).

    Args:
        paths: Image files.
        image_size: Side of the square model input.
        on_error: "raise" stops at the first unreadable file with its path in the message;
            "skip" leaves it out and reports it in `errors`.
        workers: Decoding threads (default: the number of CPUs).

    Raises:
        DatasetError: A file cannot be read and `on_error` is "raise".
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    paths = [str(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda p: _try_preprocess(p, image_size), paths))
    errors = [
        (path, result)
        for path, result in zip(paths, results, strict=True)
        if isinstance(result, str)
    ]
    if errors and on_error == "raise":
        path, reason = errors[0]
        raise DatasetError(
            f"cannot read {path}: {reason}. Remove or replace the file, or skip unreadable "
            "files (--on-error skip)"
        )
    kept = np.array([not isinstance(result, str) for result in results], dtype=bool)
    arrays = [result for result in results if not isinstance(result, str)]
    shape = (0, image_size, image_size, 1)
    images = np.stack(arrays) if arrays else np.zeros(shape, dtype=np.float32)
    return LoadedImages(images=images, kept=kept, errors=errors)


def _try_preprocess(path: str, image_size: int) -> np.ndarray | str:
    try:
        return preprocess_image(path, image_size)
    except ImageReadError as error:
        return str(error)


def make_dataset(
    images: np.ndarray,
    labels: Sequence[int],
    *,
    batch_size: int = 32,
    training: bool = False,
    augmentation=None,
    seed: int = 42,
):
    """A batched tf.data pipeline over decoded, in-memory (cached) images.

    Args:
        images: float32 (n, size, size, 1) in [0, 1], e.g. `load_images(...).images`.
        labels: n labels, 0 = NORMAL, 1 = PNEUMONIA.
        batch_size: Images per batch.
        training: Shuffle each epoch and apply `augmentation`. Evaluation pipelines never
            shuffle, so predictions stay aligned with labels and file names.
        augmentation: A Keras layer/model applied per batch in parallel (training only).

    Returns:
        tf.data.Dataset of `(images, labels)` batches, labels float32 of shape (batch, 1).
    """
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, 1)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if training:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if training and augmentation is not None:
        # Sequential on purpose: the random layers share one seed-generator state, and parallel
        # calls would draw from it in a racy order, so a seed would no longer give one result.
        # Prefetching still overlaps augmentation with training.
        dataset = dataset.map(lambda x, y: (augmentation(x, training=True), y))
    return dataset.prefetch(tf.data.AUTOTUNE)
