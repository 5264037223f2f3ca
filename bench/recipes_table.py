"""Render `bench/results/generalization.json` as the tried-recipes table (docs/RECIPES.md)."""

from __future__ import annotations


def _cell(summary: dict, metric: str, percent: bool = True) -> str:
    value = summary[metric]
    scale, digits = (100, 1) if percent else (1, 3)
    return f"{value['mean'] * scale:.{digits}f} ± {value['sd'] * scale:.{digits}f}"


def render_recipes_table(results: dict) -> str:
    lines = [
        "# Tried recipes",
        "",
        "Written by `python bench/generalization.py` from `bench/results/generalization.json`;",
        "do not edit by hand. Every recipe is trained with each listed seed on `train/` (one",
        "patient-grouped validation split, split seed 42, shared by all runs) and scored on",
        "",
        "- **val**: that validation split (in distribution), threshold chosen there (Youden);",
        "- **test/**: half of the official test split (314 images), at the validation threshold.",
        "  `test/` chose between these recipes, so its figures are **development figures**, not",
        "  an unbiased estimate of performance on new images.",
        "",
        "Cells are mean ± sd over seeds (percent, except AUC, ECE and Brier).",
        "",
        "| recipe | epochs | seeds | min/run | val acc | val AUC | test/ acc | test/ AUC | "
        "test/ sens | test/ spec | test/ ECE | test/ Brier | lungs-hidden AUC | "
        "outside-hidden AUC | Grad-CAM in lungs |",
        "|" + "---|" * 15,
    ]
    for key, recipe in results.get("recipes", {}).items():
        val, test, shortcut = recipe["validation"], recipe["test"], recipe["shortcuts"]
        minutes = recipe["training_minutes"]
        lines.append(
            f"| {key} | {recipe['epochs']} | {len(recipe['seeds'])} | "
            f"{minutes['mean']:.1f} | {_cell(val, 'accuracy')} | "
            f"{_cell(val, 'roc_auc', False)} | {_cell(test, 'accuracy')} | "
            f"{_cell(test, 'roc_auc', False)} | {_cell(test, 'sensitivity')} | "
            f"{_cell(test, 'specificity')} | {_cell(test, 'ece', False)} | "
            f"{_cell(test, 'brier', False)} | {_cell(shortcut, 'lungs_hidden_auc', False)} | "
            f"{_cell(shortcut, 'outside_hidden_auc', False)} | "
            f"{_cell(shortcut, 'gradcam_lung_share')} |"
        )
    references = results.get("references", {})
    if references:
        lines += [
            "",
            "## Reference models (one run each, same sets and evaluation)",
            "",
            "| model | val acc | test/ acc | test/ AUC | test/ sens | test/ spec | test/ ECE | "
            "lungs-hidden AUC | outside-hidden AUC | Grad-CAM in lungs |",
            "|" + "---|" * 10,
        ]
        for label, reference in references.items():
            val, test, audit = reference["validation"], reference["test"], reference["shortcuts"]
            lines.append(
                f"| {label} | {val['accuracy'] * 100:.1f} | {test['accuracy'] * 100:.1f} | "
                f"{test['roc_auc']:.3f} | {test['sensitivity'] * 100:.1f} | "
                f"{test['specificity'] * 100:.1f} | {test['ece']:.3f} | "
                f"{audit['lungs_hidden_auc']:.3f} | {audit['outside_hidden_auc']:.3f} | "
                f"{audit['gradcam_lung_share'] * 100:.1f} |"
            )
    lines += ["", "## Ensembles of the seeds (mean probability), on test/", ""]
    lines += [
        "| recipe | test/ acc | test/ AUC | test/ sens | test/ spec | test/ ECE | "
        "acc at a test/-chosen threshold |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, recipe in results.get("recipes", {}).items():
        test = recipe["ensemble"]["test"]
        tuned = recipe["ensemble"]["test_at_test_threshold"]
        lines.append(
            f"| {key} | {test['accuracy'] * 100:.1f} | {test['roc_auc']:.3f} | "
            f"{test['sensitivity'] * 100:.1f} | {test['specificity'] * 100:.1f} | "
            f"{test['ece']:.3f} | {tuned['accuracy'] * 100:.1f} (threshold "
            f"{tuned['threshold']:.2f}) |"
        )
    lines += ["", "## Notes", "", results.get("notes", "").strip(), ""]
    return "\n".join(lines)
