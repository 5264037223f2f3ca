"""modelcard: building, reading and parsing the JSON card, and rendering it as Markdown."""

from __future__ import annotations

import json
from types import SimpleNamespace

from pneumonet_core import INTENDED_USE
from pneumonet_core.governance.modelcard import (
    LIMITATIONS,
    CardFacts,
    build_model_card,
    card_facts,
    model_card_for,
    read_model_card,
    write_model_card,
)
from pneumonet_core.governance.modelcard_markdown import render_markdown


def synthetic_card(**overrides) -> dict:
    card = {
        "name": "Test CNN",
        "architecture": "pneumonet",
        "parameters": 322401,
        "image_size": 192,
        "preprocessing": {"name": "gray-v1", "resize": "bilinear", "scale": "[0, 1]"},
        "threshold": 0.7731,
        "file": "assets/model/pneumonet.keras",
        "file_size_mb": 6.05,
        "created_at": "2026-11-26T01:27:00+00:00",
        "training_data_fingerprint": "abc123",
        "training": {
            "recipe": "pneumonet train --arch pneumonet",
            "train_images": 4172,
            "val_images": 1044,
            "seed": 42,
            "duration_min": 14.39,
            "hardware": "2 CPU cores",
        },
        "validation": {
            "accuracy": {"value": 0.98176, "ci_low": 0.97318, "ci_high": 0.98946},
            "brier": 0.0127,
            "n": 1044,
            "confusion_matrix": {"tn": 265, "fp": 4, "fn": 15, "tp": 760},
        },
        "operating_point": "Threshold chosen by Youden's J.",
        "baseline": "The seed CNN: accuracy 0.9799.",
        "ood_guard": {
            "percentile": 98.0,
            "n_fit": 2000,
            "n_validation": 1044,
            "validation_flag_rate": 0.0192,
        },
        "limitations": ["Only paediatric images."],
        "reproduce": "python bench/accuracy.py --ship",
    }
    card.update(overrides)
    return card


def test_markdown_shows_every_section_with_the_cards_numbers():
    text = render_markdown(synthetic_card())
    assert INTENDED_USE in text
    assert "`pneumonet`, 322,401 parameters" in text
    assert "decision threshold **0.773**" in text
    assert "| accuracy | 0.9818 (95% CI 0.9732-0.9895) |" in text
    assert "| brier | 0.0127 |" in text
    assert "| n | 1044 |" in text
    assert "| confusion_matrix | tn 265, fp 4, fn 15, tp 760 |" in text
    assert "14.4 min on 2 CPU cores" in text
    assert "98th percentile" in text and "1.9% of the 1044 validation X-rays" in text
    assert 'are flagged "outside validated use"' in text
    assert 'another modality or body part as "not a chest X-ray"' in text
    assert "- Only paediatric images." in text
    assert "```bash\npython bench/accuracy.py --ship\n```" in text


def test_markdown_without_ood_statistics_or_limitations_says_so():
    card = synthetic_card(ood_guard=None)
    del card["limitations"]
    text = render_markdown(card)
    assert "only the simple checks" in text
    assert "A chest X-ray unlike the training images" in text and "is not flagged" in text
    assert f"- {LIMITATIONS[0]}" in text


def test_read_model_card(tmp_path):
    assert read_model_card(tmp_path / "absent.json") is None
    path = tmp_path / "card.json"
    path.write_text(json.dumps(synthetic_card()))
    assert read_model_card(path)["threshold"] == 0.7731


def development_block() -> dict:
    return {
        "label": "on images from outside the training set, used for model selection",
        "set": "test/ (314 images)",
        "note": "test/ chose the recipe.",
        "metrics": {"accuracy": {"value": 0.9013, "ci_low": 0.8662, "ci_high": 0.9331}},
        "seed_spread": {"specificity": {"mean": 0.71, "sd": 0.05, "n_seeds": 3}},
    }


def shortcut_block() -> dict:
    return {
        "n": 314,
        "original_auc": 0.95,
        "lungs_hidden_auc": 0.62,
        "outside_hidden_auc": 0.93,
        "gradcam_lung_share": 0.81,
        "region_share": 0.53,
        "region": "fixed lung box",
        "meets_targets": {"lungs_hidden_auc": True, "outside_hidden_auc": False},
    }


