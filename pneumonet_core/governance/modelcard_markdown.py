"""A model card rendered as Markdown (`MODEL_CARD.md`) from its JSON facts."""

from __future__ import annotations

from pneumonet_core import INTENDED_USE
from pneumonet_core.governance.card_text import LIMITATIONS
from pneumonet_core.inference.ood import (
    NOT_A_CHEST_XRAY,
    NOT_A_CHEST_XRAY_SUMMARY,
    OUTSIDE_VALIDATED_USE,
)
from pneumonet_core.inference.ood_checks import NOT_AN_XRAY_DISTANCE_RATIO


def _format_metric(value) -> str:
    """`{"value", "ci_low", "ci_high"}` with its interval, other dicts as `key value, ...`."""
    if isinstance(value, dict) and {"value", "ci_low", "ci_high"} <= set(value):
        return f"{value['value']:.4f} (95% CI {value['ci_low']:.4f}-{value['ci_high']:.4f})"
    if isinstance(value, dict):
        return ", ".join(f"{key} {_format_metric(item)}" for key, item in value.items())
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _ood_lines(ood: dict | None) -> list[str]:
    """The out-of-distribution guard: what each of its two flags means, and its fit."""
    simple = (
        f'The simple checks flag {NOT_A_CHEST_XRAY_SUMMARY} as "{NOT_A_CHEST_XRAY}", and DICOM '
        f'lateral views as "{OUTSIDE_VALIDATED_USE}". Either flag marks the probability as '
        "unreliable."
    )
    if not ood:
        return [
            f"No feature statistics: only the simple checks flag images. {simple} A chest X-ray "
            "unlike the training images (an adult's, or one from another hospital's device) is "
            "not flagged.",
        ]
    return [
        "Images whose penultimate-layer features lie far from the training X-rays (Mahalanobis "
        f"distance above the {ood['percentile']:g}th percentile of the validation X-rays), for "
        "example an adult's X-ray or one from another hospital's device, are flagged "
        f'"{OUTSIDE_VALIDATED_USE}"; at {NOT_AN_XRAY_DISTANCE_RATIO:g} times that distance or '
        f'more, farther than any X-ray measured, they are flagged "{NOT_A_CHEST_XRAY}". '
        f"{simple} Fitted on {ood['n_fit']} training images; "
        f"{ood['validation_flag_rate']:.1%} of the {ood['n_validation']} validation X-rays "
        "are flagged.",
    ]


def _development_lines(development: dict | None) -> list[str]:
    """The out-of-distribution (development) figures, shown before the validation ones."""
    if not development:
        return [
            "No figures on images from outside the training set: the validation figures below "
            "come from the training distribution and overstate accuracy on new images.",
            "",
        ]
    lines = [
        f"## Metrics {development['label']} (development figures)",
        "",
        f"Set: {development['set']}. {development['note']}",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [
        f"| {key} | {_format_metric(value)} |" for key, value in development["metrics"].items()
    ]
    spread = development.get("seed_spread")
    if spread:
        seeds = next(iter(spread.values()))["n_seeds"]
        lines += [
            "",
            f"Single members of the same recipe ({seeds} seeds, each at its own validation "
            "threshold, before calibration), mean ± sd on the same set:",
            "",
            "| metric | mean ± sd |",
            "|---|---|",
        ]
        lines += [
            f"| {key} | {value['mean']:.4f} ± {value['sd']:.4f} |" for key, value in spread.items()
        ]
    return [*lines, ""]


def _shortcut_lines(audit: dict | None) -> list[str]:
    if not audit:
        return []
    met = audit["meets_targets"]
    return [
        "",
        f"## Shortcut audit (`pneumonet shortcuts`, {audit['n']} images of test/)",
        "",
        f"Lung region: {audit['region']}.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| ROC-AUC, whole image | {audit['original_auc']:.3f} | |",
        f"| ROC-AUC, lungs hidden | {audit['lungs_hidden_auc']:.3f} | <= 0.65 "
        f"({'met' if met['lungs_hidden_auc'] else 'not met'}) |",
        f"| ROC-AUC, outside the lungs hidden | {audit['outside_hidden_auc']:.3f} | within "
        f"0.03 of the whole image ({'met' if met['outside_hidden_auc'] else 'not met'}) |",
        f"| Grad-CAM mass inside the lungs | {audit['gradcam_lung_share']:.1%} | (region: "
        f"{audit['region_share']:.1%} of the image) |",
    ]


def render_markdown(card: dict) -> str:
    """A Markdown model card from the JSON card."""
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"> **Intended use.** {INTENDED_USE}",
        "",
        "## Model",
        "",
        f"- Architecture: `{card['architecture']}`, {card['parameters']:,} parameters",
        f"- Input: {card['image_size']}x{card['image_size']} grayscale, "
        f"preprocessing `{card['preprocessing']['name']}` ({card['preprocessing']['resize']}; "
        f"{card['preprocessing']['scale']})",
        f"- Output: probability of PNEUMONIA; decision threshold **{card['threshold']:.3f}**",
        f"- File: `{card['file']}` ({card['file_size_mb']:.1f} MB), created {card['created_at']}",
        f"- Training data fingerprint (SHA-256): `{card['training_data_fingerprint']}`",
        "",
        "## Training",
        "",
        f"- Data: {card['training']['train_images']} training and "
        f"{card['training']['val_images']} validation images from `train/`, split by patient "
        f"(split seed {card['training'].get('split_seed', card['training']['seed'])})",
        *(
            [
                f"- Ensemble of {card['training']['members']} members, trained with seeds "
                f"{card['training']['seed']}"
            ]
            if card["training"].get("members")
            else []
        ),
        f"- Recipe: {card['training']['recipe']}",
        f"- Time: {card['training']['duration_min']:.1f} min on {card['training']['hardware']}",
        "",
    ]
    lines += _development_lines(card.get("development"))
    lines += [
        "## Validation metrics (patient-grouped split of train/, in distribution)",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {key} | {_format_metric(value)} |" for key, value in card["validation"].items()]
    lines += _shortcut_lines(card.get("shortcut_audit"))
    lines += [
        "",
        "## Operating point",
        "",
        card["operating_point"],
        "",
        "## Baseline",
        "",
        card.get("baseline", "n/a"),
        "",
        "## Out-of-distribution guard",
        "",
        *_ood_lines(card.get("ood_guard")),
        "",
        "## Limitations",
        "",
    ]
    lines += [f"- {item}" for item in card.get("limitations", LIMITATIONS)]
    lines += ["", "## Reproduce", "", f"```bash\n{card['reproduce']}\n```", ""]
    return "\n".join(lines)
