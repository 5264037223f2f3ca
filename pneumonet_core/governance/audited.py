"""Actions that change what clinicians see, each recorded in the audit trail.

Promotion, rollback, a site operating point and a displayed prediction, written once for the
command line and the dashboard. The action is never undone by a failed audit write: the
`audit.AuditResult` comes back with it, for a one-line notice.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pneumonet_core.governance import audit, promotion, registry
from pneumonet_core.utils import config

LOGGER = logging.getLogger("pneumonet.audit")


def version_label(version: Any) -> str:
    """ "registry version 3" for an MLflow `ModelVersion` (as `ResolvedModel.label` says it)."""
    return f"registry version {int(version.version)}"


def record(action: str, *, source: str, email: str | None, **fields: Any) -> audit.AuditResult:
    """`audit.record`, with a refused value (e.g. an e-mail holding a slash) as a failed write."""
    try:
        return audit.record(action, source=source, user=email, **fields)
    except ValueError as error:
        LOGGER.warning("audit write failed (%s from %s): %s", action, source, error)
        return audit.AuditResult(False, error=f"ValueError: {error}")


def promotion_verdict(model: str | os.PathLike, **options) -> promotion.Verdict:
    """The promotion gate's verdict on a model file or run, against the active model.

    The active model is the registry's active version, else the shipped model.

    Args:
        model: A `.keras` file, or the id of a run that logged its model.
        options: `promotion.check_promotion`'s `data_root` and `max_per_class`.
    """
    active = registry.active_version()
    if active is not None:
        active_path, label = registry.version_model_path(active.version), version_label(active)
    else:
        active_path, label = config.shipped_model_path(), "shipped model"
    with tempfile.TemporaryDirectory() as scratch:
        path, _ = registry.locate_model(model, Path(scratch))
        return promotion.check_promotion(path, active_path, active_label=label, **options)


def promote(
    model: str | os.PathLike,
    *,
    source: str,
    email: str | None = None,
    override_reason: str | None = None,
):
    """Check a model with the promotion gate, register it and make it active, then record it.

    Args:
        model: A `.keras` file, or the id of a run that logged its model.
        source: The page or command, e.g. "cli:model promote".
        email: The signed-in user's e-mail, or None (the operating-system user).
        override_reason: Promote a model the gate refuses: one typed line, kept in the audit
            entry's details and the version's tags.

    Returns:
        `(version, audit_result)`: the MLflow `ModelVersion` now active, and the audit write.

    Raises:
        promotion.PromotionRefused: The gate refused it and no override reason was given.
        ValueError: A malformed override reason (checked before the gate runs).
    """
    reason = None if override_reason is None else promotion.check_override_reason(override_reason)
    verdict = promotion_verdict(model)
    if not verdict.passed and reason is None:
        raise promotion.PromotionRefused(verdict)
    gate = {"gate_verdict": verdict.kind} | ({"override_reason": reason} if reason else {})
    version = registry.promote(model, user=audit.current_user(email), tags=gate)
    details = {"run_id": version.run_id or None} | gate
    return version, _record_version("promote", version, source, email, details)


def rollback(version: int | str, *, source: str, email: str | None = None):
    """Make an earlier registry version active again (`registry.rollback`), then record it.

    Returns:
        `(version, audit_result)`.
    """
    found = registry.rollback(version, user=audit.current_user(email))
    return found, _record_version("rollback", found, source, email, None)


def _record_version(action, version, source, email, details) -> audit.AuditResult:
    return record(
        action,
        source=source,
        email=email,
        model_version=version_label(version),
        model_sha256=version.tags.get(f"{registry.TAG}sha256"),
        details=details,
    )


def set_operating_point(
    version: int | str, threshold: float, evidence, *, source: str, email: str | None = None
):
    """Save a site operating point with its evidence (`registry.set_operating_point`), recorded.

    Args:
        version: The registry version.
        threshold: Strictly between 0 and 1.
        evidence: From `registry.compute_evidence` at that threshold.
        source: The page or command.
        email: The signed-in user's e-mail, or None.

    Returns:
        `(operating_point, audit_result)`.
    """
    point = registry.set_operating_point(
        version, threshold, user=audit.current_user(email), evidence=evidence
    )
    result = record(
        "set_threshold",
        source=source,
        email=email,
        model_version=f"registry version {point.version}",
        model_sha256=evidence.model_sha256,
        threshold=point.threshold,
        details={
            "n_images": evidence.n_images,
            "sensitivity": evidence.sensitivity,
            "specificity": evidence.specificity,
            "fingerprint": evidence.fingerprint,
        },
    )
    return point, result


def record_prediction(
    prediction: Any,
    *,
    source: str,
    model_version: str,
    model_sha256: str,
    image_sha256: str,
    email: str | None = None,
    details: dict[str, Any] | None = None,
) -> audit.AuditResult:
    """Record one prediction: the image's SHA-256, never its name or pixels.

    Args:
        prediction: Anything with `probability`, `label`, `threshold` and `ood`.
        source: The page or command.
        model_version: The model as resolved ("registry version 3", "shipped"...).
        model_sha256: The SHA-256 of the model file.
        image_sha256: The SHA-256 of the image's bytes.
        email: The signed-in user's e-mail, or None.
        details: Further non-identifying facts (the PACS worker's hashed UIDs).
    """
    return record(
        "predict",
        source=source,
        email=email,
        model_version=model_version,
        model_sha256=model_sha256,
        image_sha256=image_sha256,
        probability=prediction.probability,
        label=prediction.label,
        threshold=prediction.threshold,
        ood=prediction.ood,
        details=details,
    )


def record_predictions(
    hashed_predictions: Sequence[tuple[Any, str]],
    *,
    source: str,
    model_version: str,
    model_sha256: str,
    email: str | None = None,
) -> audit.AuditResult:
    """Record a batch of predictions in one write (`audit.record_many`: all or none).

    Args:
        hashed_predictions: `(prediction, image_sha256)` pairs, as `record_prediction` takes.
        source, model_version, model_sha256, email: As `record_prediction`.
    """
    entries = [
        {
            "action": "predict",
            "source": source,
            "user": email,
            "model_version": model_version,
            "model_sha256": model_sha256,
            "image_sha256": image_sha256,
            "probability": prediction.probability,
            "label": prediction.label,
            "threshold": prediction.threshold,
            "ood": prediction.ood,
        }
        for prediction, image_sha256 in hashed_predictions
    ]
    try:
        return audit.record_many(entries)
    except ValueError as error:
        LOGGER.warning("audit write failed (predict from %s): %s", source, error)
        return audit.AuditResult(False, error=f"ValueError: {error}")
