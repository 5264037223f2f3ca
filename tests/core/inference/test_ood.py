"""ood: the guard's two flags (not a chest X-ray, outside validated use) on a tiny model."""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile

import numpy as np
import pytest
from hostile_files import chest_like, encode
from PIL import Image

from pneumonet_core import cli
from pneumonet_core.imaging import ImageInfo
from pneumonet_core.imaging.preprocessing import resize_image
from pneumonet_core.inference import ood, ood_checks
from pneumonet_core.inference.ood import (
    NOT_A_CHEST_XRAY,
    OOD_ENTRY,
    OUTSIDE_VALIDATED_USE,
    OodStatistics,
    feature_reason,
    fit_statistics,
    flag_counts,
    ood_reason,
    reason_kind,
    simple_check,
    threshold_flagging_at_most,
)
from pneumonet_core.inference.ood_checks import NOT_AN_XRAY_DISTANCE_RATIO
from pneumonet_core.inference.predict import Predictor
from pneumonet_core.models.modelio import ModelLoadError, load_model, read_metadata

# Squares of 8 pixels: still a checkerboard after resizing to the tiny model's 32 pixels.
CHECKERBOARD = ((np.indices((64, 64)) // 8).sum(axis=0) % 2 * 255).astype(np.uint8)
TYPICAL_INPUT = resize_image(chest_like(64).astype(np.float32) / 255, 32)


def info(**changes) -> ImageInfo:
    values = {"format": "PNG", "width": 1000, "height": 900, "mode": "L"}
    values.update(changes)
    return ImageInfo(**values)


# --- simple checks ---------------------------------------------------------------------------


def test_a_plain_grayscale_radiograph_passes_the_simple_checks():
    assert simple_check(TYPICAL_INPUT, info()) is None
    assert (
        simple_check(TYPICAL_INPUT, info(format="DICOM", modality="DX", body_part="CHEST")) is None
    )
    assert simple_check(TYPICAL_INPUT, info(color_fraction=0.01)) is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"color_fraction": 0.4}, "colour image (40% of pixels strongly coloured)"),
        ({"width": 3000, "height": 500}, "extreme aspect ratio 6.0:1"),
        ({"width": 20, "height": 20}, "image too small to be a radiograph (20x20 pixels)"),
        ({"format": "DICOM", "modality": "CT"}, "DICOM modality CT is not a radiograph"),
        ({"format": "DICOM", "modality": "CR", "body_part": "HAND"}, "DICOM body part is HAND"),
    ],
)
def test_simple_checks_say_not_a_chest_xray_with_a_specific_reason(changes, expected):
    reason = simple_check(TYPICAL_INPUT, info(**changes))
    assert reason.startswith(f"{NOT_A_CHEST_XRAY}: {expected}")
    assert reason.endswith("; prediction not reliable")


def test_a_lateral_chest_view_is_outside_validated_use_not_a_non_xray():
    reason = simple_check(TYPICAL_INPUT, info(format="DICOM", modality="DX", view_position="LL"))
    assert reason == (
        f"{OUTSIDE_VALIDATED_USE}: lateral view (LL); validated on frontal views only; "
        "prediction not reliable"
    )


def test_a_near_constant_image_is_flagged():
    blank = np.full((32, 32, 1), 0.5, dtype=np.float32)
    reason = simple_check(blank, info())
    assert reason.startswith(f"{NOT_A_CHEST_XRAY}: near-constant image")


def test_reason_kind_reads_back_the_kind_and_refuses_other_text():
    for kind in (NOT_A_CHEST_XRAY, OUTSIDE_VALIDATED_USE):
        assert reason_kind(ood_reason(kind, "why")) == kind
    with pytest.raises(ValueError, match="not an out-of-distribution reason: 'unreadable'"):
        reason_kind("unreadable")
    with pytest.raises(ValueError, match="kind must be one of .* got 'odd'"):
        ood_reason("odd", "why")


