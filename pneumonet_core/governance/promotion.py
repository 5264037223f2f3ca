"""The promotion gate: a model becomes the active version only when it learned.

Before a model is promoted (`audited.promote`), it and the active model are scored on the same
labelled images of the configured data root (`config.data_root()`):

- the validation split: the patients of `<data root>/train` that the candidate's training run
  held out (`inference.ood.model_training_split`, from its recorded split seed and fraction);
- the development folder `<data root>/test`, when there is one.

Each model is scored at its own threshold. At most `DEFAULT_MAX_PER_CLASS` images per class of
each set are scored (for speed), drawn reproducibly (`data.stratified_subset`, seed 0);
`max_per_class=None` scores every image. A model's figures are
cached in `<PNEUMONET_HOME>/promotion/<sha256>.json`, keyed on the images scored (their
`data.data_fingerprint`), so the active version is not scored again for every candidate.

The verdict is "better than active" (promote), "worse than active", "did not learn" or "cannot
check" (no labelled images found): the last three are refused unless an `ml` user types an
override reason, which the audit trail and the version's tags keep.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path

from pneumonet_core.utils import config
from pneumonet_core.utils.atomic import write_json_atomically

# ROC-AUC below this on any scored set: the model did not learn.
FLOOR_ROC_AUC = 0.90
# ROC-AUC lower than the active version's by more than this on any set: worse than active.
WORSE_MARGIN_ROC_AUC = 0.01
# Images per class scored on each set (speed); None scores every image.
DEFAULT_MAX_PER_CLASS = 200
DEVELOPMENT_FOLDER = "test"
VALIDATION_SET = "validation split"
DEVELOPMENT_SET = "development folder"
BETTER, WORSE, DID_NOT_LEARN, CANNOT_CHECK = (
    "better than active",
    "worse than active",
    "did not learn",
    "cannot check",
)
MAX_REASON_CHARACTERS = 200
FIGURE_NAMES = ("roc_auc", "accuracy", "sensitivity", "specificity")


@dataclasses.dataclass(frozen=True)
class SetFigures:
    """One model on one set of labelled images, at the model's own threshold."""

    name: str
    n_images: int
    threshold: float
    roc_auc: float
    accuracy: float
    sensitivity: float
    specificity: float


@dataclasses.dataclass(frozen=True)
class ModelFigures:
    """A model's figures on each set found, and whether it met its shortcut-audit targets
    (None: the audit could not run)."""

    label: str
    sha256: str
    sets: tuple[SetFigures, ...]
    shortcut_audit_passed: bool | None

    def on(self, name: str) -> SetFigures | None:
        """Its figures on the set called `name`, or None."""
        return next((item for item in self.sets if item.name == name), None)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The gate's answer: `kind` (one of the four), the reasons, and the figures compared."""

    kind: str
    reasons: tuple[str, ...]
    candidate: ModelFigures | None
    active: ModelFigures | None

    @property
    def passed(self) -> bool:
        """Whether the model may be promoted without an override reason."""
        return self.kind == BETTER

    def table(self) -> list[dict]:
        """Rows `set, figure, candidate, active` (numbers or None), side by side."""
        names = [item.name for item in self.candidate.sets] if self.candidate else []
        rows = []
        for name in names:
            mine, theirs = self.candidate.on(name), self.active.on(name) if self.active else None
            for figure in ("n_images", "threshold", *FIGURE_NAMES):
                other = getattr(theirs, figure) if theirs else None
                row = {"set": name, "figure": figure, "candidate": getattr(mine, figure)}
                rows.append(row | {"active": other})
        return rows

    def describe(self) -> str:
        """The verdict, its reasons and the side-by-side figures, as plain text lines."""
        lines = [f"Promotion gate: {self.kind}"] + [f"  - {reason}" for reason in self.reasons]
        if self.candidate:
            active = self.active.label if self.active else "no active model"
            lines.append(f"  {'set':<20}{'figure':<14}{'candidate':>12}{active:>28}")
            for row in self.table():
                cells = (_cell(row["candidate"]), _cell(row["active"]))
                lines.append(f"  {row['set']:<20}{row['figure']:<14}{cells[0]:>12}{cells[1]:>28}")
        return "\n".join(lines)


class PromotionRefused(ValueError):
    """The gate refused the model and no override reason was given; `.verdict` says why."""

    def __init__(self, verdict: Verdict):
        super().__init__(
            f"promotion refused: {verdict.kind} ({'; '.join(verdict.reasons)}); an ml user may "
            "promote it anyway with a typed override reason"
        )
        self.verdict = verdict


def _cell(value) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def check_override_reason(reason: str) -> str:
    """The override reason, stripped; ValueError unless it is one non-empty line of at most 200
    characters without a slash (it goes into the audit trail, which holds no paths)."""
    text = reason.strip() if isinstance(reason, str) else ""
    forbidden = any(mark in text for mark in ("\n", "\r", "/", "\\"))
    if not text or forbidden or len(text) > MAX_REASON_CHARACTERS:
        raise ValueError(
            f"the override reason must be one non-empty line of at most {MAX_REASON_CHARACTERS} "
            f"characters, without slashes; got {reason!r}"
        )
    return text


