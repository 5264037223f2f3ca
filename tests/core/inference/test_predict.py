"""predict: a saved model predicts paths, bytes and file objects; bad files do not stop it."""

from __future__ import annotations

import io

import numpy as np
import pytest

from pneumonet_core.governance import registry
from pneumonet_core.imaging.preprocessing import preprocess_image
from pneumonet_core.inference.predict import Prediction, Predictor, expand_inputs
from pneumonet_core.models.modelio import ModelLoadError, load_model


@pytest.fixture(scope="module")
def predictor(trained_model_path) -> Predictor:
    return Predictor(trained_model_path)


@pytest.fixture
def images(image_factory):
    return [
        image_factory("normal.png", label_index=0, seed=1),
        image_factory("pneumonia.jpeg", label_index=1, seed=2),
        image_factory("other.jpeg", label_index=1, seed=3),
    ]


def test_predictor_reads_the_models_metadata(predictor, trained):
    assert predictor.image_size == 32
    assert predictor.threshold == pytest.approx(trained.result.threshold)
    assert predictor.metadata.class_names == ["NORMAL", "PNEUMONIA"]


def test_predict_paths_matches_the_model_directly(predictor, images, trained_model_path):
    predictions = predictor.predict(images)
    assert [p.file for p in predictions] == [str(path) for path in images]
    model, _ = load_model(trained_model_path)
    inputs = np.stack([preprocess_image(path, 32) for path in images])
    expected = np.asarray(model(inputs, training=False)).ravel()
    np.testing.assert_allclose([p.probability for p in predictions], expected, atol=1e-5)
    for prediction in predictions:
        assert prediction.error is None
        assert prediction.threshold == predictor.threshold
        positive = prediction.probability >= predictor.threshold
        assert prediction.label == ("PNEUMONIA" if positive else "NORMAL")


def test_bytes_file_objects_and_paths_give_the_same_probability(predictor, images):
    path = images[1]
    data = path.read_bytes()
    by_path, by_bytes, by_file = predictor.predict(
        [path, data, io.BytesIO(data)], names=["a", "b", "c"]
    )
    assert [by_path.file, by_bytes.file, by_file.file] == ["a", "b", "c"]
    assert by_bytes.probability == pytest.approx(by_path.probability, abs=1e-6)
    assert by_file.probability == pytest.approx(by_path.probability, abs=1e-6)


def test_bad_file_gets_an_error_and_the_others_are_still_predicted(predictor, images, corrupt_jpeg):
    sources = [images[0], corrupt_jpeg, images[1], b""]
    predictions = predictor.predict(sources)
    assert len(predictions) == 4
    good = [predictions[0], predictions[2]]
    assert all(p.error is None and 0.0 <= p.probability <= 1.0 for p in good)
    bad = predictions[1]
    assert bad.probability is None and bad.label is None
    assert "not a recognised image" in bad.error and corrupt_jpeg.name in bad.error
    assert predictions[3].file == "uploaded file" and "empty" in predictions[3].error
    alone = predictor.predict([images[0], images[1]])
    assert [p.probability for p in alone] == pytest.approx([p.probability for p in good])


def test_batching_does_not_change_results_or_order(predictor, image_factory):
    paths = [image_factory(f"img{i}.png", label_index=i % 2, seed=i) for i in range(7)]
    whole = predictor.predict(paths, batch_size=32)
    batched = list(predictor.iter_predict(paths, batch_size=3))
    assert [p.file for p in batched] == [p.file for p in whole]
    np.testing.assert_allclose(
        [p.probability for p in batched], [p.probability for p in whole], atol=1e-6
    )


def test_predict_arrays_checks_the_shape(predictor):
    assert predictor.predict_arrays(np.zeros((0, 32, 32, 1))).shape == (0,)
    assert predictor.predict_arrays(np.zeros((2, 32, 32, 1))).shape == (2,)
    with pytest.raises(ValueError, match=r"\(2, 64, 64, 1\)"):
        predictor.predict_arrays(np.zeros((2, 64, 64, 1)))


