"""Out-of-distribution guard: flag inputs the model's probability cannot be trusted for.

A classifier trained on chest X-rays gives a confident-looking probability for anything, a
holiday photo included. Two layers of checks stop that from passing silently, and each flag
says which of two things is true:

- `NOT_A_CHEST_XRAY`: the simple checks on the decoded file (`simple_check`, in
  `inference.ood_checks`) found a colour, tiny, near-constant or extreme-aspect image, or
  DICOM tags saying it is another modality (CT, MR, ...) or body part (hand, knee, ...).
- `OUTSIDE_VALIDATED_USE`: a chest X-ray, as far as the simple checks can tell, but not one
  the model was validated on: a DICOM lateral view, or penultimate features (the input of the
  final Dense layer, `FEATURE_LAYER`) far from the training images' (`OodStatistics`:
  Mahalanobis distance to their mean under a Ledoit-Wolf shrunk covariance), as for an adult,
  another hospital's device or an unusual projection. The distance threshold is a high
  percentile of the patient-grouped validation split's distances: about 2% of X-rays flagged.
  Features `NOT_AN_XRAY_DISTANCE_RATIO` times that distance or more away are beyond any X-ray
  measured, and are called `NOT_A_CHEST_XRAY` (`ood_checks.feature_reason`).

Both mark the probability as unreliable (`Prediction.ood` is True); the reason starts with its
kind (`reason_kind` reads it back).

The fitted statistics travel inside the `.keras` file as the extra entry `OOD_ENTRY`. Training
stores them in every model it writes (`fit_on_images`); `fit_ood_for_model` (and
`pneumonet ood fit --model PATH`) fits them for an existing model the same way. A model
without them gets the simple checks only.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumonet_core.inference.ood_checks import (  # noqa: F401  (the simple checks, re-exported)
    NOT_A_CHEST_XRAY,
    NOT_A_CHEST_XRAY_SUMMARY,
    OOD_KINDS,
    OUTSIDE_VALIDATED_USE,
    SIMPLE_CHECKS_SUMMARY,
    UNRELIABLE_NOTE,
    feature_reason,
    flag_counts,
    ood_reason,
    reason_kind,
    simple_check,
)

OOD_ENTRY = "pneumonet_ood.npz"
FEATURE_LAYER = "pneumonia_probability"
DEFAULT_PERCENTILE = 98.0
DEFAULT_MAX_IMAGES = 2000  # images per part (training, validation) used for the fit


@dataclass
class OodStatistics:
    """The training features' distribution and the distance threshold.

    Attributes:
        mean: float64 (d,) mean feature vector of the training images.
        precision: float64 (d, d) inverse of the Ledoit-Wolf covariance.
        threshold: Mahalanobis distance above which an input is flagged.
        percentile: Percentile of the validation distances used as threshold.
        validation_flag_rate: Share of validation X-rays above the threshold, in [0, 1].
        n_fit: Number of training images the statistics were fitted on.
        n_validation: Number of validation images the threshold was chosen on.
        feature_layer: Name of the layer whose input are the features.
    """

    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    percentile: float = DEFAULT_PERCENTILE
    validation_flag_rate: float = 0.0
    n_fit: int = 0
    n_validation: int = 0
    feature_layer: str = FEATURE_LAYER

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distances of feature vectors: (n, d) -> (n,) float64, >= 0."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"expected features of shape (n, {self.mean.shape[0]}), got {features.shape}"
            )
        centred = features - self.mean  # the product in float32 (as stored): twice as fast
        squared = ((centred.astype(np.float32) @ self.precision_float32) * centred).sum(axis=1)
        return np.sqrt(np.maximum(squared, 0.0))

    # The precision as float32, converted once: what `distances` multiplies by.
    precision_float32 = functools.cached_property(lambda self: self.precision.astype(np.float32))

    def reasons(self, features: np.ndarray, chest_like: Sequence[bool]) -> list[str | None]:
        """Per input: a reason when it lies too far (`ood_checks.feature_reason`), else None.

        Args:
            features: (n, d) penultimate features.
            chest_like: n `looks_like_chest` flags (`feature_reason`'s second witness).
        """
        distances = self.distances(features)
        if len(chest_like) != len(distances):
            raise ValueError(f"expected {len(distances)} chest_like flags, got {len(chest_like)}")
        pairs = zip(distances, chest_like, strict=True)
        return [feature_reason(d, self.threshold, chest_like=bool(c)) for d, c in pairs]

    def to_bytes(self) -> bytes:
        """Serialise as .npz (no pickles); the precision as float32 (19 MB in float64 for an
        ensemble's 1536 features; distances change by far less than their spread)."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            mean=self.mean,
            precision=self.precision.astype(np.float32),
            threshold=np.float64(self.threshold),
            percentile=np.float64(self.percentile),
            validation_flag_rate=np.float64(self.validation_flag_rate),
            n_fit=np.int64(self.n_fit),
            n_validation=np.int64(self.n_validation),
            feature_layer=np.str_(self.feature_layer),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> OodStatistics:
        """Read `to_bytes` output.

        Raises:
            ValueError: The bytes are not OOD statistics.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                values = {key: archive[key] for key in archive.files}
            statistics = cls(
                mean=values["mean"].astype(np.float64),
                precision=values["precision"].astype(np.float64),
                threshold=float(values["threshold"]),
                percentile=float(values["percentile"]),
                validation_flag_rate=float(values["validation_flag_rate"]),
                n_fit=int(values["n_fit"]),
                n_validation=int(values["n_validation"]),
                feature_layer=str(values["feature_layer"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"not PneumoNet OOD statistics ({error})") from None
        dimension = statistics.mean.shape
        if len(dimension) != 1 or statistics.precision.shape != dimension * 2:
            raise ValueError(
                f"OOD statistics with mismatched shapes: mean {statistics.mean.shape}, "
                f"precision {statistics.precision.shape}"
            )
        return statistics


def fit_statistics(
    train_features: np.ndarray,
    validation_features: np.ndarray,
    *,
    percentile: float = DEFAULT_PERCENTILE,
) -> OodStatistics:
    """Fit the feature distribution on training images and the threshold on validation ones.

    Args:
        train_features: (n_train, d) features of training X-rays, n_train >= 2.
        validation_features: (n_val, d) features of held-out X-rays, n_val >= 1.
        percentile: The threshold is this percentile of the validation distances, in (50, 100].

    Returns:
        The fitted `OodStatistics`.

    Raises:
        ValueError: Too few images, mismatched dimensions or a bad percentile.
    """
    from sklearn.covariance import LedoitWolf

    if not 50.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (50, 100], got {percentile!r}")
    train_features = np.asarray(train_features, dtype=np.float64)
    validation_features = np.asarray(validation_features, dtype=np.float64)
    if train_features.ndim != 2 or len(train_features) < 2:
        raise ValueError(f"need at least 2 training feature vectors, got {train_features.shape}")
    if validation_features.ndim != 2 or validation_features.shape[1] != train_features.shape[1]:
        raise ValueError(
            f"validation features {validation_features.shape} do not match training "
            f"features {train_features.shape}"
        )
    if len(validation_features) < 1:
        raise ValueError("need at least 1 validation feature vector, got 0")
    estimator = LedoitWolf().fit(train_features)
    statistics = OodStatistics(
        mean=estimator.location_,
        precision=estimator.precision_,
        threshold=0.0,
        percentile=float(percentile),
        n_fit=len(train_features),
        n_validation=len(validation_features),
    )
    distances = statistics.distances(validation_features)
    statistics.threshold = threshold_flagging_at_most(distances, percentile)
    statistics.validation_flag_rate = float(np.mean(distances > statistics.threshold))
    return statistics


def threshold_flagging_at_most(distances: np.ndarray, percentile: float) -> float:
    """The smallest observed distance that flags at most (100 - percentile)% of `distances`.

    Args:
        distances: (n,) validation distances, n >= 1.
        percentile: In (50, 100]; e.g. 98 flags at most 2% (strictly greater distances).
    """
    ordered = np.sort(np.asarray(distances, dtype=np.float64))
    allowed = int(np.floor(len(ordered) * (100.0 - percentile) / 100.0 + 1e-9))
    return float(ordered[len(ordered) - 1 - allowed])


def feature_extractor(model):
    """A Keras model mapping images to `(probabilities (n, 1), features (n, d))`.

    Raises:
        ValueError: The model has no layer named `FEATURE_LAYER`.
    """
    import keras

    try:
        layer = model.get_layer(FEATURE_LAYER)
    except ValueError:
        raise ValueError(f"the model has no layer named {FEATURE_LAYER!r}") from None
    return keras.Model(model.input, [model.output, layer.input], name="with_features")


def compute_features(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Penultimate features of preprocessed images: (n, S, S, 1) -> (n, d) float32."""
    extractor = feature_extractor(model)
    parts = [
        np.asarray(extractor(images[start : start + batch_size], training=False)[1])
        for start in range(0, len(images), batch_size)
    ]
    width = int(extractor.outputs[1].shape[-1])
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.float32)


def save_statistics(model_path: str | os.PathLike, statistics: OodStatistics) -> Path:
    """Store the statistics inside the model file (atomic rewrite; metadata kept)."""
    from pneumonet_core.models.modelio import write_model_entries

    return write_model_entries(model_path, {OOD_ENTRY: statistics.to_bytes()})


def load_statistics(model_path: str | os.PathLike) -> OodStatistics | None:
    """The statistics stored in a model file, or None when it has none.

    Raises:
        ModelLoadError: The file is not a readable model, or its statistics are damaged.
    """
    from pneumonet_core.models.modelio import ModelLoadError, read_model_entry

    data = read_model_entry(model_path, OOD_ENTRY)
    if data is None:
        return None
    try:
        return OodStatistics.from_bytes(data)
    except ValueError as error:
        raise ModelLoadError(f"{model_path}: damaged {OOD_ENTRY} ({error})") from None


def sample_indices(count: int, max_images: int, seed: int) -> np.ndarray:
    """At most `max_images` of `range(count)`, drawn reproducibly for a seed, in order."""
    if max_images < 2:
        raise ValueError(f"max_images must be at least 2, got {max_images}")
    generator = np.random.default_rng(seed)
    return np.sort(generator.choice(count, size=min(count, max_images), replace=False))


def fit_on_images(
    model,
    train_images: np.ndarray,
    validation_images: np.ndarray,
    *,
    max_images: int = DEFAULT_MAX_IMAGES,
    percentile: float = DEFAULT_PERCENTILE,
    seed: int = 42,
) -> OodStatistics:
    """Fit the statistics on a reproducible sample of decoded training and validation images.

    Args:
        model: The trained classifier (must have the layer `FEATURE_LAYER`).
        train_images: float32 (n, S, S, 1) in [0, 1], the run's training part.
        validation_images: float32 (m, S, S, 1) in [0, 1], its validation part.
        max_images: At most this many images of each part are used (`sample_indices`).
        percentile: Validation percentile used as the distance threshold.
        seed: Seed of the sample.

    Raises:
        ValueError: Too few images, or no `FEATURE_LAYER` in the model.
    """
    train_sample = train_images[sample_indices(len(train_images), max_images, seed)]
    validation_sample = validation_images[sample_indices(len(validation_images), max_images, seed)]
    return fit_statistics(
        compute_features(model, train_sample),
        compute_features(model, validation_sample),
        percentile=percentile,
    )


def fit_ood_for_model(
    model_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    max_images: int = DEFAULT_MAX_IMAGES,
    percentile: float = DEFAULT_PERCENTILE,
    seed: int | None = None,
) -> OodStatistics:
    """Fit OOD statistics for an existing model, store them inside its file and return them.

    The training images are split by patient exactly as the model's training run did (its
    recorded seed, validation fraction and subset) and sampled as training samples them
    (`fit_on_images`), so this reproduces the statistics training stored.

    Args:
        model_path: A PneumoNet `.keras` file (rewritten atomically, metadata kept).
        data_dir: Dataset root holding `train/` (default: the model's, else `PNEUMONET_DATA`).
        max_images: At most this many images are used from each part (drawn reproducibly).
        percentile: Validation percentile used as the distance threshold.
        seed: Sample seed (default: the model's training seed, else 42); the split is the
            model's own unless `seed` is given.

    Raises:
        ModelLoadError: The model cannot be loaded.
        DatasetError: The data folder is missing or unusable.
        ValueError: Too few readable images.
    """
    from pneumonet_core.models.modelio import check_writable_destination, load_model

    check_writable_destination(model_path)
    model, metadata = load_model(model_path)
    split_seed = seed
    seed = int((metadata.training or {}).get("seed", 42) if seed is None else seed)
    train_frame, validation_frame = model_training_split(metadata, data_dir, split_seed)
    train_images = _load_sample(train_frame, metadata.image_size, max_images, seed)
    validation_images = _load_sample(validation_frame, metadata.image_size, max_images, seed)
    statistics = fit_on_images(
        model,
        train_images,
        validation_images,
        max_images=max_images,
        percentile=percentile,
        seed=seed,
    )
    save_statistics(model_path, statistics)
    return statistics


def training_split_settings(metadata=None, data_dir=None, seed: int | None = None) -> dict:
    """How a model's training run carved its patient-grouped split, from its metadata.

    Args:
        metadata: The model's `ModelMetadata` (its `training` settings); None: the defaults.
        data_dir: Dataset root (default: the model's, else `PNEUMONET_DATA`).
        seed: Split seed (default: the model's split seed, else its training seed, else 42).

    Returns:
        The `data.training_split` arguments: `data_dir` (str), `val_fraction` (default 0.2),
        `seed` and `subset_per_class` (None: every image).
    """
    from pneumonet_core.utils import config

    training = getattr(metadata, "training", None)
    training = training if isinstance(training, dict) else {}
    val_fraction, split_seed = training.get("val_fraction"), training.get("split_seed")
    if seed is None:
        seed = training.get("seed", 42) if split_seed is None else split_seed
    return {
        "data_dir": str(data_dir or training.get("data_dir") or config.data_root()),
        "val_fraction": float(0.2 if val_fraction is None else val_fraction),
        "seed": int(seed),
        "subset_per_class": training.get("subset_per_class"),
    }


def model_training_split(metadata, data_dir=None, seed: int | None = None):
    """The `(train_frame, val_frame)` a model's training run used (`training_split_settings`)."""
    from pneumonet_core.data import training_split

    settings = training_split_settings(metadata, data_dir, seed)
    return training_split(settings.pop("data_dir"), **settings)


def _load_sample(frame, image_size: int, max_images: int, seed: int) -> np.ndarray:
    """Decode the rows `sample_indices` picks: the images training sampled, as long as every
    file decoded (training skips unreadable files before sampling, so then they differ slightly).
    """
    from pneumonet_core.data import load_images

    chosen = frame.iloc[sample_indices(len(frame), max_images, seed)]
    return load_images(chosen["path"], image_size, on_error="skip").images
