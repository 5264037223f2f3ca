"""Which folders Evaluate may read, how many images it reads by default, and the audit entry of
an evaluation run.

Folders come from the configured data roots (`[pneumonet.data] roots` in the secrets file,
default the dataset root, `PNEUMONET_DATA`). Only the ML team may type a folder, and only one
under those roots: `..` is refused, symbolic links are resolved before the check, and a folder
outside the roots gets the same message whether it exists or not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import auth, dataset

DEFAULT_MAX_PER_CLASS = 500  # all of the shared test/ (118 NORMAL, 196 PNEUMONIA); bounded
EVALUATE_SOURCE = "dashboard:Evaluate"
RECORDED_KEY = "evaluate_recorded_runs"  # session state: the evaluations recorded so far
OUTSIDE_ROOTS = "the folder must lie under one of the configured data roots"


def parse_data_roots(secrets: Mapping[str, Any], default: str) -> list[Path]:
    """The `[pneumonet.data] roots` list (default: `[default]`), each resolved.

    Raises:
        ValueError: The setting is not a non-empty list of folder names (names the value).
    """
    section = secrets.get("pneumonet", {})
    table = section.get("data", {}) if isinstance(section, Mapping) else {}
    roots = table.get("roots") if isinstance(table, Mapping) else None
    if roots is None:
        return [Path(default).expanduser().resolve()]
    if not isinstance(roots, list | tuple) or not roots:
        raise ValueError(f"[pneumonet.data] roots must be a list of folders, got {roots!r}")
    for root in roots:
        if not isinstance(root, str) or not root.strip():
            raise ValueError(f"[pneumonet.data] roots holds {root!r}, which is not a folder name")
    return [Path(root).expanduser().resolve() for root in roots]


def data_roots() -> list[Path]:
    """The configured data roots (`parse_data_roots` of the secrets file)."""
    try:
        secrets = st.secrets.to_dict()
    except Exception:  # noqa: BLE001  (no secrets file: the default root)
        secrets = {}
    return parse_data_roots(secrets, dataset.default_data_root())


def folder_under_roots(typed: str, roots: Sequence[Path]) -> Path:
    """The folder `typed` names, when it lies under one of `roots` (relative: under the first).

    Raises:
        ValueError: Empty, holds `..`, or resolves outside every root; the message is the same
            whether or not such a folder exists.
    """
    text = typed.strip()
    if not text:
        raise ValueError("enter a folder holding NORMAL/ and PNEUMONIA/")
    path = Path(text)
    if ".." in path.parts:
        raise ValueError(f"{OUTSIDE_ROOTS} ('..' is not allowed)")
    candidate = (path if path.is_absolute() else roots[0] / path).resolve()
    if not any(candidate == root or candidate.is_relative_to(root) for root in roots):
        raise ValueError(OUTSIDE_ROOTS)
    return candidate


def typed_folder(typed: str) -> Path:
    """A folder typed on the Evaluate page: role `ml` only, under the data roots.

    Raises:
        PermissionError: The user's role is not "ml".
        ValueError: The folder is not under the configured roots (`folder_under_roots`).
    """
    if not auth.may("ml"):
        raise PermissionError("Only the ML team may evaluate on a folder of their choice.")
    return folder_under_roots(typed, data_roots())


def root_folders(roots: Sequence[Path]) -> dict[str, str]:
    """The evaluable folders of the roots (`val/`, `test/`), test first, labelled for a picker."""
    folders: dict[str, str] = {}
    for root in roots:
        for name in sorted(dataset.dataset_splits(str(root)), key=lambda split: split != "test"):
            label = f"{name}/ folder" if len(roots) == 1 else f"{name}/ folder of {root.name}"
            folders[label] = str(root / name)
    return dict(sorted(folders.items(), key=lambda item: not item[0].startswith("test/")))


def set_fingerprint(paths: Sequence[str], labels: Sequence[int], folder: str) -> str:
    """SHA-256 of the set's file list relative to its folder, with labels (no contents read)."""
    digest = hashlib.sha256()
    for path, label in sorted(zip(paths, labels, strict=True)):
        relative = Path(path).relative_to(folder) if Path(path).is_relative_to(folder) else path
        digest.update(f"{relative}\t{label}\n".encode())
    return digest.hexdigest()


def evaluation_details(
    kind: str, fingerprint: str, threshold_metrics: Mapping[str, Any], images: int
) -> dict[str, Any]:
    """The audit entry's details: the set's kind and fingerprint, its size and the metrics."""
    details: dict[str, Any] = {"image_set": kind, "set_sha256": fingerprint, "images": images}
    for key in ("roc_auc", "sensitivity", "specificity", "accuracy"):
        value = threshold_metrics.get(key)
        if isinstance(value, int | float) and value == value:  # NaN (one class) is left out
            details[key] = round(float(value), 4)
    return details


def record_evaluation_once(
    *,
    model_version: str,
    model_sha256: str,
    kind: str,
    fingerprint: str,
    threshold: float,
    threshold_metrics: Mapping[str, Any],
    images: int,
) -> Any:
    """Add an `evaluate` entry once per model and image set in this session (at the threshold
    the page opened with; moving the slider adds none).

    Returns:
        The `audit.AuditResult`, or None when this evaluation was recorded before.
    """
    from dashboard import audit_log

    key = (model_sha256, fingerprint)
    recorded = st.session_state.setdefault(RECORDED_KEY, set())
    if key in recorded:
        return None
    result = audit_log.record(
        "evaluate",
        source=EVALUATE_SOURCE,
        model_version=model_version,
        model_sha256=model_sha256,
        threshold=float(threshold),
        details=evaluation_details(kind, fingerprint, threshold_metrics, images),
    )
    if result.ok:
        recorded.add(key)
    return result