def test_prediction_to_dict_has_the_documented_keys():
    values = Prediction("x.png", 0.7, "PNEUMONIA", 0.5).to_dict()
    assert values == {
        "file": "x.png",
        "probability": 0.7,
        "label": "PNEUMONIA",
        "threshold": 0.5,
        "error": None,
        "ood": False,
        "ood_reason": None,
    }


def test_missing_model_raises_model_load_error_with_advice(tmp_path):
    with pytest.raises(ModelLoadError, match="no model at .*pneumonet train"):
        Predictor(tmp_path / "absent.keras")


def test_default_model_comes_from_pneumonet_model(monkeypatch, trained_model_path):
    monkeypatch.setenv("PNEUMONET_MODEL", str(trained_model_path))
    assert registry.active_predictor().path == trained_model_path


def test_a_threshold_override_labels_at_it_and_shares_the_model(predictor, images):
    (probability,) = [p.probability for p in predictor.predict(images[:1])]
    for threshold in (1e-6, 0.5, 1 - 1e-6):
        other = predictor.with_threshold(threshold)
        (result,) = other.predict(images[:1])
        expected = "PNEUMONIA" if probability >= threshold else "NORMAL"
        assert (result.threshold, result.label) == (threshold, expected)
        assert result.probability == pytest.approx(probability)
        assert other.model is predictor.model and other.operating_point is None
    assert predictor.threshold == float(predictor.metadata.threshold)  # unchanged
    assert predictor.with_threshold(None).threshold == predictor.threshold
    for bad in (0, 1, 1.5, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            predictor.with_threshold(bad)


def test_a_named_model_is_labelled_by_its_run_and_a_resolved_one_by_its_source(
    predictor, trained, monkeypatch, untrained_model_path
):
    assert predictor.model_label == f"run {trained.result.run_id}"
    assert (predictor.version, predictor.operating_point) == (None, None)
    assert Predictor(untrained_model_path, threshold=0.3).threshold == 0.3
    monkeypatch.setenv("PNEUMONET_MODEL", str(untrained_model_path))
    assert registry.active_predictor().model_label == "PNEUMONET_MODEL"


def test_expand_inputs_finds_images_in_folders_sorted(tmp_path, image_factory):
    image_factory("folder/b.png")
    image_factory("folder/sub/a.jpeg")
    (tmp_path / "folder" / "readme.txt").write_text("not an image")
    single = image_factory("single.jpeg")
    found = expand_inputs([tmp_path / "folder", single])
    assert found == [
        tmp_path / "folder" / "b.png",
        tmp_path / "folder" / "sub" / "a.jpeg",
        single,
    ]


def test_one_predictor_serves_many_threads_with_the_serial_results(predictor, image_factory):
    from concurrent.futures import ThreadPoolExecutor

    from pneumonet_core.inference.explain import GradCam

    paths = [image_factory(f"thread{i}.png", label_index=i % 2, seed=40 + i) for i in range(16)]
    serial = [predictor.predict([path])[0] for path in paths]
    explainer = GradCam(predictor.model)
    inputs = [predictor.preprocess(path) for path in paths]
    serial_heatmaps = [explainer(image) for image in inputs]

    def predict_and_explain(index: int):
        return predictor.predict([paths[index]])[0], explainer(inputs[index])

    with ThreadPoolExecutor(max_workers=8) as pool:
        # Each image three times, interleaved, so calls overlap on the shared model.
        results = list(pool.map(predict_and_explain, [i % 16 for i in range(48)]))
    for index, (prediction, heatmap) in enumerate(results):
        expected = serial[index % 16]
        assert prediction.file == expected.file
        assert prediction.probability == pytest.approx(expected.probability, abs=1e-6)
        assert (prediction.label, prediction.ood) == (expected.label, expected.ood)
        np.testing.assert_allclose(heatmap, serial_heatmaps[index % 16], atol=1e-5)


# --- explain: one image's prediction with its Grad-CAM, decoded once -------------------------


def test_explain_gives_the_prediction_of_predict_and_decodes_once(predictor, images, monkeypatch):
    from pneumonet_core.inference import predict as predict_module

    path = images[1]
    expected = predictor.predict([path])[0]
    decodes = []
    original = predict_module.read_image_with_info

    def counting_read(source):
        decodes.append(source)
        return original(source)

    monkeypatch.setattr(predict_module, "read_image_with_info", counting_read)
    explained = predictor.explain(path)
    assert len(decodes) == 1
    assert explained.prediction.file == expected.file
    assert explained.prediction.probability == pytest.approx(expected.probability, abs=1e-6)
    assert explained.prediction.label == expected.label
    assert (explained.prediction.ood, explained.prediction.ood_reason) == (
        expected.ood,
        expected.ood_reason,
    )
    assert explained.image.shape == (48, 48)  # smaller than display_size: not resized
    assert explained.heatmap.shape == explained.image.shape
    for array in (explained.image, explained.heatmap):
        assert array.dtype == np.float32
        assert array.min() >= 0.0 and array.max() <= 1.0
    assert explained.info.format == "JPEG"


def test_explain_without_heatmap_skips_grad_cam_and_keeps_the_prediction(
    predictor, tmp_path, monkeypatch
):
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.tile(np.arange(60, dtype=np.uint8), (50, 1))).save(path)
    full = predictor.explain(path)
    monkeypatch.setattr(type(predictor), "grad_cam", property(lambda self: pytest.fail("ran")))
    lazy = predictor.explain(path, with_heatmap=False)
    assert lazy.heatmap is None
    assert lazy.prediction == full.prediction
    np.testing.assert_array_equal(lazy.image, full.image)
    np.testing.assert_array_equal(lazy.model_input, predictor.preprocess(path))