def test_flag_counts_counts_each_kind_separately():
    reasons = [
        None,
        ood_reason(NOT_A_CHEST_XRAY, "colour image"),
        ood_reason(OUTSIDE_VALIDATED_USE, "unlike the training X-rays"),
        ood_reason(OUTSIDE_VALIDATED_USE, "lateral view"),
        None,
    ]
    assert flag_counts(reasons) == {
        "n": 5,
        "flagged": 3,
        NOT_A_CHEST_XRAY: 1,
        OUTSIDE_VALIDATED_USE: 2,
    }
    assert flag_counts([]) == {"n": 0, "flagged": 0, NOT_A_CHEST_XRAY: 0, OUTSIDE_VALIDATED_USE: 0}


# --- feature statistics ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gaussian_statistics() -> OodStatistics:
    rng = np.random.default_rng(0)
    scales = np.linspace(0.5, 3.0, 8)
    train = rng.normal(2.0, 1.0, (400, 8)) * scales
    validation = rng.normal(2.0, 1.0, (200, 8)) * scales
    return fit_statistics(train, validation, percentile=98.0)


def test_threshold_flags_at_most_two_percent_of_validation(gaussian_statistics):
    assert gaussian_statistics.n_fit == 400 and gaussian_statistics.n_validation == 200
    assert 0.0 < gaussian_statistics.validation_flag_rate <= 0.02


def test_far_features_are_flagged_and_typical_ones_are_not(gaussian_statistics):
    typical = np.full((1, 8), 2.0) * np.linspace(0.5, 3.0, 8)
    threshold = gaussian_statistics.threshold
    # Along one direction from the mean the distance grows linearly: place points at chosen
    # multiples of the threshold.
    direction = np.ones((1, 8))
    unit = gaussian_statistics.distances(gaussian_statistics.mean + direction)[0]
    beyond, far = (gaussian_statistics.mean + direction * threshold * k / unit for k in (1.3, 3.0))
    points = np.vstack([typical, beyond, far, far])
    near_reason, beyond_reason, far_reason, far_chest_reason = gaussian_statistics.reasons(
        points, [False, False, False, True]
    )
    assert near_reason is None
    assert re.fullmatch(
        rf"outside validated use: image unlike the paediatric chest X-rays the model was "
        rf"validated on \(feature distance {1.3 * threshold:.1f} > {threshold:.1f}\); "
        rf"prediction not reliable",
        beyond_reason,
    ), beyond_reason
    assert re.fullmatch(
        rf"not a chest X-ray: image features unlike any chest X-ray \(feature distance "
        rf"{3.0 * threshold:.1f}\) and no chest layout \(lung fields beside a bright "
        rf"mediastinum\); prediction not reliable",
        far_reason,
    ), far_reason
    # The features alone never call an image with a chest layout "not a chest X-ray".
    assert reason_kind(far_chest_reason) == OUTSIDE_VALIDATED_USE


def test_reasons_want_one_chest_layout_flag_per_input(gaussian_statistics):
    with pytest.raises(ValueError, match="expected 2 chest_like flags, got 1"):
        gaussian_statistics.reasons(np.zeros((2, 8)), [True])


def test_the_far_tier_starts_at_its_ratio_of_the_threshold():
    threshold = 20.0
    assert feature_reason(threshold, threshold, chest_like=False) is None
    beyond = feature_reason(threshold * 1.01, threshold, chest_like=False)
    assert reason_kind(beyond) == OUTSIDE_VALIDATED_USE
    limit = threshold * NOT_AN_XRAY_DISTANCE_RATIO
    near_limit = feature_reason(limit * 0.99, threshold, chest_like=False)
    assert reason_kind(near_limit) == OUTSIDE_VALIDATED_USE
    assert reason_kind(feature_reason(limit, threshold, chest_like=False)) == NOT_A_CHEST_XRAY
    assert reason_kind(feature_reason(limit, threshold, chest_like=True)) == OUTSIDE_VALIDATED_USE


def test_the_outside_validated_use_wording_never_calls_the_image_an_x_ray():
    reason = feature_reason(25.0, 20.0, chest_like=False)
    assert "training X-rays" not in reason
    assert reason.startswith("outside validated use: image unlike")


