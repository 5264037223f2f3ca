"""Model cards: a machine-readable JSON and a Markdown rendering of the same facts.

Building a card (`build_model_card`, `write_model_card`), reading any model's card
(`read_model_card`, `model_card_for`) and the figures a card states (`card_facts`: validation
metrics with their intervals, development figures, shortcut audit, limitations, operating
point). Reading needs no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from pneumonet_core.governance.card_text import LIMITATIONS
from pneumonet_core.governance.modelcard_markdown import render_markdown
from pneumonet_core.utils import config

DEVELOPMENT_LABEL = "on images from outside the training set, used for model selection"
CARD_FILE_NAME = config.MODEL_CARD_RELATIVE_PATH.name
MARKDOWN_FILE_NAME = "MODEL_CARD.md"


def read_model_card(path: str | os.PathLike | None = None) -> dict | None:
    """The shipped model card (JSON), or None when there is none."""
    path = Path(path or config.model_card_path())
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def model_card_for(model_path: str | os.PathLike) -> dict[str, Any]:
    """The card of any model: `model_card.json` next to it, or the shipped card for the shipped.

    Returns:
        The card, or {} when the model has none or it cannot be read.
    """
    model_path = Path(model_path)
    candidates = [model_path.with_name(CARD_FILE_NAME)]
    if model_path == config.shipped_model_path():
        candidates.insert(0, config.model_card_path())
    for candidate in candidates:
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
    return {}


def metric_values(raw: Any) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Numeric metrics, plain (`0.97`) or with an interval (`{"value", "ci_low", "ci_high"}`).

    Returns:
        `(values, intervals)`: metric name to value, and to its 95% interval `(low, high)` where
        the card gives one. Anything that is not a number is left out.
    """
    values, intervals = {}, {}
    if not isinstance(raw, dict):
        return values, intervals
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(value.get("value"), int | float):
            values[str(key)] = float(value["value"])
            if {"ci_low", "ci_high"} <= set(value):
                intervals[str(key)] = (float(value["ci_low"]), float(value["ci_high"]))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values[str(key)] = float(value)
    return values, intervals


