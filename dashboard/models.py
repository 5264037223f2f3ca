"""Models as the pages show them: summaries from metadata and card, the active model, the models
that can be picked, and promotion of a trained model to the active one.

The active model is resolved by `governance.registry.resolve_model` (`PNEUMONET_MODEL`,
else the registry's active version, else the shipped model); promotion registers a version
(`dashboard.model_registry`). Summaries are read without TensorFlow (from the `.keras` file's
metadata and the model card, read and parsed by `governance.modelcard`), cached per file
version. MLflow is imported only when a tracking store exists, and the store is asked for
the active version once per change of its state (`registry.registry_state`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import cache, model_registry, runs
from pneumonet_core.governance import registry
from pneumonet_core.utils import config

ACTIVE_MODEL_PREFIX = "Active model: "


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """What the dashboard shows about a model without loading it.

    Attributes:
        path: The `.keras` file.
        source: Where it comes from ("PNEUMONET_MODEL", "registry version 3", "shipped" or
            "training run").
        name: A short display name.
        created_at: When it was saved (ISO text) or "unknown".
        architecture: The architecture name.
        image_size: Side of the square model input in pixels.
        threshold: The operating threshold for PNEUMONIA.
        metrics: Validation metrics (name to value), possibly empty.
        intervals: 95% confidence intervals of some metrics (name to (low, high)).
        limitations: Known limitations from the model card (empty without a card).
        operating_point: How the threshold was chosen, from the model card.
        details: Other metadata fields worth showing.
        has_ood_guard: Whether the file carries the feature statistics that flag images unlike
            its training X-rays (without them only the simple checks run).
        development_metrics: Metrics on images from outside the training set (the model
            card's development figures), possibly empty.
        development_intervals: Their 95% confidence intervals.
        development_label: What those images are, as the card words it.
        shortcut_audit: The card's shortcut audit (`inference.shortcuts.audit`), or {}.
        best_epoch: The epoch (1-based) whose model was kept and summarised, when recorded.
    """

    path: str
    source: str
    name: str
    created_at: str
    architecture: str
    image_size: int
    threshold: float
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    limitations: list[str]
    operating_point: str
    details: dict[str, Any]
    has_ood_guard: bool = False
    development_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    development_intervals: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    development_label: str = ""
    shortcut_audit: dict[str, Any] = dataclasses.field(default_factory=dict)
    best_epoch: int | None = None


def resolved_model() -> registry.ResolvedModel:
    """The model the dashboard uses when none is picked, with its registry version and site
    operating point: `registry.resolve_model`, asked again only when `registry_state()`
    changes (a promotion, a rollback, a new operating point), not on every page run."""
    return _resolved_for_state(registry.registry_state())


@st.cache_resource(show_spinner=False, max_entries=4)
def _resolved_for_state(state: tuple) -> registry.ResolvedModel:
    del state  # the cache key only
    return registry.resolve_model()


def active_model_path() -> Path:
    """The model the dashboard uses when none is picked."""
    return resolved_model().path


def model_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a model file (64 hexadecimal characters), computed once per file version."""
    return cache.file_digest(str(path), cache.file_signature(path))


def _model_source(path: Path, resolved: registry.ResolvedModel | None) -> str:
    resolved = resolved or resolved_model()
    if path == resolved.path:
        return resolved.label
    if path == config.shipped_model_path():
        return "shipped"
    return "training run"


def _metadata_dict(metadata: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(metadata):
        return dataclasses.asdict(metadata)
    if isinstance(metadata, dict):
        return dict(metadata)
    return dict(vars(metadata))


@st.cache_data(show_spinner=False, max_entries=32)
def _model_summary_cached(path_text: str, signature: str, source: str) -> ModelSummary:
    del signature  # part of the cache key only
    from pneumonet_core.governance import modelcard
    from pneumonet_core.inference import OOD_ENTRY
    from pneumonet_core.models import modelio

    path = Path(path_text)
    metadata = _metadata_dict(modelio.read_metadata(path))
    card = modelcard.card_facts(modelcard.model_card_for(path), metadata.get("metrics"))
    shown = ("architecture", "image_size", "threshold", "created_at", "metrics", "class_names")
    details = {key: value for key, value in metadata.items() if key not in shown}
    return ModelSummary(
        path=str(path),
        source=source,
        name=str(card.name or metadata.get("name") or path.stem),
        created_at=str(metadata.get("created_at") or card.created_at or "unknown"),
        architecture=str(metadata.get("architecture", "unknown")),
        image_size=int(metadata.get("image_size", 0) or 0),
        threshold=float(metadata.get("threshold", 0.5)),
        metrics=card.metrics,
        intervals=card.intervals,
        limitations=card.limitations,
        operating_point=card.operating_point,
        details=details,
        best_epoch=(metadata.get("metrics") or {}).get("best_epoch"),
        has_ood_guard=modelio.read_model_entry(path, OOD_ENTRY) is not None,
        development_metrics=card.development_metrics,
        development_intervals=card.development_intervals,
        development_label=card.development_label,
        shortcut_audit=card.shortcut_audit,
    )


def model_summary(
    path: str | os.PathLike | None = None, *, resolved: registry.ResolvedModel | None = None
) -> ModelSummary | None:
    """Describe a model from its metadata, without TensorFlow.

    Args:
        path: A `.keras` file; the active model when None.
        resolved: The active model as already resolved (`resolved_model`), to resolve it once
            per page run; read afresh when None.

    Returns:
        The summary, or None when the file does not exist.
    """
    if path is None:
        resolved = resolved or resolved_model()
    path = Path(path) if path is not None else resolved.path
    if not path.is_file():
        return None
    source = _model_source(path, resolved)
    return _model_summary_cached(str(path), cache.file_signature(path), source)


def summary_basis(summary: ModelSummary) -> str:
    """Which epoch and threshold a trained model's validation summary is at, and how that
    relates to the epoch curves (empty when the model recorded no best epoch)."""
    if not summary.best_epoch:
        return ""
    training = summary.details.get("training") or {}
    epochs = f" of {training['epochs']}" if training.get("epochs") else ""
    monitor = f", kept by {training['monitor']}" if training.get("monitor") else ""
    policy = f" ({training['threshold_policy']})" if training.get("threshold_policy") else ""
    return (
        f"The summary is the best epoch's model (epoch {summary.best_epoch}{epochs}{monitor}) "
        f"at threshold {summary.threshold:.2f}{policy}, chosen on the validation images after "
        "training. The curves show every epoch: their accuracy is at threshold 0.50, and their "
        f"validation ROC AUC is exact, so at epoch {summary.best_epoch} it is the summary's."
    )


def model_limitations() -> list[str]:
    """Known limitations: the active model's card, else the project's standard list."""
    try:
        summary = model_summary()
    except Exception:  # noqa: BLE001  (an unreadable model is reported where it is shown)
        summary = None
    if summary is not None and summary.limitations:
        return summary.limitations
    from pneumonet_core.governance import modelcard

    return list(modelcard.LIMITATIONS)


def model_run_id(model_path: str) -> str | None:
    """The MLflow run that trained a model, if recorded in its metadata."""
    summary = model_summary(model_path)
    run_id = summary.details.get("run_id") if summary else None
    return str(run_id) if run_id else None


def evaluation_models() -> dict[str, str]:
    """Models that can be evaluated: the active one and every run that saved a model.

    Returns:
        Display label to `.keras` path, the active model first.
    """
    choices: dict[str, str] = {}
    active = active_model_path()
    if active.is_file():
        try:
            summary = model_summary(active)
            choices[f"{ACTIVE_MODEL_PREFIX}{summary.name} ({summary.source})"] = str(active)
        except Exception:  # noqa: BLE001  (an unreadable model is left out; Home reports it)
            pass
    shipped = config.shipped_model_path()
    if shipped.is_file() and shipped != active:
        choices["Shipped model"] = str(shipped)
    for label, path in runs.saved_models().items():
        if path not in choices.values():
            choices[label] = path
    return choices


def short_model_name(label: str) -> str:
    """A chart-sized name from a model choice label ("Run calm-owl-12 (finished, …)")."""
    return label.split(" (", 1)[0].removeprefix(ACTIVE_MODEL_PREFIX)


def promote_model(
    model_path: str | os.PathLike,
    *,
    source: str = "dashboard:Train",
    override_reason: str | None = None,
) -> Path:
    """Make a trained model the active model: a new (or its earlier) registry version.

    The model is loaded in safe mode and stored once, read-only; only then does the alias
    `active` move, so a failed promotion leaves the previous model active. Recorded in the
    audit trail for the current user.

    Args:
        model_path: The run's `.keras` file.
        source: The page, for the audit trail.
        override_reason: Needed when the promotion gate refuses the model (one typed line).

    Returns:
        The registry's stored copy of the model, now the active model.

    Raises:
        PermissionError: The user's role is not "ml".
        pneumonet_core.models.modelio.ModelLoadError: The file is not a loadable model.
        ValueError: The file is missing; the promotion gate refused it without a reason.
        OSError: The registry's folder cannot be written.
    """
    version = model_registry.promote(model_path, source=source, override_reason=override_reason)
    return registry.version_model_path(version.version)


def is_active_model(model_path: str | os.PathLike) -> bool:
    """Whether a model file is (a copy of) the one the dashboard currently uses."""
    active, candidate = active_model_path(), Path(model_path)
    if not (active.is_file() and candidate.is_file()):
        return False
    if active.stat().st_size != candidate.stat().st_size:
        return False
    return model_sha256(active) == model_sha256(candidate)


def promotion_is_overridden() -> bool:
    """Whether `PNEUMONET_MODEL` pins the active model, so a promotion has no effect."""
    return bool(os.environ.get("PNEUMONET_MODEL"))