@pytest.mark.parametrize("count", [1, 7, 50, 51, 100, 149])
def test_threshold_never_flags_more_than_allowed(count):
    distances = np.random.default_rng(count).random(count)
    threshold = threshold_flagging_at_most(distances, 98.0)
    assert np.sum(distances > threshold) <= 0.02 * count
    assert threshold in distances


def test_statistics_round_trip_through_bytes(gaussian_statistics):
    again = OodStatistics.from_bytes(gaussian_statistics.to_bytes())
    # The precision travels as float32: the same to float32's precision, and the same distances.
    np.testing.assert_allclose(again.precision, gaussian_statistics.precision, rtol=1e-6)
    features = np.random.default_rng(5).normal(size=(20, again.mean.shape[0]))
    np.testing.assert_allclose(
        again.distances(features), gaussian_statistics.distances(features), rtol=1e-5
    )
    np.testing.assert_array_equal(again.mean, gaussian_statistics.mean)
    assert again.threshold == gaussian_statistics.threshold
    assert again.validation_flag_rate == gaussian_statistics.validation_flag_rate


def test_damaged_or_pickled_statistics_are_refused():
    with pytest.raises(ValueError, match="not PneumoNet OOD statistics"):
        OodStatistics.from_bytes(b"garbage")
    buffer = io.BytesIO()
    np.savez(buffer, mean=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="not PneumoNet OOD statistics"):
        OodStatistics.from_bytes(buffer.getvalue())


@pytest.mark.parametrize(
    ("train", "validation", "percentile", "message"),
    [
        (np.zeros((1, 3)), np.zeros((2, 3)), 98.0, "at least 2 training"),
        (np.zeros((5, 3)), np.zeros((2, 4)), 98.0, "do not match"),
        (np.zeros((5, 3)), np.zeros((2, 3)), 40.0, "percentile must be in"),
    ],
)
def test_fit_statistics_names_the_bad_value(train, validation, percentile, message):
    with pytest.raises(ValueError, match=message):
        fit_statistics(train, validation, percentile=percentile)


# --- with a tiny model -----------------------------------------------------------------------


def chest_like_batch(count: int, seed: int) -> np.ndarray:
    return np.stack(
        [resize_image(chest_like(64, seed + i).astype(np.float32) / 255, 32) for i in range(count)]
    )


@pytest.fixture(scope="module")
def guarded_model(untrained_model_path, tmp_path_factory):
    """A copy of the tiny model with OOD statistics fitted on chest-like synthetic images."""
    path = tmp_path_factory.mktemp("guarded") / "guarded.keras"
    shutil.copy(untrained_model_path, path)
    model, _ = load_model(path)
    statistics = fit_statistics(
        ood.compute_features(model, chest_like_batch(120, seed=0)),
        ood.compute_features(model, chest_like_batch(60, seed=1000)),
    )
    ood.save_statistics(path, statistics)
    return path


def test_statistics_are_stored_inside_the_model_and_the_model_still_loads(
    guarded_model, untrained_model_path
):
    with zipfile.ZipFile(guarded_model) as archive:
        assert OOD_ENTRY in archive.namelist()
    assert read_metadata(guarded_model) == read_metadata(untrained_model_path)
    model, _ = load_model(guarded_model)
    width = model.get_layer(ood.FEATURE_LAYER).input.shape[-1]
    assert ood.load_statistics(guarded_model).mean.shape == (width,)
    assert ood.load_statistics(untrained_model_path) is None


def test_predictor_flags_an_obviously_different_grayscale_image(guarded_model):
    predictor = Predictor(guarded_model)
    checkerboard = CHECKERBOARD
    typical, different = predictor.predict(
        [
            encode(Image.fromarray(chest_like(64, seed=5000)), "PNG"),
            encode(Image.fromarray(checkerboard), "PNG"),
        ]
    )
    assert typical.ood is False and typical.ood_reason is None
    assert different.ood is True
    # A checkerboard lies far beyond any X-ray's features: not a chest X-ray at all.
    assert reason_kind(different.ood_reason) == NOT_A_CHEST_XRAY
    assert "image features unlike any chest X-ray (feature distance" in different.ood_reason
    assert different.probability is not None  # still reported, but flagged


