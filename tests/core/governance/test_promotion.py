"""promotion: the gate that keeps a model that did not learn (or is worse than the active one)
from becoming active, its override with a typed reason, and `pneumonet model promote`.

Real components: tiny Keras models (a constant one that learned nothing, and one that ranks
images by brightness, which separates the synthetic classes), a synthetic dataset with train/
and test/, an MLflow registry and the audit database in a temporary PNEUMONET_HOME.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pneumonet_core.cli.admin import REFUSED_EXIT_CODE
from pneumonet_core.cli.main import main
from pneumonet_core.governance import audit, audited, promotion, registry, tracking
from pneumonet_core.governance.promotion import ModelFigures, SetFigures, decide
from pneumonet_core.models import modelio
from pneumonet_core.utils import config

SIZE = 32


def brightness_model(weight: float):
    """Input -> mean brightness -> sigmoid(weight * (mean - 0.3)); weight 0: a constant 0.5."""
    import keras
    import numpy as np

    inputs = keras.Input((SIZE, SIZE, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, dense(pooled))
    dense.set_weights([np.array([[weight]]), np.array([-0.3 * weight])])
    return model


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """`constant` (learned nothing), `learned` and `learned_too` (separate the synthetic
    classes by brightness: the same ranking, another file)."""
    folder = tmp_path_factory.mktemp("promotion_models")
    metadata = {"architecture": "seed", "image_size": SIZE, "threshold": 0.5}
    return {
        name: modelio.save_model(
            brightness_model(weight), folder / f"{name}.keras", modelio.ModelMetadata(**metadata)
        )
        for name, weight in (("constant", 0.0), ("learned", 40.0), ("learned_too", 20.0))
    }


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """A migrated, empty MLflow database, copied into each test's home (creating one is slow)."""
    home = tmp_path_factory.mktemp("promotion_store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PNEUMONET_HOME", str(home))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        tracking.configure()
        from mlflow.tracking import MlflowClient

        MlflowClient().search_registered_models()
    return home / "mlflow.db"


@pytest.fixture
def home(isolated_state, empty_store, monkeypatch, tmp_path) -> Path:
    """A registry with nothing promoted, and no shipped model to compare with."""
    shutil.copyfile(empty_store, isolated_state / "mlflow.db")
    monkeypatch.setattr(config, "shipped_model_path", lambda: tmp_path / "no-shipped.keras")
    return isolated_state


@pytest.fixture
def data_root(dataset_factory, monkeypatch) -> Path:
    """The configured data root: synthetic train/ (for the validation split) and test/."""
    root = dataset_factory(per_class=12, splits=("train", "test"))
    monkeypatch.setenv("PNEUMONET_DATA", str(root))
    return root


def figures(roc_auc: float, name=promotion.VALIDATION_SET) -> SetFigures:
    return SetFigures(name, 100, 0.5, roc_auc, 0.9, 0.9, 0.9)


def model(label: str, *aucs: float, shortcuts_pass: bool | None = True) -> ModelFigures:
    names = (promotion.VALIDATION_SET, promotion.DEVELOPMENT_SET)
    sets = tuple(figures(auc, name) for auc, name in zip(aucs, names, strict=False))
    return ModelFigures(label, label * 8, sets, shortcuts_pass)


# --- the rules, on figures -------------------------------------------------------------------


def test_below_the_floor_on_either_set_is_did_not_learn():
    assert decide(model("c", 0.95, 0.95), None).kind == promotion.BETTER
    verdict = decide(model("c", 0.95, 0.89), None)
    assert (verdict.kind, verdict.passed) == (promotion.DID_NOT_LEARN, False)
    assert "0.890 on the development folder is below the floor 0.90" in verdict.reasons[0]
    assert decide(model("c", float("nan"), 0.95), None).kind == promotion.DID_NOT_LEARN


def test_lower_than_the_active_version_by_more_than_the_margin_is_worse():
    active = model("a", 0.97, 0.97)
    assert decide(model("c", 0.965, 0.97), active).kind == promotion.BETTER  # within 0.01
    verdict = decide(model("c", 0.97, 0.955), active)
    assert verdict.kind == promotion.WORSE
    assert "lower than the active version's 0.970 by more than 0.01" in verdict.reasons[0]


def test_failing_the_shortcut_audit_that_the_active_version_passes_is_worse():
    failing = model("c", 0.97, 0.97, shortcuts_pass=False)
    verdict = decide(failing, model("a", 0.97, 0.97, shortcuts_pass=True))
    assert verdict.kind == promotion.WORSE and "shortcut audit" in verdict.reasons[0]
    both_fail = model("a", 0.97, 0.97, shortcuts_pass=False)
    assert decide(failing, both_fail).kind == promotion.BETTER


def test_no_data_means_the_gate_cannot_check():
    verdict = decide(None, None)
    assert (verdict.kind, verdict.passed) == (promotion.CANNOT_CHECK, False)


