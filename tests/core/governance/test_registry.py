"""registry: promoted models as versions of an MLflow registered model, in a real SQLite store."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import pytest

from pneumonet_core.governance import registry, tracking
from pneumonet_core.models.modelio import ModelLoadError, ModelMetadata, save_model
from pneumonet_core.utils import config

USER = "a@b.org"
TINY_IMAGE_SIZE = 32  # as in conftest: small and fast


@pytest.fixture(scope="module")
def tiny_model():
    """One untrained seed model at 32 px; tests save it with the metadata they need."""
    import keras

    from pneumonet_core.models.architectures import build_model

    keras.utils.set_random_seed(1)
    return build_model("seed", TINY_IMAGE_SIZE)


def save(model, path: Path, **metadata) -> Path:
    metadata = {"architecture": "seed", "image_size": TINY_IMAGE_SIZE} | metadata
    return save_model(model, path, ModelMetadata(**metadata))


@pytest.fixture(scope="module")
def models(tiny_model, tmp_path_factory) -> dict[str, Path]:
    """Two different model files (`a`: threshold 0.5; `b`: 0.7 with a card) and broken ones."""
    folder = tmp_path_factory.mktemp("registry_models")
    a = save(tiny_model, folder / "a" / "a.keras", threshold=0.5)
    b = save(tiny_model, folder / "b" / "b.keras", threshold=0.7, metrics={"accuracy": 0.8})
    accuracy = {"value": 0.9, "ci_low": 0.8, "ci_high": 0.95}
    card = {"name": "b", "validation": {"accuracy": accuracy, "roc_auc": 0.97}}
    (folder / "b" / "model_card.json").write_text(json.dumps(card))
    garbage = folder / "garbage.keras"
    garbage.write_bytes(b"not a zip archive")
    # Readable metadata, but the model's input (32 px) does not match it (40 px).
    mismatched = save(tiny_model, folder / "mismatched.keras", image_size=40)
    return {"a": a, "b": b, "garbage": garbage, "mismatched": mismatched}


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """A migrated, empty MLflow database, copied into each test's home (creating one is slow)."""
    home = tmp_path_factory.mktemp("empty_store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PNEUMONET_HOME", str(home))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        registry._client().search_registered_models()
    return home / "mlflow.db"


@pytest.fixture
def home(isolated_state, empty_store) -> Path:
    shutil.copyfile(empty_store, isolated_state / "mlflow.db")
    return isolated_state


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def active_number() -> int | None:
    active = registry.active_version()
    return None if active is None else int(active.version)


def test_promote_registers_version_one_and_makes_it_active(home, models):
    version = registry.promote(models["a"], user=USER)
    assert int(version.version) == 1
    assert active_number() == 1
    assert version.tags["pneumonet.promoted_by"] == USER
    assert version.tags["pneumonet.threshold"] == "0.5"
    assert version.tags["pneumonet.image_size"] == str(TINY_IMAGE_SIZE)
    stored = registry.version_model_path(1)
    assert stored.is_relative_to(home / "registry")
    assert stored.read_bytes() == models["a"].read_bytes()
    assert not stored.stat().st_mode & 0o222  # read-only: the stored file never changes
    assert version.source == stored.parent.resolve().as_uri()


def test_second_promotion_is_version_two_and_rollback_returns_to_one(home, models):
    registry.promote(models["a"], user=USER)
    second = registry.promote(models["b"], user="c@d.org")
    assert int(second.version) == 2
    assert active_number() == 2
    assert registry.active_model_path().read_bytes() == models["b"].read_bytes()
    back = registry.rollback(1, user="e@f.org")
    assert int(back.version) == 1
    assert active_number() == 1
    assert back.tags["pneumonet.activated_by"] == "e@f.org"
    assert back.tags["pneumonet.promoted_by"] == USER
    assert registry.active_model_path().read_bytes() == models["a"].read_bytes()
    assert int(registry.rollback("2", user=USER).version) == 2


def test_promoting_a_registered_model_again_reuses_its_version(home, models):
    registry.promote(models["a"], user=USER)
    registry.promote(models["b"], user=USER)
    again = registry.promote(models["a"], user="g@h.org")
    assert int(again.version) == 1
    assert active_number() == 1
    assert [row["version"] for row in registry.list_versions()] == [2, 1]


@pytest.mark.parametrize("bad", [7, "7", 0, -1, "one", "1.5", None])
def test_unknown_or_malformed_versions_are_refused(home, models, bad):
    registry.promote(models["a"], user=USER)
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        registry.rollback(bad, user=USER)
    assert active_number() == 1


def test_rollback_before_any_promotion_is_refused_without_creating_a_store(isolated_state):
    with pytest.raises(ValueError, match="no registry version 1"):
        registry.rollback(1, user=USER)
    assert not (isolated_state / "mlflow.db").exists()