def test_cli_predict_names_each_kind_of_flag(guarded_model, tmp_path, capsys, monkeypatch):
    # Only the threshold counts here, so the checkerboard stands in for an X-ray outside use.
    monkeypatch.setattr(ood_checks, "NOT_AN_XRAY_DISTANCE_RATIO", float("inf"))
    checkerboard, colour = tmp_path / "checkerboard.png", tmp_path / "red.png"
    checkerboard.write_bytes(encode(Image.fromarray(CHECKERBOARD), "PNG"))
    red = np.zeros((64, 64, 3), dtype=np.uint8)
    red[..., 0] = 200
    colour.write_bytes(encode(Image.fromarray(red), "PNG"))
    arguments = ["predict", "--quiet", "--model", str(guarded_model), str(checkerboard)]
    assert cli.main([*arguments, str(colour)]) == 0
    far, coloured = capsys.readouterr().out.splitlines()[-2:]
    assert "checkerboard.png\toutside validated use: image unlike the paediatric" in far
    assert "red.png\tno result: not a chest X-ray: colour image (100% of pixels" in coloured
    assert "PNEUMONIA" not in coloured and "NORMAL" not in coloured
    assert cli.main([*arguments, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["ood"] is True
    assert reason_kind(record["ood_reason"]) == OUTSIDE_VALIDATED_USE
    assert record["label"] in ("NORMAL", "PNEUMONIA")  # outside validated use keeps its label


def test_a_non_x_ray_gets_no_label_in_json_nor_in_the_audit_trail(
    guarded_model, tmp_path, capsys, monkeypatch
):
    from pneumonet_core.governance import audit

    monkeypatch.setenv("PNEUMONET_HOME", str(tmp_path / "state"))
    red = np.zeros((64, 64, 3), dtype=np.uint8)
    red[..., 0] = 200
    colour = tmp_path / "red.png"
    colour.write_bytes(encode(Image.fromarray(red), "PNG"))
    assert (
        cli.main(["predict", "--quiet", "--json", "--model", str(guarded_model), str(colour)]) == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert reason_kind(record["ood_reason"]) == NOT_A_CHEST_XRAY
    assert record["label"] is None and record["probability"] is not None
    entries = [entry for entry in audit.read_entries() if entry["action"] == "predict"]
    assert entries and entries[-1]["label"] is None


def test_a_non_x_ray_prediction_has_no_label_but_an_outside_use_one_does(guarded_model):
    predictor = Predictor(guarded_model)
    red = np.zeros((64, 64, 3), dtype=np.uint8)
    red[..., 0] = 200
    (colour,) = predictor.predict([encode(Image.fromarray(red), "PNG")])
    assert colour.is_not_a_chest_xray and colour.label is None
    assert colour.to_dict()["label"] is None


def test_without_statistics_only_the_simple_checks_apply(untrained_model_path):
    predictor = Predictor(untrained_model_path)
    assert predictor.ood_statistics is None
    checkerboard = CHECKERBOARD
    colour = np.zeros((64, 64, 3), dtype=np.uint8)
    colour[..., 0] = 200
    plain, red = predictor.predict(
        [encode(Image.fromarray(checkerboard), "PNG"), encode(Image.fromarray(colour), "PNG")]
    )
    assert plain.ood is False
    assert red.ood is True and red.ood_reason.startswith(f"{NOT_A_CHEST_XRAY}: colour image")


def test_damaged_statistics_entry_gives_a_clear_model_error(untrained_model_path, tmp_path):
    from pneumonet_core.models.modelio import write_model_entries

    path = tmp_path / "damaged.keras"
    shutil.copy(untrained_model_path, path)
    write_model_entries(path, {OOD_ENTRY: b"not an npz"})
    with pytest.raises(ModelLoadError, match=f"damaged {OOD_ENTRY}"):
        Predictor(path)


def write_chest_like_dataset(root, per_class: int = 16):
    for label_index, label in enumerate(("NORMAL", "PNEUMONIA")):
        folder = root / "train" / label
        folder.mkdir(parents=True)
        for index in range(per_class):
            pixels = chest_like(48, seed=label_index * 1000 + index)
            name = f"person{label_index * 1000 + index}_virus_{index}.jpeg"
            (folder / name).write_bytes(encode(Image.fromarray(pixels), "JPEG"))
    return root


def test_fit_ood_for_model_and_the_cli_attach_statistics(untrained_model_path, tmp_path, capsys):
    data = write_chest_like_dataset(tmp_path / "data")
    path = tmp_path / "model.keras"
    shutil.copy(untrained_model_path, path)
    statistics = ood.fit_ood_for_model(path, data, max_images=20)
    assert (
        statistics.n_fit == 20 and 5 <= statistics.n_validation <= 11
    )  # 32 images, 1 in 4 held out
    assert ood.load_statistics(path).threshold == pytest.approx(statistics.threshold)

    assert cli.main(["ood", "fit", "--model", str(path), str(data), "--percentile", "90"]) == 0
    assert re.search(r"OOD statistics fitted on 2\d training images", capsys.readouterr().out)
    assert ood.load_statistics(path).percentile == 90.0


def test_cli_ood_fit_reports_a_missing_dataset_in_one_line(untrained_model_path, tmp_path, capsys):
    path = tmp_path / "model.keras"
    shutil.copy(untrained_model_path, path)
    assert cli.main(["ood", "fit", "--model", str(path), str(tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("pneumonet: error:") and "nowhere" in error and "\n" not in error
    assert ood.load_statistics(path) is None


def test_fit_ood_for_model_reproduces_the_statistics_training_stored(trained, tmp_path):
    stored = ood.load_statistics(trained.model_path)
    path = tmp_path / "copy.keras"
    shutil.copy(trained.model_path, path)
    refitted = ood.fit_ood_for_model(path, trained.data_dir)
    assert (refitted.n_fit, refitted.n_validation) == (stored.n_fit, stored.n_validation)
    np.testing.assert_allclose(refitted.mean, stored.mean, rtol=1e-4, atol=1e-6)
    assert refitted.threshold == pytest.approx(stored.threshold, rel=1e-3)


def test_sample_indices_are_reproducible_sorted_and_capped():
    first = ood.sample_indices(100, 10, seed=1)
    assert len(first) == 10 and np.all(np.diff(first) > 0)
    np.testing.assert_array_equal(first, ood.sample_indices(100, 10, seed=1))
    assert not np.array_equal(first, ood.sample_indices(100, 10, seed=2))
    np.testing.assert_array_equal(ood.sample_indices(5, 10, seed=1), np.arange(5))
    with pytest.raises(ValueError, match="max_images must be at least 2, got 1"):
        ood.sample_indices(100, 1, seed=1)


def test_model_training_split_is_the_runs_split_by_default(trained):
    from pneumonet_core.data import training_split

    metadata = read_metadata(trained.model_path)
    train_frame, validation_frame = ood.model_training_split(metadata, trained.data_dir)
    expected = training_split(
        trained.data_dir,
        val_fraction=trained.config.val_fraction,
        seed=trained.config.seed,
    )
    assert list(validation_frame["path"]) == list(expected[1]["path"])
    assert list(train_frame["path"]) == list(expected[0]["path"])


def test_cli_ood_fit_max_images_below_two_is_refused(untrained_model_path, tmp_path, capsys):
    data = write_chest_like_dataset(tmp_path / "data", per_class=8)
    path = tmp_path / "model.keras"
    shutil.copy(untrained_model_path, path)
    assert cli.main(["ood", "fit", "--model", str(path), str(data), "--max-images", "0"]) == 2
    assert "max_images must be at least 2, got 0" in capsys.readouterr().err