def test_markdown_leads_with_the_development_figures_then_validation():
    card = synthetic_card(development=development_block(), shortcut_audit=shortcut_block())
    text = render_markdown(card)
    development = text.index("used for model selection (development figures)")
    assert development < text.index("## Validation metrics")
    assert "| accuracy | 0.9013 (95% CI 0.8662-0.9331) |" in text
    assert "| specificity | 0.7100 ± 0.0500 |" in text and "3 seeds" in text
    assert "| ROC-AUC, lungs hidden | 0.620 | <= 0.65 (met) |" in text
    assert "within 0.03 of the whole image (not met)" in text
    assert "| Grad-CAM mass inside the lungs | 81.0% |" in text


def test_markdown_without_development_figures_warns():
    text = render_markdown(synthetic_card())
    assert "No figures on images from outside the training set" in text
    assert "Shortcut audit" not in text


def test_model_card_for_reads_the_card_next_to_a_model(tmp_path):
    model = tmp_path / "run" / "model.keras"
    model.parent.mkdir()
    assert model_card_for(model) == {}
    (model.parent / "model_card.json").write_text(json.dumps(synthetic_card()))
    assert model_card_for(model)["name"] == "Test CNN"
    (model.parent / "model_card.json").write_text("{not json")
    assert model_card_for(model) == {}


def test_card_facts_parse_metrics_intervals_and_development_figures():
    card = synthetic_card(development=development_block(), shortcut_audit=shortcut_block())
    facts = card_facts(card)
    assert facts.name == "Test CNN" and facts.created_at == "2026-11-26T01:27:00+00:00"
    assert facts.metrics == {"accuracy": 0.98176, "brier": 0.0127, "n": 1044.0}
    assert facts.intervals == {"accuracy": (0.97318, 0.98946)}
    assert facts.development_metrics == {"accuracy": 0.9013}
    assert facts.development_intervals == {"accuracy": (0.8662, 0.9331)}
    assert facts.development_label.startswith("on images from outside the training set")
    assert facts.development_label.endswith("test/ (314 images)")
    assert facts.limitations == ["Only paediatric images."]
    assert facts.operating_point == "Threshold chosen by Youden's J."
    assert facts.shortcut_audit["lungs_hidden_auc"] == 0.62


def test_card_facts_fall_back_to_the_metadata_metrics():
    facts = card_facts({}, {"validation": {"accuracy": 0.9, "auc": {"value": 0.95}}})
    assert facts.metrics == {"accuracy": 0.9, "auc": 0.95}
    assert facts.intervals == {} and facts.limitations == [] and facts.development_metrics == {}
    assert card_facts({}) == CardFacts()


def test_built_card_renders_and_is_written_with_its_markdown(tmp_path):
    from pneumonet_core.models.modelio import ModelMetadata

    model_file = tmp_path / "pneumonet.keras"
    model_file.write_bytes(b"x" * 2_000_000)
    statistics = SimpleNamespace(
        percentile=98.0, n_fit=2000, n_validation=1044, validation_flag_rate=0.0192
    )
    audit = shortcut_block()
    audit["meets_targets"]["lungs_hidden_auc"] = False
    card = build_model_card(
        metadata=ModelMetadata(architecture="pneumonet", image_size=192, threshold=0.4),
        parameters=322401,
        model_file=model_file,
        training=synthetic_card()["training"],
        validation=synthetic_card()["validation"],
        operating_point="Youden's J on test/.",
        reproduce="python bench/ship_model.py",
        development=development_block(),
        shortcut_audit=audit,
        ood_statistics=statistics,
    )
    assert card["file_size_mb"] == 2.0 and card["ood_guard"]["n_fit"] == 2000
    assert card["limitations"][: len(LIMITATIONS)] == LIMITATIONS
    assert "ROC-AUC 0.62 on test/" in card["limitations"][-1]
    json_path, markdown_path = write_model_card(card, tmp_path)
    assert read_model_card(json_path) == json.loads(json.dumps(card))
    assert markdown_path.read_text() == render_markdown(card)