@pytest.mark.parametrize("broken", ["garbage", "mismatched"])
def test_a_model_that_does_not_load_is_refused_and_active_is_unchanged(home, models, broken):
    registry.promote(models["a"], user=USER)
    with pytest.raises(ModelLoadError):
        registry.promote(models[broken], user=USER)
    assert active_number() == 1
    assert [row["version"] for row in registry.list_versions()] == [1]
    stored = list((home / "registry" / "pneumonet").iterdir())
    assert [folder.name for folder in stored] == [sha256(models["a"])[:24]]


@pytest.mark.parametrize("failing", ["create_model_version", "set_registered_model_alias"])
def test_a_registration_failing_midway_leaves_the_previous_version_active(
    home, models, monkeypatch, failing
):
    from mlflow.tracking import MlflowClient

    registry.promote(models["a"], user=USER)

    def fail(*args, **kwargs):
        raise RuntimeError("store went away")

    with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="store went away"):
        patch.setattr(MlflowClient, failing, fail)
        registry.promote(models["b"], user=USER)
    assert active_number() == 1
    assert registry.active_model_path().read_bytes() == models["a"].read_bytes()


def test_bad_users_and_sources_are_refused(home, models, tmp_path):
    for user in ("", "   ", "two\nlines", None):
        with pytest.raises(ValueError, match="user"):
            registry.promote(models["a"], user=user)
    with pytest.raises(ValueError, match="no-such-file.keras"):
        registry.promote(tmp_path / "no-such-file.keras", user=USER)
    with pytest.raises(ValueError, match="0" * 32):
        registry.promote("0" * 32, user=USER)
    assert registry.list_versions() == []


def test_resolution_order_env_var_then_registry_then_shipped(isolated_state, models, monkeypatch):
    resolved = registry.resolve_model()
    assert (resolved.path, resolved.source, resolved.label) == (
        config.shipped_model_path(),
        "shipped",
        "shipped",
    )
    assert registry.active_version() is None
    assert not (isolated_state / "mlflow.db").exists()  # resolving never creates a store

    registry.promote(models["a"], user=USER)
    resolved = registry.resolve_model()
    assert (resolved.source, resolved.version, resolved.label) == (
        "registry",
        1,
        "registry version 1",
    )
    assert resolved.path == registry.version_model_path(1)
    assert registry.active_model_path() == resolved.path

    monkeypatch.setenv("PNEUMONET_MODEL", str(models["b"]))
    resolved = registry.resolve_model()
    assert (resolved.path, resolved.source, resolved.label) == (
        models["b"],
        "PNEUMONET_MODEL",
        "PNEUMONET_MODEL",
    )
    assert registry.active_model_path() == models["b"]


def test_operating_point_round_trip_with_evidence(home, models, dataset_factory):
    from pneumonet_core.data import data_fingerprint, scan_dataset
    from pneumonet_core.inference.predict import Predictor
    from pneumonet_core.metrics import classification as evaluate

    registry.promote(models["a"], user=USER)
    assert registry.operating_point(1) is None
    folder = dataset_factory(per_class=4, splits=("val",)) / "val"
    predictor = Predictor(registry.version_model_path(1))
    evidence = registry.compute_evidence(predictor, folder, 0.51)

    frame = scan_dataset(folder).frame
    scores = [p.probability for p in predictor.predict(list(frame["path"]))]
    expected = evaluate.binary_metrics(frame["label_index"], scores, threshold=0.51)
    assert evidence.n_images == 8
    assert evidence.fingerprint == data_fingerprint(frame["path"])
    assert evidence.sensitivity == pytest.approx(expected["sensitivity"])
    assert evidence.specificity == pytest.approx(expected["specificity"])
    assert evidence.model_sha256 == sha256(models["a"])

    saved = registry.set_operating_point(1, 0.51, user=USER, evidence=evidence)
    assert registry.operating_point("1") == saved
    assert (saved.version, saved.threshold, saved.saved_by, saved.evidence) == (
        1,
        0.51,
        USER,
        evidence,
    )
    assert re.fullmatch(
        r"threshold 0\.51, chosen on 8 local images by a@b\.org, \d{4}-\d\d-\d\d",
        registry.describe_operating_point(saved),
    )
    assert registry.resolve_model().operating_point == saved
    row = registry.list_versions()[0]
    assert row["operating_point"]["evidence"]["fingerprint"] == evidence.fingerprint
    assert row["operating_point_text"] == registry.describe_operating_point(saved)


