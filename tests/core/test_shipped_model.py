"""The shipped model in assets/: its size, metadata, model card, OOD guard, and its figures.

The card's figures are measured again here on the images (test/ and the validation split), not
read back from the card; those tests need the shared data (skipped with the reason when absent).
"""

from __future__ import annotations

import json

import pytest

from pneumonet_core import CLASS_NAMES
from pneumonet_core.cli.main import main
from pneumonet_core.governance.modelcard import read_model_card
from pneumonet_core.governance.modelcard_markdown import render_markdown
from pneumonet_core.inference.ood import load_statistics
from pneumonet_core.models.modelio import read_metadata
from pneumonet_core.utils import config

MAX_SIZE_MB = 20.0
# Goals for the validation split (in distribution), which the model must meet there.
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
    assert metadata.architecture == card["architecture"] == "pneumonet-ensemble"
    assert metadata.image_size == card["image_size"]
    assert metadata.threshold == pytest.approx(card["threshold"])
    assert metadata.training_data_fingerprint == card["training_data_fingerprint"]
    assert 0.0 < metadata.threshold < 1.0


def test_card_is_complete_and_its_markdown_is_current(card):
    assert card["development"]["label"].startswith("on images from outside the training set")
    assert set(card["shortcut_audit"]["meets_targets"]) == {
        "lungs_hidden_auc",
        "outside_hidden_auc",
    }
    assert "test/" in card["operating_point"]
    assert max(card["training"]["member_minutes"]) <= 30.0
    assert card["training"]["duration_min"] <= 60.0
    markdown = (config.shipped_model_path().parent / "MODEL_CARD.md").read_text()
    assert markdown == render_markdown(card)


def _scores(model_path, folder_or_frame):
    """Labels and PNEUMONIA probabilities of the shipped model on labelled images."""
    import numpy as np

    from pneumonet_core.data import load_images
    from pneumonet_core.models.modelio import load_model

    model, metadata = load_model(model_path)
    images = load_images(folder_or_frame["path"], metadata.image_size).images
    scores = np.concatenate(
        [
            np.asarray(model(images[i : i + 64], training=False)).ravel()
            for i in range(0, len(images), 64)
        ]
    )
    return folder_or_frame["label_index"].to_numpy(), scores, metadata.threshold


def test_development_figures_are_measured_on_test(shipped_path, card, real_data):
    from pneumonet_core.data import scan_dataset
    from pneumonet_core.metrics import classification as evaluate

    labels, scores, threshold = _scores(shipped_path, scan_dataset(real_data / "test").frame)
    measured = evaluate.binary_metrics(labels, scores, threshold=threshold)
    stated = card["development"]["metrics"]
    assert measured["n"] == stated["n"] == 314
    for name in ("accuracy", "roc_auc", "sensitivity", "specificity"):
        assert measured[name] == pytest.approx(stated[name]["value"], abs=1e-3), name
    assert evaluate.expected_calibration_error(labels, scores) == pytest.approx(
        stated["ece"], abs=1e-3
    )


def test_validation_figures_are_measured_and_meet_the_goals(shipped_path, card, real_data):
    from pneumonet_core.data import training_split
    from pneumonet_core.metrics import classification as evaluate

    split_seed = read_metadata(shipped_path).training["split_seed"]
    _, val_frame = training_split(real_data, val_fraction=0.2, seed=split_seed)
    labels, scores, threshold = _scores(shipped_path, val_frame)
    measured = evaluate.binary_metrics(labels, scores, threshold=threshold)
    for name in ("accuracy", "roc_auc", "sensitivity", "specificity"):
        assert measured[name] == pytest.approx(card["validation"][name]["value"], abs=1e-3)
    assert measured["roc_auc"] >= GOALS["roc_auc"]


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