@pytest.mark.parametrize("reason", ["", "   ", "two\nlines", "see /tmp/x", "x" * 201, None])
def test_an_override_reason_is_one_short_line(reason):
    with pytest.raises(ValueError, match="override reason"):
        promotion.check_override_reason(reason)
    assert promotion.check_override_reason("  data drift known ") == "data drift known"


# --- scoring real models ---------------------------------------------------------------------


def test_a_model_that_did_not_learn_is_refused_with_the_figures(tiny_models, data_root, home):
    verdict = promotion.check_promotion(tiny_models["constant"], tiny_models["learned"])
    assert verdict.kind == promotion.DID_NOT_LEARN
    assert [item.name for item in verdict.candidate.sets] == [
        promotion.VALIDATION_SET,
        promotion.DEVELOPMENT_SET,
    ]
    development = verdict.candidate.on(promotion.DEVELOPMENT_SET)
    assert (development.n_images, development.roc_auc) == (24, 0.5)
    assert verdict.active.on(promotion.DEVELOPMENT_SET).roc_auc >= promotion.FLOOR_ROC_AUC
    text = verdict.describe()
    assert "Promotion gate: did not learn" in text and "roc_auc" in text and "sensitivity" in text


def test_a_model_that_learned_passes_and_figures_are_cached_by_sha256(
    tiny_models, data_root, home, monkeypatch
):
    verdict = promotion.check_promotion(tiny_models["learned"], tiny_models["learned_too"])
    assert verdict.kind == promotion.BETTER, verdict.reasons
    assert (home / "promotion" / f"{verdict.active.sha256}.json").is_file()

    def no_loading(path):
        raise AssertionError("scored again")

    monkeypatch.setattr(modelio, "load_model", no_loading)
    again = promotion.check_promotion(tiny_models["learned"], tiny_models["learned_too"])
    assert again == verdict


def test_a_subset_cap_per_class_scores_fewer_images(tiny_models, data_root, home):
    verdict = promotion.check_promotion(tiny_models["learned"], None, max_per_class=3)
    assert verdict.candidate.on(promotion.DEVELOPMENT_SET).n_images == 6
    assert verdict.active is None and verdict.kind == promotion.BETTER


def test_no_labelled_data_cannot_check_and_refuses(tiny_models, home, tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMONET_DATA", str(tmp_path / "no-data"))
    verdict = audited.promotion_verdict(tiny_models["learned"])
    assert verdict.kind == promotion.CANNOT_CHECK
    with pytest.raises(promotion.PromotionRefused, match="cannot check"):
        audited.promote(tiny_models["learned"], source="cli:model promote")
    assert registry.active_version() is None


# --- promotion, override, audit trail and the command line -----------------------------------


def test_a_refused_model_is_promoted_only_with_a_reason_kept_in_trail_and_tags(
    tiny_models, data_root, home
):
    with pytest.raises(promotion.PromotionRefused, match="did not learn"):
        audited.promote(tiny_models["constant"], source="cli:model promote")
    assert registry.active_version() is None and audit.read_entries() == []

    version, result = audited.promote(
        tiny_models["constant"], source="cli:model promote", override_reason="smoke test only"
    )
    assert result.ok and int(registry.active_version().version) == int(version.version)
    assert version.tags["pneumonet.override_reason"] == "smoke test only"
    assert version.tags["pneumonet.gate_verdict"] == promotion.DID_NOT_LEARN
    (entry,) = audit.read_entries()
    assert entry["details"]["override_reason"] == "smoke test only"
    assert entry["details"]["gate_verdict"] == promotion.DID_NOT_LEARN
    assert registry.list_versions()[0]["override_reason"] == "smoke test only"


def test_the_learned_model_is_promoted_without_a_reason(tiny_models, data_root, home):
    version, _ = audited.promote(tiny_models["learned"], source="cli:model promote")
    assert version.tags["pneumonet.gate_verdict"] == promotion.BETTER
    assert "pneumonet.override_reason" not in version.tags
    # Now the constant model is compared with an active version that learned.
    verdict = audited.promotion_verdict(tiny_models["constant"])
    assert verdict.kind == promotion.DID_NOT_LEARN
    assert verdict.active.label == "registry version 1"


def test_the_cli_prints_the_figures_and_exits_non_zero_when_refused(
    tiny_models, data_root, home, capsys
):
    code = main(["model", "promote", str(tiny_models["constant"])])
    out, err = capsys.readouterr()
    assert code == REFUSED_EXIT_CODE
    assert "Promotion gate: did not learn" in out and "roc_auc" in out
    assert "--override-reason" in err and registry.active_version() is None

    code = main(["model", "promote", str(tiny_models["constant"]), "--override-reason", "a\\b"])
    assert code == 2 and "override reason" in capsys.readouterr().err

    arguments = ["model", "promote", str(tiny_models["constant"]), "--override-reason", "demo"]
    assert main(arguments) == 0
    assert "Promoted: registry version 1 is now active." in capsys.readouterr().out
