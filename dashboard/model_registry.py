"""The model registry as the pages use it: the versions, promotion and rollback (Runs page), and
the site operating point saved from the Evaluate page.

Every change needs the role "ml" (`auth.may`, checked here again when it runs), goes through
`governance.registry` (the MLflow Model Registry) and is recorded in the audit trail for
the current user (`audit_log`). MLflow is imported only when a tracking store exists, so
nothing here slows the Home page down.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import audit_log, auth, cache
from pneumonet_core.governance import audited, promotion, registry
from pneumonet_core.utils import config

RUNS_SOURCE = "dashboard:Runs"
EVALUATE_SOURCE = "dashboard:Evaluate"
VERSION_COLUMNS = {  # shown column: `registry.list_versions` field
    "version": "version",
    "active": "active",
    "created (UTC)": "created",
    "promoted by": "promoted_by",
    "activated by": "activated_by",
    "threshold": "threshold",
    "val ROC-AUC": "val_roc_auc",
    "promotion gate": "gate_verdict",
    "override reason": "override_reason",
    "site operating point": "operating_point_text",
    "run id": "run_id",
}


def _require_ml_role(action: str) -> None:
    if not auth.may("ml"):
        raise PermissionError(f"Only the ML team may {action}.")


def version_label(version: Any) -> str:
    """ "registry version 3" for an MLflow `ModelVersion` (as `ResolvedModel.label` says it)."""
    return audited.version_label(version)


def versions_table() -> pd.DataFrame:
    """Every registry version, newest first (empty when nothing was promoted yet).

    Returns:
        Columns `version, active, created (UTC), promoted by, activated by, threshold,
        val ROC-AUC, promotion gate, override reason, site operating point, run id`.
    """
    rows = registry.list_versions()
    if not rows:
        return pd.DataFrame(columns=list(VERSION_COLUMNS))
    frame = pd.DataFrame(rows)
    table = pd.DataFrame({shown: frame[field] for shown, field in VERSION_COLUMNS.items()})
    table["created (UTC)"] = table["created (UTC)"].str.replace("T", " ").str[:19]
    return table


def legacy_promoted_model() -> Path | None:
    """A model promoted before the registry (`<PNEUMONET_HOME>/active/model.keras`, no longer
    used: register it to use it again), or None."""
    legacy = config.promoted_model_path()
    return legacy if legacy.is_file() else None


FIGURE_LABELS = {
    "n_images": "images",
    "threshold": "threshold (the model's own)",
    "roc_auc": "ROC-AUC",
    "accuracy": "accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
}


@st.cache_data(show_spinner="Scoring the model and the active one…", max_entries=16)
def _verdict_cached(model: str, signature: str, state: tuple, data_root: str):
    del signature, state, data_root  # part of the cache key only
    return audited.promotion_verdict(model)


def promotion_verdict(model: str | os.PathLike) -> promotion.Verdict:
    """The promotion gate's verdict on a model file or run id (`audited.promotion_verdict`),
    computed again when the file, the active version or the configured data root changes."""
    signature = cache.file_signature(model) if Path(model).is_file() else str(model)
    state = registry.registry_state()
    return _verdict_cached(str(model), signature, state, str(config.data_root()))


def verdict_table(verdict: promotion.Verdict) -> pd.DataFrame:
    """The candidate's and the active model's figures side by side: `set, figure, candidate`
    and the active model's label (figures to 3 decimals; "-" where there is none)."""
    active = verdict.active.label if verdict.active else "active (none)"
    rows = [
        {
            "set": row["set"],
            "figure": FIGURE_LABELS[row["figure"]],
            "candidate": _figure_text(row["candidate"]),
            active: _figure_text(row["active"]),
        }
        for row in verdict.table()
    ]
    return pd.DataFrame(rows, columns=["set", "figure", "candidate", active])


def _figure_text(value) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def promote(
    model: str | os.PathLike, *, source: str = RUNS_SOURCE, override_reason: str | None = None
) -> Any:
    """Check a model with the promotion gate, register it and make it the active version.

    Args:
        model: A `.keras` file, or the id of a run that logged its model.
        source: The page, for the audit trail.
        override_reason: Needed when the gate refuses the model: one typed line, kept in the
            audit trail and the version's tags.

    Returns:
        The MLflow `ModelVersion` now active.

    Raises:
        PermissionError: The user's role is not "ml".
        ValueError: Neither a model file nor a run with a model (`registry.promote`); the gate
            refused it without a reason (`promotion.PromotionRefused`); a malformed reason.
        pneumonet_core.models.modelio.ModelLoadError: The model does not load in safe mode.
    """
    _require_ml_role("promote a model")
    email = auth.signed_in_email()
    version, result = audited.promote(
        model, source=source, email=email, override_reason=override_reason
    )
    audit_log.notify_failure(result)
    return version


def rollback(version: int | str, *, source: str = RUNS_SOURCE) -> Any:
    """Make an earlier registry version the active one again.

    Raises:
        PermissionError: The user's role is not "ml".
        ValueError: An unknown version.
        pneumonet_core.models.modelio.ModelLoadError: Its stored file is missing or changed.
    """
    _require_ml_role("roll back the model")
    found, result = audited.rollback(version, source=source, email=auth.signed_in_email())
    audit_log.notify_failure(result)
    return found


def operating_point_target(model_path: str | os.PathLike) -> registry.ResolvedModel | None:
    """The active registry version when `model_path` is its file, else None: a site operating
    point can be saved on the active version only."""
    resolved = registry.resolve_model()
    if resolved.source != "registry" or not Path(model_path).is_file():
        return None
    return resolved if Path(model_path).resolve() == resolved.path.resolve() else None


def describe_operating_point(point: registry.OperatingPoint) -> str:
    """E.g. "threshold 0.91, chosen on 300 local images by a@b.org, 2026-11-26"."""
    return registry.describe_operating_point(point)


def save_operating_point(
    target: registry.ResolvedModel, folder: str | os.PathLike, threshold: float
) -> registry.OperatingPoint:
    """Save a threshold as the site operating point of the active version, with its evidence.

    Every image of the labelled folder is scored again with the version's model
    (`registry.compute_evidence`), so the evidence (image count, fingerprint, sensitivity and
    specificity at the threshold) is the core's own; who and when are recorded with it.

    Args:
        target: From `operating_point_target`.
        folder: A folder holding NORMAL/ and PNEUMONIA/.
        threshold: Strictly between 0 and 1.

    Returns:
        The saved `registry.OperatingPoint`.

    Raises:
        PermissionError: The user's role is not "ml".
        ValueError: A threshold outside (0, 1), or a folder without readable images of both
            classes.
    """
    _require_ml_role("set the operating point")
    threshold = registry.check_threshold(threshold)
    evidence = registry.compute_evidence(cache.load_predictor(target.path), folder, threshold)
    point, result = audited.set_operating_point(
        target.version, threshold, evidence, source=EVALUATE_SOURCE, email=auth.signed_in_email()
    )
    audit_log.notify_failure(result)
    return point
