"""The shipped model in assets/: its size, metadata, model card, OOD guard, and the defaults.

These read the committed files; the evaluation tests also need the shared data (skipped with
the reason when it is absent).
"""

from __future__ import annotations

import json

import pytest

from pneumonet_core import CLASS_NAMES, config
from pneumonet_core.cli import main
from pneumonet_core.modelcard import read_model_card, render_markdown
from pneumonet_core.modelio import read_metadata
from pneumonet_core.ood import load_statistics

MAX_SIZE_MB = 20.0
# The goals, which the card's validation figures must meet.
GOALS = {"accuracy": 0.95, "roc_auc": 0.99, "sensitivity": 0.97, "specificity": 0.90}


@pytest.fixture(scope="module")
def shipped_path():
    path = config.shipped_model_path()
    assert path.is_file(), f"no shipped model at {path} (python bench/accuracy.py --ship)"
    return path


@pytest.fixture(scope="module")
def card():
    values = read_model_card()
    assert values is not None, f"no model card at {config.model_card_path()}"
    return values


def test_shipped_model_is_small_enough(shipped_path):
    assert shipped_path.stat().st_size <= MAX_SIZE_MB * 1e6


def test_metadata_travels_with_the_model_and_matches_the_card(shipped_path, card):
    metadata = read_metadata(shipped_path)
    assert tuple(metadata.class_names) == CLASS_NAMES
    assert metadata.architecture == card["architecture"] == "pneumonet"
    assert metadata.image_size == card["image_size"]
    assert metadata.threshold == pytest.approx(card["threshold"])
    assert metadata.training_data_fingerprint == card["training_data_fingerprint"]
    assert 0.0 < metadata.threshold < 1.0


def test_card_metrics_meet_the_goals_and_its_markdown_is_current(card):
    for name, goal in GOALS.items():
        value = card["validation"][name]
        assert value["ci_low"] <= value["value"] <= value["ci_high"]
        assert value["value"] >= goal, (name, value)
    assert card["training"]["duration_min"] <= 30.0
    markdown = (config.shipped_model_path().parent / "MODEL_CARD.md").read_text()
    assert markdown == render_markdown(card)


def test_shipped_model_carries_its_ood_statistics(shipped_path):
    statistics = load_statistics(shipped_path)
    assert statistics is not None
    assert statistics.validation_flag_rate <= 0.02


def test_evaluate_without_model_uses_the_shipped_one(real_data, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("PNEUMONET_MODEL", raising=False)
    monkeypatch.setenv("PNEUMONET_HOME", str(tmp_path))  # nothing promoted there
    assert main(["evaluate", str(real_data / "val"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 16
    assert metrics["threshold"] == pytest.approx(
        read_metadata(config.shipped_model_path()).threshold
    )
    assert metrics["roc_auc"] >= 0.8  # 16 images: a sanity floor, not a performance claim