def test_operating_point_evidence_must_match_threshold_and_model(home, models, tmp_path):
    registry.promote(models["a"], user=USER)
    evidence = registry.Evidence(0.6, 10, "f" * 64, 0.9, 0.8, str(tmp_path), sha256(models["a"]))
    with pytest.raises(ValueError, match="0.7"):
        registry.set_operating_point(1, 0.7, user=USER, evidence=evidence)
    foreign = registry.Evidence(0.6, 10, "f" * 64, 0.9, 0.8, str(tmp_path), "0" * 64)
    with pytest.raises(ValueError, match="another model"):
        registry.set_operating_point(1, 0.6, user=USER, evidence=foreign)
    with pytest.raises(ValueError, match="no registry version 2"):
        registry.set_operating_point(2, 0.6, user=USER, evidence=evidence)
    assert registry.operating_point(1) is None
    assert registry.set_operating_point(1, 0.6, user=USER, evidence=evidence).threshold == 0.6


@pytest.mark.parametrize("bad", [0, 1, 0.0, 1.0, -0.2, 1.5, math.nan, math.inf, True, "0.5", None])
def test_thresholds_must_lie_strictly_between_zero_and_one(bad):
    with pytest.raises(ValueError, match=f"threshold .*{re.escape(repr(bad))}"):
        registry.check_threshold(bad)


def test_a_site_threshold_outside_zero_and_one_is_refused(home, models):
    registry.promote(models["a"], user=USER)
    for bad in (0.0, 1.0, 1.5):
        evidence = registry.Evidence(bad, 1, "f", 1.0, 1.0, "x", sha256(models["a"]))
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            registry.set_operating_point(1, bad, user=USER, evidence=evidence)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        registry.compute_evidence(models["a"], home, 1.0)
    assert registry.operating_point(1) is None
    assert registry.check_threshold(0.25) == 0.25


def test_describe_operating_point():
    evidence = registry.Evidence(0.91, 300, "f" * 64, 0.95, 0.8, "/data/site", "0" * 64)
    point = registry.OperatingPoint(3, 0.91, USER, "2026-11-26T10:00:00+00:00", evidence)
    assert registry.describe_operating_point(point) == (
        "threshold 0.91, chosen on 300 local images by a@b.org, 2026-11-26"
    )


def test_list_versions_fields_and_run_links(home, models, tiny_model, tmp_path):
    import mlflow

    assert registry.list_versions() == []
    with tracking.start_training_run("linked") as run_id:
        logged = save(tiny_model, tmp_path / "run" / "logged.keras", run_id=run_id, threshold=0.6)
        mlflow.log_artifact(str(logged), artifact_path="model")
    by_run = registry.promote(run_id, user=USER)
    assert by_run.run_id == run_id
    assert by_run.tags["pneumonet.source"] == f"run {run_id}"

    registry.promote(models["b"], user="c@d.org")
    recorded = save(tiny_model, tmp_path / "recorded.keras", run_id=run_id, threshold=0.65)
    assert registry.promote(recorded, user=USER).run_id == run_id  # from the model's metadata
    registry.rollback(2, user=USER)

    rows = registry.list_versions()
    assert [row["version"] for row in rows] == [3, 2, 1]
    newest, card_model, first = rows
    assert card_model["aliases"] == ["active"] and card_model["active"]
    assert not newest["active"] and newest["aliases"] == []
    assert card_model["promoted_by"] == "c@d.org"
    assert card_model["run_id"] is None
    assert card_model["threshold"] == 0.7
    assert card_model["image_size"] == TINY_IMAGE_SIZE
    assert (card_model["val_accuracy"], card_model["val_roc_auc"]) == (0.9, 0.97)
    assert card_model["operating_point"] is None and card_model["operating_point_text"] == ""
    assert card_model["sha256"] == sha256(models["b"])
    assert (first["run_id"], first["threshold"], first["val_accuracy"]) == (run_id, 0.6, None)
    assert newest["run_id"] == run_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", first["created"])
    json.dumps(rows)  # ready for `pneumonet model list --json`
    stored = registry.version_model_path(2)
    assert json.loads(stored.with_name("model_card.json").read_text())["validation"]


def test_a_metadata_run_id_of_another_store_is_kept_as_a_tag_only(home, tiny_model, tmp_path):
    foreign = save(tiny_model, tmp_path / "foreign.keras", run_id="f" * 32)
    version = registry.promote(foreign, user=USER)
    assert not version.run_id
    assert version.tags["pneumonet.trained_in_run"] == "f" * 32


def test_registry_state_changes_with_a_promotion_and_a_rollback(home, models):
    before = registry.registry_state()
    assert registry.registry_state() == before
    registry.promote(models["a"], user=USER)
    promoted = registry.registry_state()
    assert promoted != before
    registry.promote(models["b"], user=USER)
    registry.rollback(1, user=USER)
    assert registry.registry_state() not in (before, promoted)