def validation_metrics(
    card: dict[str, Any],
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Validation metrics from a model card (or a model's metadata `metrics` block)."""
    for key in ("validation", "validation_metrics", "val_metrics", "metrics"):
        block = card.get(key)
        if isinstance(block, dict):
            if isinstance(block.get("validation"), dict):
                block = block["validation"]
            return metric_values(block)
    return {}, {}


@dataclasses.dataclass(frozen=True)
class CardFacts:
    """What a model card states about its model; empty where the card is silent.

    Attributes:
        name: The model's name ("" when the card has none).
        created_at: When the model was made (ISO text, "" when the card has none).
        metrics: Validation metrics (name to value).
        intervals: Their 95% confidence intervals (name to (low, high)).
        development_metrics: Metrics on images from outside the training set (the card's
            development figures).
        development_intervals: Their 95% confidence intervals.
        development_label: What those images are, as the card words it.
        limitations: Known limitations.
        operating_point: How the threshold was chosen.
        shortcut_audit: The card's shortcut audit (`inference.shortcuts.audit`), or {}.
    """

    name: str = ""
    created_at: str = ""
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    development_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    development_intervals: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    development_label: str = ""
    limitations: list[str] = dataclasses.field(default_factory=list)
    operating_point: str = ""
    shortcut_audit: dict[str, Any] = dataclasses.field(default_factory=dict)


def card_facts(card: dict[str, Any], metadata_metrics: Any = None) -> CardFacts:
    """The facts of a model card (`read_model_card`, `model_card_for`).

    Args:
        card: The card; {} for a model without one.
        metadata_metrics: The model's metadata `metrics` block, whose validation metrics are
            used when the card states none.
    """
    metrics, intervals = validation_metrics(card)
    if not metrics:
        metrics, intervals = validation_metrics({"metrics": metadata_metrics})
    development = card.get("development") if isinstance(card.get("development"), dict) else {}
    development_metrics, development_intervals = metric_values(development.get("metrics"))
    return CardFacts(
        name=str(card.get("name") or ""),
        created_at=str(card.get("created_at") or ""),
        metrics=metrics,
        intervals=intervals,
        development_metrics=development_metrics,
        development_intervals=development_intervals,
        development_label=" ".join(
            str(development.get(key, "")) for key in ("label", "set")
        ).strip(),
        limitations=[str(item) for item in card.get("limitations", [])],
        operating_point=str(card.get("operating_point", "")),
        shortcut_audit=dict(card.get("shortcut_audit") or {}),
    )


def ood_guard_summary(statistics) -> dict | None:
    """The card's `ood_guard` block from `inference.ood.OodStatistics` (None: none)."""
    if statistics is None:
        return None
    return {
        "percentile": statistics.percentile,
        "n_fit": statistics.n_fit,
        "n_validation": statistics.n_validation,
        "validation_flag_rate": statistics.validation_flag_rate,
    }


def audit_limitations(audit: dict | None) -> list[str]:
    """What the shortcut audit found that a reader must know, in words."""
    if not audit or audit["meets_targets"]["lungs_hidden_auc"]:
        return []
    return [
        f"The shortcut audit finds evidence outside the lungs: with the lung region hidden the "
        f"model still reaches ROC-AUC {audit['lungs_hidden_auc']:.2f} on test/ (a model reading "
        "only the lungs would fall towards 0.5). Part of what it uses lies in the borders, "
        "shoulders, abdomen or body size; check the Grad-CAM overlay."
    ]


def seed_spread(summary: dict | None) -> dict | None:
    """Single members' figures as the card states them: `{metric: {"mean", "sd", "n_seeds"}}`.

    Args:
        summary: `{metric: {"mean", "sd", "values"}}` over the seeds (a `threshold` entry is left
            out), or None.
    """
    if summary is None:
        return None
    return {
        metric: {"mean": value["mean"], "sd": value["sd"], "n_seeds": len(value["values"])}
        for metric, value in summary.items()
        if metric != "threshold"
    }


def build_model_card(
    *,
    metadata,
    parameters: int,
    model_file: str | os.PathLike,
    training: dict,
    validation: dict,
    operating_point: str,
    reproduce: str,
    development: dict | None = None,
    shortcut_audit: dict | None = None,
    ood_statistics=None,
    file_label: str = str(config.SHIPPED_MODEL_RELATIVE_PATH),
) -> dict:
    """The JSON model card of a saved model.

    Args:
        metadata: The model's `pneumonet_core.models.modelio.ModelMetadata`.
        parameters: Its parameter count.
        model_file: The saved `.keras` file (its size is recorded).
        training: The card's `training` block (recipe, image counts, seeds, time, hardware).
        validation: Validation metrics (values or `{"value", "ci_low", "ci_high"}`).
        operating_point: How the threshold was chosen, in words.
        reproduce: The command that rebuilds the model.
        development: Figures on images from outside the training set: `{"label", "set",
            "metrics", "seed_spread", "note"}`, or None.
        shortcut_audit: `pneumonet_core.inference.shortcuts.audit` on the development set, or None.
        ood_statistics: The model's `pneumonet_core.inference.ood.OodStatistics`, or None.
        file_label: The model file as the card names it.
    """
    return {
        "name": metadata.name,
        "architecture": metadata.architecture,
        "parameters": int(parameters),
        "image_size": metadata.image_size,
        "preprocessing": metadata.preprocessing,
        "threshold": metadata.threshold,
        "class_names": metadata.class_names,
        "file": file_label,
        "file_size_mb": Path(model_file).stat().st_size / 1e6,
        "created_at": metadata.created_at,
        "training_data_fingerprint": metadata.training_data_fingerprint,
        "training": training,
        "development": development,
        "validation": validation,
        "operating_point": operating_point,
        "shortcut_audit": shortcut_audit,
        "ood_guard": ood_guard_summary(ood_statistics),
        "limitations": LIMITATIONS + audit_limitations(shortcut_audit),
        "reproduce": reproduce,
    }


def write_model_card(card: dict, folder: str | os.PathLike) -> tuple[Path, Path]:
    """Write `model_card.json` and its Markdown rendering `MODEL_CARD.md` into `folder`."""
    folder = Path(folder)
    json_path, markdown_path = folder / CARD_FILE_NAME, folder / MARKDOWN_FILE_NAME
    json_path.write_text(json.dumps(card, indent=2) + "\n")
    markdown_path.write_text(render_markdown(card))
    return json_path, markdown_path
