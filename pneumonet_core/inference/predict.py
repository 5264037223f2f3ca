"""Inference: load a model and its metadata once, then predict images from paths or bytes.

`Predictor.predict` streams many images; `Predictor.explain` gives one image's prediction with
its Grad-CAM and a display-size copy of the image, decoding it once.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pneumonet_core.imaging import (
    ImageInfo,
    ImageReadError,
    ImageSource,
    read_image_with_info,
)
from pneumonet_core.imaging.preprocessing import preprocess_image, resize_array, resize_image
from pneumonet_core.inference import ood
from pneumonet_core.inference.chest_likeness import looks_like_chest
from pneumonet_core.inference.streaming import DRAFT_FACTOR, prefetched_batches
from pneumonet_core.inference.streaming import expand_inputs as expand_inputs  # re-exported
from pneumonet_core.models.modelio import ModelLoadError, load_model
from pneumonet_core.utils import config

# A decoded model input, its simple OOD reason (or None), and whether it looks like a chest.
PreparedInput = tuple[np.ndarray, str | None, bool]
DISPLAY_SIZE = 512  # longest side, in pixels, of the image `Predictor.explain` returns


def check_threshold(threshold: float) -> float:
    """The threshold as a float; ValueError unless it is a number with 0 < threshold < 1."""
    if not (isinstance(threshold, numbers.Real) and math.isfinite(threshold) and 0 < threshold < 1):
        raise ValueError(f"threshold must be a number strictly between 0 and 1, got {threshold!r}")
    return float(threshold)


@dataclass
class Prediction:
    """One image's result; `error` is set (and the rest None) when it could not be read.

    Attributes:
        label: The class at `threshold`; None when the image could not be read and when it is
            not a chest X-ray (`is_not_a_chest_xray`): such an image gets no label anywhere.
        ood: True when the input is not a chest X-ray or is outside the model's validated
            use: the probability is still reported but must not be relied on.
        ood_reason: Why, None when `ood` is False. It starts with its kind,
            `ood.NOT_A_CHEST_XRAY` ("not a chest X-ray: ...") or `ood.OUTSIDE_VALIDATED_USE`
            ("outside validated use: ..."), and ends with "prediction not reliable".
    """

    file: str
    probability: float | None
    label: str | None
    threshold: float
    error: str | None = None
    ood: bool = False
    ood_reason: str | None = None

    @property
    def is_not_a_chest_xray(self) -> bool:
        """Whether the guard found the input not to be a chest X-ray (no label, no result)."""
        return self.ood_reason is not None and (
            ood.reason_kind(self.ood_reason) == ood.NOT_A_CHEST_XRAY
        )

    def to_dict(self) -> dict:
        """The result as plain values (`label` None, JSON null, for a non-X-ray)."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Explanation:
    """One image's prediction with its Grad-CAM, ready to show (`Predictor.explain`).

    Attributes:
        prediction: What `Predictor.predict` gives for the same file (never an `error`).
        image: The decoded image for display, float32 (h, w) in [0, 1]: the original's aspect
            ratio, its longer side at most `display_size` pixels (never enlarged).
        heatmap: Grad-CAM of the evidence for PNEUMONIA at the display image's size, float32
            (h, w) in [0, 1]; higher where the PNEUMONIA score rose most. None when not asked
            for (`explain(..., with_heatmap=False)`; `grad_cam(model_input)` gives it later).
        info: What decoding learned about the original file (format, size, DICOM tags...).
        model_input: The model's input, float32 (S, S, 1) in [0, 1].
    """

    prediction: Prediction
    image: np.ndarray
    heatmap: np.ndarray | None
    info: ImageInfo
    model_input: np.ndarray | None = None


def missing_model_message(path: Path) -> str:
    return (
        f"no model at {path}. Train one (pneumonet train --out model.keras) and pass "
        "--model model.keras, or set PNEUMONET_MODEL"
    )