def decide(candidate: ModelFigures | None, active: ModelFigures | None) -> Verdict:
    """The verdict from the figures (`CANNOT_CHECK` when the candidate was scored on nothing)."""
    if candidate is None or not candidate.sets:
        reason = "no labelled images found under the data root, so the gate cannot check it"
        return Verdict(CANNOT_CHECK, (reason,), candidate, active)
    low = [
        f"ROC-AUC {item.roc_auc:.3f} on the {item.name} is below the floor {FLOOR_ROC_AUC:.2f}"
        for item in candidate.sets
        if not item.roc_auc >= FLOOR_ROC_AUC  # NaN too
    ]
    worse = []
    for item in candidate.sets:
        theirs = active.on(item.name) if active else None
        if theirs and item.roc_auc < theirs.roc_auc - WORSE_MARGIN_ROC_AUC:
            worse.append(
                f"ROC-AUC {item.roc_auc:.3f} on the {item.name} is lower than the active "
                f"version's {theirs.roc_auc:.3f} by more than {WORSE_MARGIN_ROC_AUC:g}"
            )
    if candidate.shortcut_audit_passed is False and active and active.shortcut_audit_passed:
        worse.append("it fails its shortcut audit, which the active version passes")
    if low or worse:
        return Verdict(DID_NOT_LEARN if low else WORSE, (*low, *worse), candidate, active)
    against = "the active version" if active else "no active model to compare with"
    reason = (
        f"ROC-AUC at or above {FLOOR_ROC_AUC:.2f} on every set, within "
        f"{WORSE_MARGIN_ROC_AUC:g} of {against} or better"
    )
    return Verdict(BETTER, (reason,), candidate, active)


def evaluation_frames(candidate_path, data_root=None, max_per_class=DEFAULT_MAX_PER_CLASS):
    """The labelled images the gate scores: `{set name: frame}` (sets not found are left out).

    Args:
        candidate_path: The candidate `.keras` file (its recorded patient split).
        data_root: The dataset root; default `config.data_root()`.
        max_per_class: At most this many images per class of each set; None: all.
    """
    from pneumonet_core.data import DatasetError, scan_dataset, stratified_subset
    from pneumonet_core.inference import ood
    from pneumonet_core.models import modelio

    root = Path(data_root or config.data_root()).expanduser()
    frames = {}
    try:
        metadata = modelio.read_metadata(candidate_path)
        frames[VALIDATION_SET] = ood.model_training_split(metadata, data_dir=root)[1]
    except DatasetError:
        pass
    if root.is_dir():
        frames[DEVELOPMENT_SET] = scan_dataset(root).split(DEVELOPMENT_FOLDER)
    return {
        name: stratified_subset(frame, per_class=max_per_class, seed=0) if max_per_class else frame
        for name, frame in frames.items()
        if frame["label_index"].nunique() == 2
    }


def model_figures(path, label: str, frames: dict) -> ModelFigures:
    """A model's figures on the frames (cached by SHA-256 and the images' fingerprint)."""
    sha = _sha256(path)
    cache_file = config.state_dir() / "promotion" / f"{sha}.json"
    cached = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    keys = {name: _frame_key(frame) for name, frame in frames.items()}
    shortcut_key = "shortcuts:" + ",".join(keys.values())
    if not (all(key in cached for key in keys.values()) and shortcut_key in cached):
        cached |= _score_model(path, frames, keys, shortcut_key)
        write_json_atomically(cache_file, cached)
    sets = tuple(SetFigures(**cached[keys[name]]) for name in frames)
    return ModelFigures(label, sha, sets, cached[shortcut_key])


def _frame_key(frame) -> str:
    from pneumonet_core.data import data_fingerprint

    return data_fingerprint(list(frame["path"]))


def _sha256(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _score_model(path, frames: dict, keys: dict, shortcut_key: str) -> dict:
    """Score a model on each frame at its threshold, and run its shortcut audit on the first."""
    import numpy as np

    from pneumonet_core.data import load_images
    from pneumonet_core.inference import shortcuts
    from pneumonet_core.metrics import binary_metrics
    from pneumonet_core.models import modelio

    config.import_tensorflow_quietly()
    model, metadata = modelio.load_model(path)
    results, audited = {}, None
    for name, frame in frames.items():
        loaded = load_images(list(frame["path"]), metadata.image_size, on_error="skip")
        labels = frame["label_index"].to_numpy()[loaded.kept]
        scores = shortcuts.model_scores(model, loaded.images)
        figures = binary_metrics(labels, scores, threshold=metadata.threshold)
        chosen = {key: _finite(figures[key]) for key in FIGURE_NAMES}
        results[keys[name]] = {"name": name, "n_images": int(labels.size)} | chosen
        results[keys[name]]["threshold"] = float(metadata.threshold)
        if audited is None and np.unique(labels).size == 2:
            found = shortcuts.audit(model, loaded.images, labels, with_gradcam=False)
            audited = bool(all(found["meets_targets"].values()))
    return results | {shortcut_key: audited}


def _finite(value) -> float:
    value = float(value)
    return value if math.isfinite(value) else float("nan")


def check_promotion(
    candidate_path: str | os.PathLike,
    active_path: str | os.PathLike | None,
    *,
    active_label: str = "active",
    data_root: str | os.PathLike | None = None,
    max_per_class: int | None = DEFAULT_MAX_PER_CLASS,
) -> Verdict:
    """Score the candidate and the active model on the same images and decide.

    Args:
        candidate_path: The `.keras` file to promote.
        active_path: The active model's file, or None when there is none.
        active_label: How the active model is named in the table ("registry version 3").
        data_root: The dataset root; default `config.data_root()` (`PNEUMONET_DATA`).
        max_per_class: At most this many images per class of each set; None: all.

    Returns:
        The `Verdict`; `CANNOT_CHECK` when no labelled images were found.
    """
    frames = evaluation_frames(candidate_path, data_root, max_per_class)
    if not frames:
        return decide(None, None)
    candidate = model_figures(candidate_path, "candidate", frames)
    has_active = active_path is not None and Path(active_path).is_file()
    active = model_figures(active_path, active_label, frames) if has_active else None
    return decide(candidate, active)