def test_explain_shrinks_to_the_display_size_keeping_the_aspect_ratio(predictor, tmp_path):
    from PIL import Image

    wide = np.tile(np.linspace(0, 255, 120).astype(np.uint8), (60, 1))
    path = tmp_path / "wide.png"
    Image.fromarray(wide).save(path)
    explained = predictor.explain(io.BytesIO(path.read_bytes()), name="wide.png", display_size=40)
    assert explained.prediction.file == "wide.png"
    assert explained.image.shape == (20, 40)
    assert explained.heatmap.shape == (20, 40)
    assert explained.heatmap.min() >= 0.0 and explained.heatmap.max() <= 1.0
    by_path = predictor.predict([path])[0]
    assert explained.prediction.probability == pytest.approx(by_path.probability, abs=1e-6)


def test_explain_raises_the_read_error_predict_reports(predictor, corrupt_jpeg):
    from pneumonet_core.imaging import ImageReadError

    reported = predictor.predict([corrupt_jpeg])[0].error
    with pytest.raises(ImageReadError) as raised:
        predictor.explain(corrupt_jpeg)
    assert str(raised.value) == reported
    with pytest.raises(ValueError, match="display_size"):
        predictor.explain(corrupt_jpeg, display_size=0)


def test_grad_cam_is_built_once_and_explain_serves_many_threads(
    trained_model_path, image_factory, monkeypatch
):
    from concurrent.futures import ThreadPoolExecutor

    from pneumonet_core.inference import explain

    built = []
    original = explain.GradCam

    def counting_grad_cam(*args, **kwargs):
        built.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(explain, "GradCam", counting_grad_cam)
    fresh = Predictor(trained_model_path)
    assert built == []  # lazy: nothing built until the first explanation
    paths = [image_factory(f"explain{i}.png", label_index=i % 2, seed=60 + i) for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(fresh.explain, [paths[i % 6] for i in range(18)]))
    assert len(built) == 1
    serial = [fresh.explain(path) for path in paths]
    for index, result in enumerate(results):
        expected = serial[index % 6]
        assert result.prediction.probability == pytest.approx(
            expected.prediction.probability, abs=1e-6
        )
        np.testing.assert_allclose(result.heatmap, expected.heatmap, atol=1e-5)
