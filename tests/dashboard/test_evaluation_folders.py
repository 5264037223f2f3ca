"""Which folders Evaluate may read (the configured data roots), its default cap, and the
`evaluate` audit entry (fingerprint, image count and metrics; never a file name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dashboard_fixtures import build_tiny_model, open_page, page_texts, write_labelled_folder

from dashboard import evaluation_folders


@pytest.fixture
def roots(tmp_path) -> list[Path]:
    (tmp_path / "data" / "site").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return [(tmp_path / "data").resolve()]


def test_a_folder_under_a_root_is_accepted_absolute_or_relative(roots):
    site = roots[0] / "site"
    assert evaluation_folders.folder_under_roots(str(site), roots) == site
    assert evaluation_folders.folder_under_roots("site", roots) == site


def test_outside_the_roots_existing_or_not_gets_the_same_message(roots, tmp_path):
    messages = set()
    for typed in (tmp_path / "outside", tmp_path / "missing", Path("/etc")):
        with pytest.raises(ValueError) as refused:
            evaluation_folders.folder_under_roots(str(typed), roots)
        messages.add(str(refused.value))
    assert messages == {evaluation_folders.OUTSIDE_ROOTS}


def test_dot_dot_and_symbolic_links_out_of_the_roots_are_refused(roots, tmp_path):
    with pytest.raises(ValueError, match="'..' is not allowed"):
        evaluation_folders.folder_under_roots(str(roots[0] / "site" / ".." / ".."), roots)
    (roots[0] / "escape").symlink_to(tmp_path / "outside")
    with pytest.raises(ValueError, match="configured data roots"):
        evaluation_folders.folder_under_roots(str(roots[0] / "escape"), roots)


def test_the_roots_come_from_the_secrets_or_default_to_the_dataset_root(tmp_path):
    default = str(tmp_path / "dataset")
    assert evaluation_folders.parse_data_roots({}, default) == [(tmp_path / "dataset").resolve()]
    secrets = {"pneumonet": {"data": {"roots": [str(tmp_path / "a"), str(tmp_path / "b")]}}}
    assert evaluation_folders.parse_data_roots(secrets, default) == [
        (tmp_path / "a").resolve(),
        (tmp_path / "b").resolve(),
    ]
    with pytest.raises(ValueError, match="'/data'"):
        evaluation_folders.parse_data_roots({"pneumonet": {"data": {"roots": "/data"}}}, default)


def test_the_fingerprint_depends_on_the_files_and_labels_not_on_the_order(tmp_path):
    paths, labels = (
        [str(tmp_path / "NORMAL" / "a.png"), str(tmp_path / "PNEUMONIA" / "b.png")],
        [0, 1],
    )
    fingerprint = evaluation_folders.set_fingerprint(paths, labels, str(tmp_path))
    assert fingerprint == evaluation_folders.set_fingerprint(
        paths[::-1], labels[::-1], str(tmp_path)
    )
    assert fingerprint != evaluation_folders.set_fingerprint(paths, [1, 0], str(tmp_path))
    assert len(fingerprint) == 64


def test_an_evaluation_is_recorded_once_with_no_file_name(monkeypatch, tmp_path):
    from pneumonet_core.governance import audit

    monkeypatch.setenv("PNEUMONET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PNEUMONET_MODEL", str(build_tiny_model(tmp_path / "tiny.keras")))
    monkeypatch.setenv("PNEUMONET_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    write_labelled_folder(tmp_path / "data" / "test")
    app = open_page("evaluate")
    assert "At most 500 images per class (default 500)." in page_texts(app, ("caption",))
    app.run()  # a rerun records nothing more
    (entry,) = audit.read_entries(action="evaluate")
    assert entry["source"] == "dashboard:Evaluate" and entry["model_sha256"]
    details = entry["details"]
    assert details["images"] == 12 and details["image_set"] == "folder"
    assert len(details["set_sha256"]) == 64 and 0 <= details["roc_auc"] <= 1
    stored = json.dumps(entry)
    assert "person" not in stored and ".png" not in stored and str(tmp_path) not in stored


def test_the_validation_split_is_carved_from_the_configured_root_not_the_recorded_one(tmp_path):
    from dashboard import evaluation
    from pneumonet_core.models import architectures, modelio

    metadata = modelio.ModelMetadata(
        architecture="seed",
        image_size=64,
        training={"data_dir": "/elsewhere/chest_xray", "val_fraction": 0.25, "split_seed": 7},
    )
    model = modelio.save_model(
        architectures.build_model("seed", image_size=64), tmp_path / "m.keras", metadata
    )
    settings = evaluation.validation_split_settings(str(model), str(tmp_path / "configured"))
    assert settings["data_dir"] == str(tmp_path / "configured")
    assert (settings["val_fraction"], settings["seed"]) == (0.25, 7)


def test_the_shipped_model_matches_the_shared_data_and_a_copy_with_other_files_does_not(tmp_path):
    from dashboard_fixtures import PROJECT_ROOT, make_tiny_dataset, require_data

    from dashboard import evaluation

    shipped = str(PROJECT_ROOT / "assets" / "model" / "pneumonet.keras")
    assert evaluation.training_data_difference(shipped, str(require_data())) is None
    other = make_tiny_dataset(tmp_path / "other")
    difference = evaluation.training_data_difference(shipped, str(other))
    assert difference and "not the model's own" in difference