class Predictor:
    """A loaded model with its metadata, ready to predict and explain.

    One Predictor can serve many threads at once (the dashboard shares one per model file).

    Args:
        model_path: A `.keras` file saved by PneumoNet. The active model (`PNEUMONET_MODEL`,
            else the registry's active version, else the shipped model) comes from
            `governance.registry.active_predictor()`.
        threshold: An operating threshold strictly between 0 and 1 that replaces the file's
            own (default: the file's threshold).
        model_label: Which model it is, as shown and audited (default: "run <run id>" or
            "named file").
        version: The registry version the file belongs to, if any.
        operating_point: The registry's site operating point that `threshold` comes from.

    Attributes:
        path: The `.keras` file.
        model_label: Which model it is, as shown and audited: "registry version 3",
            "PNEUMONET_MODEL", "shipped", or for a named file "run <run id>" or "named file".
        version: The registry version, or None when the model was not resolved from it.
        operating_point: The `registry.OperatingPoint` whose threshold is used, or None.

    Raises:
        ModelLoadError: The file is missing, corrupt or not a PneumoNet model.
        ValueError: The threshold is not strictly between 0 and 1.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        threshold: float | None = None,
        *,
        model_label: str | None = None,
        version: int | None = None,
        operating_point=None,
    ):
        self.path = Path(model_path)
        self.version = version
        self.operating_point = operating_point
        self._threshold = None if threshold is None else check_threshold(threshold)
        self._model_label = model_label
        if not self.path.exists():
            raise ModelLoadError(missing_model_message(self.path))
        config.quiet_tensorflow()
        import tensorflow as tf

        self.model, self.metadata = load_model(self.path)
        run = f"run {self.metadata.run_id}" if self.metadata.run_id else "named file"
        self.model_label = model_label or run
        self.ood_statistics = ood.load_statistics(self.path)
        size = self.metadata.image_size
        signature = [tf.TensorSpec((None, size, size, 1), tf.float32)]
        # autograph=False: nothing to convert, and autograph would write generated code files
        # to the temporary folder (predicting must write no file at all).
        self._forward = tf.function(
            lambda images: self.model(images, training=False),
            input_signature=signature,
            autograph=False,
        )
        self._grad_cam = None
        self._grad_cam_lock = threading.Lock()
        self._forward_with_features = None
        if self.ood_statistics is not None:
            extractor = ood.feature_extractor(self.model)
            self._forward_with_features = tf.function(
                lambda images: extractor(images, training=False),
                input_signature=signature,
                autograph=False,
            )

    @property
    def threshold(self) -> float:
        """The operating threshold in [0, 1]: the override if any, else the file's own."""
        return float(self.metadata.threshold) if self._threshold is None else self._threshold

    def with_threshold(self, threshold: float | None) -> Predictor:
        """This model at another operating threshold, sharing the loaded model (no reload).

        Args:
            threshold: Strictly between 0 and 1; None for the model file's own threshold.

        Returns:
            A new Predictor (this one is unchanged); its `operating_point` is None.

        Raises:
            ValueError: The threshold is not strictly between 0 and 1.
        """
        other = copy.copy(self)
        other._threshold = None if threshold is None else check_threshold(threshold)
        other.operating_point = None
        return other

    @property
    def image_size(self) -> int:
        return int(self.metadata.image_size)

    @property
    def grad_cam(self):
        """The model's `explain.GradCam` (on its metadata's `gradcam_layer`), built on first use.

        Built once per Predictor, under a lock; calling it from several threads at once is safe.
        Called on one model input (S, S, 1), it returns float32 (S, S) in [0, 1].
        """
        if self._grad_cam is None:
            with self._grad_cam_lock:
                if self._grad_cam is None:
                    from pneumonet_core.inference.explain import GradCam

                    self._grad_cam = GradCam(self.model, self.metadata.gradcam_layer)
        return self._grad_cam

    def label_for(self, probability: float) -> str:
        """Class name for a PNEUMONIA probability at the model's threshold."""
        return self.metadata.class_names[int(probability >= self.threshold)]

    def preprocess(self, source: ImageSource) -> np.ndarray:
        """The model input for one image: (S, S, 1) float32 in [0, 1]."""
        return preprocess_image(source, self.image_size)

    def predict_arrays(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """PNEUMONIA probabilities for preprocessed images (n, S, S, 1) -> (n,)."""
        images = np.asarray(images, dtype=np.float32)
        self._check_batch_shape(images)
        outputs = [
            np.asarray(self._forward(images[start : start + batch_size])).reshape(-1)
            for start in range(0, len(images), batch_size)
        ]
        return np.concatenate(outputs) if outputs else np.zeros(0, dtype=np.float32)

    def predict_arrays_with_ood(
        self,
        images: np.ndarray,
        batch_size: int = 32,
        chest_like: Sequence[bool] | None = None,
    ) -> tuple[np.ndarray, list[str | None]]:
        """Probabilities and feature-distance OOD reasons for preprocessed images.

        Args:
            images: float32 (n, S, S, 1) in [0, 1].
            batch_size: Images per model call.
            chest_like: `looks_like_chest` of each image when the caller has it already
                (computed here otherwise).

        Returns:
            `(probabilities (n,), reasons)`: a reason (str) per image whose features are far
            from the training X-rays, None otherwise (always None without OOD statistics).
        """
        if self._forward_with_features is None:
            probabilities = self.predict_arrays(images, batch_size)
            return probabilities, [None] * len(probabilities)
        images = np.asarray(images, dtype=np.float32)
        self._check_batch_shape(images)
        if chest_like is None:
            chest_like = [looks_like_chest(image) for image in images]
        probabilities, reasons = [], []
        for start in range(0, len(images), batch_size):
            output, features = self._forward_with_features(images[start : start + batch_size])
            probabilities.append(np.asarray(output).reshape(-1))
            witnesses = chest_like[start : start + batch_size]
            reasons += self.ood_statistics.reasons(np.asarray(features), witnesses)
        joined = np.concatenate(probabilities) if probabilities else np.zeros(0, np.float32)
        return joined, reasons

    def assess(self, model_input: np.ndarray, info: ImageInfo, name: str) -> Prediction:
        """Predict one decoded image with both OOD checks (for callers that decode themselves).

        Args:
            model_input: float32 (S, S, 1) in [0, 1], from `resize_image`.
            info: From `imaging.read_image_with_info`.
            name: File name shown in the result.
        """
        checked = (model_input, ood.simple_check(model_input, info), looks_like_chest(model_input))
        return next(self._finish([(name, checked)]))

    def explain(
        self,
        source: ImageSource,
        name: str | None = None,
        display_size: int = DISPLAY_SIZE,
        with_heatmap: bool = True,
    ) -> Explanation:
        """Predict one image and explain it with Grad-CAM, decoding and preprocessing it once.

        Args:
            source: A path, bytes or binary file object, as `predict` accepts.
            name: File name shown in the result (default: as `predict` names it).
            display_size: Longest side of the returned display image in pixels, at least 1.
            with_heatmap: False skips Grad-CAM (the `heatmap` is None), e.g. until it is shown.

        Returns:
            The prediction (probability, label and both OOD checks, as `predict` gives them),
            the display image and the Grad-CAM heatmap at its size.

        Raises:
            ImageReadError: The source cannot be decoded; the message is one line for the user
                (`predict` reports the same message as `Prediction.error`).
            ValueError: `display_size` is below 1.
        """
        if display_size < 1:
            raise ValueError(f"display_size must be at least 1, got {display_size!r}")
        name = _display_name(source) if name is None else name
        gray, info = read_image_with_info(source)
        model_input = resize_image(gray, self.image_size)
        prediction = self.assess(model_input, info, name)
        image = _fit_within(gray, display_size)
        heatmap = resize_array(self.grad_cam(model_input), image.shape) if with_heatmap else None
        return Explanation(prediction, image, heatmap, info, model_input)

    def _check_batch_shape(self, images: np.ndarray) -> None:
        expected = (self.image_size, self.image_size, 1)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"expected images of shape (n, {expected}), got {images.shape}")

    def predict(
        self,
        sources: Sequence[ImageSource],
        names: Sequence[str] | None = None,
        batch_size: int = 32,
    ) -> list[Prediction]:
        """Predict every source; unreadable ones get an `error` and do not stop the rest."""
        return list(self.iter_predict(sources, names, batch_size=batch_size))

    def iter_predict(
        self,
        sources: Iterable[ImageSource],
        names: Iterable[str] | None = None,
        batch_size: int = 32,
    ) -> Iterator[Prediction]:
        """Stream predictions batch by batch, so memory stays bounded for large folders.

        Images are decoded in a thread pool, the next batch while the model runs on the
        current one (`streaming.prefetched_batches`); a large JPEG is decoded straight at a
        reduced scale that keeps at least `streaming.DRAFT_FACTOR` times the model's input.
        """
        if names is None:
            named = ((_display_name(source), source) for source in sources)
        else:
            named = zip(names, sources, strict=False)  # as many as the shorter, as before
        for batch in prefetched_batches(named, batch_size, self._try_preprocess):
            yield from self._finish(batch)

    def _try_preprocess(self, source: ImageSource) -> PreparedInput | str:
        """(model input, simple OOD reason or None, chest-like), or the one-line error."""
        try:
            gray, info = read_image_with_info(source, min_side=DRAFT_FACTOR * self.image_size)
        except ImageReadError as error:
            return str(error)
        model_input = resize_image(gray, self.image_size)
        return model_input, ood.simple_check(model_input, info), looks_like_chest(model_input)

    def _finish(self, pending: list[tuple[str, PreparedInput | str]]) -> Iterator[Prediction]:
        prepared = [item for _, item in pending if not isinstance(item, str)]
        probabilities, feature_reasons = (
            self.predict_arrays_with_ood(
                np.stack([item[0] for item in prepared]), chest_like=[item[2] for item in prepared]
            )
            if prepared
            else ([], [])
        )
        results = iter(zip(probabilities, feature_reasons, strict=True))
        for name, item in pending:
            if isinstance(item, str):
                yield Prediction(name, None, None, self.threshold, error=item)
                continue
            probability, feature_reason = next(results)
            reason = item[1] or feature_reason
            no_label = reason is not None and ood.reason_kind(reason) == ood.NOT_A_CHEST_XRAY
            yield Prediction(
                name,
                float(probability),
                None if no_label else self.label_for(float(probability)),
                self.threshold,
                ood=reason is not None,
                ood_reason=reason,
            )


def _display_name(source: ImageSource) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    return getattr(source, "name", "uploaded file")


def _fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    """A 2-D image shrunk (aspect ratio kept) so its longer side is at most `max_side`."""
    height, width = image.shape
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return image.astype(np.float32)
    return resize_array(image, (max(1, round(height * scale)), max(1, round(width * scale))))
