"""AppTest checks of every dashboard page (streamlit.testing.v1, no browser).

A tiny untrained model (64 px) is built once and used as the active model through
`PNEUMONET_MODEL`; `PNEUMONET_HOME` points at a temporary folder, so the real run store is never
touched. Images are synthetic unless a test says it needs the shared data.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from dashboard_fixtures import (
    build_tiny_model,
    open_page,
    page_texts,
    png_bytes,
    require_data,
    sample_image_path,
    write_labelled_folder,
)
from streamlit.testing.v1 import AppTest

from pneumonet_core.inference import ood_checks


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny untrained model shared by this module's tests."""
    return build_tiny_model(tmp_path_factory.mktemp("dashboard_model") / "tiny.keras")


@pytest.fixture
def dashboard_env(monkeypatch, tmp_path, tiny_model) -> Path:
    """Isolate the dashboard: temporary PNEUMONET_HOME, the tiny model as the active model."""
    home = tmp_path / "home"
    monkeypatch.setenv("PNEUMONET_HOME", str(home))
    monkeypatch.setenv("PNEUMONET_MODEL", str(tiny_model))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


@pytest.fixture
def synthetic_folder(tmp_path) -> Path:
    """A labelled folder (NORMAL/ and PNEUMONIA/, 6 PNGs each) to evaluate on."""
    return write_labelled_folder(tmp_path / "labelled")


def texts(app: AppTest) -> str:
    """Every markdown, caption, info, warning, error and success text on the page."""
    return page_texts(app)


def plotly_figures(app: AppTest) -> list[dict]:
    """The Plotly figures on the page, as their JSON specs."""
    return [json.loads(element.proto.spec) for element in app.get("plotly_chart")]


def decode_array(value) -> np.ndarray:
    """A Plotly JSON array, plain or typed (`{"dtype", "bdata", "shape"}`), as NumPy."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = [int(part) for part in str(value.get("shape", flat.size)).split(",")]
        return flat.reshape(shape)
    return np.asarray(value)


def matrix_values(app: AppTest) -> np.ndarray:
    """The numbers shown in the confusion matrix (counts or fractions)."""
    return decode_array(confusion_matrix(app)["data"][0]["z"])


def confusion_matrix(app: AppTest) -> dict:
    """The confusion-matrix figure's spec."""
    for figure in plotly_figures(app):
        title = figure["layout"].get("title", {}).get("text", "")
        if title.startswith("Confusion matrix"):
            return figure
    raise AssertionError("no confusion matrix on the page")


# --- Home ------------------------------------------------------------------------------------


def test_home_shows_intended_use_model_and_links(dashboard_env):
    app = open_page()
    assert app.title[0].value == "PneumoNet"
    assert "Not a diagnosis" in app.warning[0].value
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Input size"] == "64 px"
    assert metrics["Threshold"] == "0.50"
    assert "ROC AUC" in metrics
    assert "tiny-test-model" in texts(app)
    links = [element.proto.label for element in app.get("page_link")]
    assert {"Predict on X-rays", "Evaluate a model", "Train a model", "All runs"} <= set(links)


def test_home_shows_a_long_architecture_name_in_full(dashboard_env, monkeypatch):
    from pneumonet_core.utils import config

    monkeypatch.setenv("PNEUMONET_MODEL", str(config.shipped_model_path()))
    app = open_page()
    assert "Architecture  \n**pneumonet-ensemble**" in [item.value for item in app.markdown]
    assert "Architecture" not in {metric.label for metric in app.metric}  # a metric cuts it off


def test_home_says_clearly_when_there_is_no_model(dashboard_env, monkeypatch, tmp_path):
    monkeypatch.setenv("PNEUMONET_MODEL", str(tmp_path / "missing.keras"))
    app = open_page()
    assert "No model is available yet" in texts(app)


def test_home_shows_the_dataset_counts(dashboard_env):
    require_data()
    app = open_page()
    counts = app.dataframe[0].value
    assert {"NORMAL", "PNEUMONIA", "total"} <= set(counts.columns)
    assert counts.loc["train", "total"] > 0


def test_home_reports_dataset_problems(dashboard_env, monkeypatch, tmp_path):
    (tmp_path / "broken" / "train" / "NORMAL").mkdir(parents=True)
    monkeypatch.setenv("PNEUMONET_DATA", str(tmp_path / "broken"))
    app = open_page()
    warnings = " ".join(element.value for element in app.warning)
    assert "PNEUMONIA" in warnings


# --- Predict ---------------------------------------------------------------------------------


def test_predict_page_has_a_multi_file_uploader(dashboard_env):
    app = open_page("predict")
    uploader = app.file_uploader[0]
    assert uploader.accept_multiple_files
    assert {"png", "jpeg", "dcm"} <= {kind.lstrip(".") for kind in uploader.allowed_type}
    assert "Upload images" in texts(app)


def test_uploading_a_real_xray_gives_a_prediction(dashboard_env):
    image = sample_image_path("PNEUMONIA")
    app = open_page("predict")
    app.file_uploader[0].set_value((image.name, image.read_bytes(), "image/jpeg")).run()
    assert not app.exception, app.exception
    probability = next(m for m in app.metric if m.label == "Probability of pneumonia")
    assert probability.value.endswith("%")
    assert 0.0 <= float(probability.value.rstrip("%")) <= 100.0
    assert app.slider[0].label == "Heatmap opacity"
    assert len(app.get("imgs")) >= 2 or len(app.get("image")) >= 2
    assert "Not a diagnosis" in texts(app)
    table = app.dataframe[0].value
    assert list(table["file"]) == [image.name]


def test_two_images_with_the_same_probability_both_show(dashboard_env):
    # The same picture under two names: same probability, so the same chart twice.
    app = open_page("predict")
    same = png_bytes(seed=4)
    app.file_uploader[0].set_value([("a.png", same, "image/png"), ("b.png", same, "image/png")])
    app.run()
    assert not app.exception, app.exception
    probabilities = [m.value for m in app.metric if m.label == "Probability of pneumonia"]
    assert len(probabilities) == 2 and probabilities[0] == probabilities[1]


def test_clear_all_images_empties_the_page_for_the_next_patient(dashboard_env):
    app = open_page("predict")
    app.file_uploader[0].set_value(("first.png", png_bytes(seed=1), "image/png")).run()
    assert "first.png" in texts(app)
    next(button for button in app.button if button.label == "Clear all images").click().run()
    assert not app.exception, app.exception
    assert "first.png" not in texts(app)
    assert "Upload images to see predictions." in texts(app)
    app.file_uploader[0].set_value(("second.png", png_bytes(seed=2), "image/png")).run()
    assert "second.png" in texts(app) and "first.png" not in texts(app)


def test_a_bad_file_fails_alone_and_the_batch_goes_on(dashboard_env):
    app = open_page("predict")
    files = [
        ("good.png", png_bytes(seed=1), "image/png"),
        ("broken.png", b"this is not an image", "image/png"),
        ("other.png", png_bytes(seed=2), "image/png"),
    ]
    app.file_uploader[0].set_value(files).run()
    assert not app.exception, app.exception
    errors = [element.value for element in app.error]
    assert len(errors) == 1 and "broken.png" in errors[0]
    assert len([m for m in app.metric if m.label == "Probability of pneumonia"]) == 2
    table = app.dataframe[0].value
    assert list(table["file"])[-1] == "broken.png"  # unreadable last; most likely first
    probabilities = table["probability"].dropna().tolist()
    assert probabilities == sorted(probabilities, reverse=True)
    assert app.get("download_button")


def colour_photo_bytes() -> bytes:
    """A colour photograph that ships with scikit-learn (not an X-ray), as JPEG."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    buffer = io.BytesIO()
    Image.fromarray(load_sample_image("china.jpg")).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_a_photo_gets_no_result_and_no_label_anywhere_on_the_page(dashboard_env):
    app = open_page("predict")
    files = [
        ("photo.jpg", colour_photo_bytes(), "image/jpeg"),
        ("xray.png", png_bytes(seed=4), "image/png"),
    ]
    app.file_uploader[0].set_value(files).run()
    assert not app.exception, app.exception
    warnings = [element.value for element in app.warning if "not a chest X-ray" in element.value]
    assert len(warnings) == 1
    assert warnings[0].startswith("No result: not a chest X-ray: colour image")
    # Only the other image has a probability shown; the photo's is behind a closed expander.
    assert len([m for m in app.metric if m.label == "Probability of pneumonia"]) == 1
    expander = next(e for e in app.expander if e.label == "Model output (not a result)")
    assert not expander.proto.expanded
    table = app.dataframe[0].value.set_index("file")
    assert table.loc["photo.jpg", "label"] == ""
    assert table.loc["photo.jpg", "warning"] == "not a chest X-ray"
    assert table.loc["xray.png", "label"] in ("NORMAL", "PNEUMONIA")
    assert table.loc["xray.png", "warning"] == ""
    # The full reason, uncut, under the table.
    assert any(
        "photo.jpg" in caption.value and "colour image" in caption.value for caption in app.caption
    )
    from pneumonet_core.governance import audit

    photo_sha256 = audit.sha256_of_bytes(colour_photo_bytes())
    entries = audit.read_entries(action="predict")
    photo_entries = [entry for entry in entries if entry["image_sha256"] == photo_sha256]
    assert len(photo_entries) == 1 and photo_entries[0]["label"] is None
    assert all(entry["label"] for entry in entries if entry["image_sha256"] != photo_sha256)


def test_the_disclaimer_is_said_once_and_uploads_are_captioned_image(dashboard_env):
    app = open_page("predict")
    files = [
        ("a.png", png_bytes(seed=1), "image/png"),
        ("b.png", png_bytes(seed=2), "image/png"),
        ("photo.jpg", colour_photo_bytes(), "image/jpeg"),
    ]
    app.file_uploader[0].set_value(files).run()
    assert not app.exception, app.exception
    assert texts(app).count("Not a diagnosis") == 1
    captions = [image.caption for element in app.get("image") for image in element.proto.imgs]
    assert "X-ray" not in captions
    assert captions.count("image") == 3


def test_the_threshold_has_one_rounding_and_the_distance_uses_it(
    dashboard_env, monkeypatch, tmp_path
):
    model = build_tiny_model(tmp_path / "odd_threshold.keras", threshold=0.4236)
    monkeypatch.setenv("PNEUMONET_MODEL", str(model))
    app = open_page("predict")
    assert "threshold **42%**" in texts(app)
    app.file_uploader[0].set_value(("a.png", png_bytes(seed=1), "image/png")).run()
    assert not app.exception, app.exception
    metric = next(m for m in app.metric if m.label == "Probability of pneumonia")
    shown = float(metric.value.rstrip("%"))
    assert metric.delta == f"{shown - 42:+.1f} points vs threshold 42%"
    assert app.dataframe[0].value["threshold"].tolist() == [0.42]


@pytest.fixture(scope="module")
def guarded_model(tmp_path_factory) -> Path:
    """A tiny model whose OOD statistics were fitted on noise pictures like `png_bytes`."""
    from pneumonet_core.imaging.preprocessing import preprocess_image
    from pneumonet_core.inference import ood
    from pneumonet_core.models.modelio import load_model

    path = build_tiny_model(tmp_path_factory.mktemp("guarded_model") / "guarded.keras")
    model, metadata = load_model(path)

    def features(seeds: range) -> np.ndarray:
        images = [preprocess_image(png_bytes(seed=seed), metadata.image_size) for seed in seeds]
        return ood.compute_features(model, np.stack(images))

    statistics = ood.fit_statistics(features(range(100, 220)), features(range(300, 360)))
    ood.save_statistics(path, statistics)
    return path


def checkerboard_png() -> bytes:
    from PIL import Image

    squares = ((np.indices((96, 96)) // 12).sum(axis=0) % 2 * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(squares).save(buffer, format="PNG")
    return buffer.getvalue()


def test_predict_page_and_batch_table_tell_the_two_warnings_apart(
    dashboard_env, guarded_model, monkeypatch
):
    monkeypatch.setenv("PNEUMONET_MODEL", str(guarded_model))
    # Only the threshold counts here, so the checkerboard stands in for an X-ray outside use.
    monkeypatch.setattr(ood_checks, "NOT_AN_XRAY_DISTANCE_RATIO", float("inf"))
    app = open_page("predict")
    files = [
        ("photo.jpg", colour_photo_bytes(), "image/jpeg"),
        ("unlike.png", checkerboard_png(), "image/png"),
        ("typical.png", png_bytes(seed=5), "image/png"),
    ]
    app.file_uploader[0].set_value(files).run()
    assert not app.exception, app.exception
    shown = sorted(element.value for element in app.warning)
    # Only the images' own warnings (a busy machine may add an unrelated notice).
    warnings = [text for text in shown if text.startswith(("No result", "outside validated"))]
    assert len(warnings) == 2, shown
    assert warnings[0].startswith("No result: not a chest X-ray: colour image")
    assert warnings[1].startswith(
        "outside validated use: image unlike the paediatric chest X-rays the model was validated"
    )
    assert "probability below is shown for reference only" in warnings[1]
    table = app.dataframe[0].value.set_index("file")
    assert table.loc["photo.jpg", "warning"] == "not a chest X-ray"
    assert table.loc["photo.jpg", "label"] == ""
    assert table.loc["unlike.png", "warning"] == "outside validated use"
    assert table.loc["unlike.png", "label"] in ("NORMAL", "PNEUMONIA")  # hedged, kept
    assert table.loc["typical.png", "warning"] == ""


def test_a_model_without_ood_statistics_says_only_simple_checks_run(dashboard_env):
    app = open_page("predict")
    assert "carries no out-of-distribution statistics" in texts(app)


def test_opacity_slider_redraws_the_overlay(dashboard_env, monkeypatch):
    from dashboard import inference

    drawn = []  # (opacity, overlay image) for every overlay the page draws
    original = inference.overlay

    def recording_overlay(prediction, opacity):
        image = original(prediction, opacity)
        drawn.append((opacity, image))
        return image

    monkeypatch.setattr(inference, "overlay", recording_overlay)
    app = open_page("predict")
    app.file_uploader[0].set_value(("x.png", png_bytes(seed=3), "image/png")).run()
    before_opacity, before = drawn[-1]
    app.slider[0].set_value(0.9).run()
    assert not app.exception, app.exception
    after_opacity, after = drawn[-1]
    assert (before_opacity, after_opacity) == (pytest.approx(0.45), pytest.approx(0.9))
    assert before.shape == after.shape
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 1.0


def test_grad_cam_runs_for_the_first_image_and_the_others_on_request(dashboard_env, monkeypatch):
    from dashboard import inference

    computed = []  # file names whose Grad-CAM the page asked for
    original = inference.heatmap

    def recording_heatmap(prediction):
        computed.append(prediction.file_name)
        return original(prediction)

    monkeypatch.setattr(inference, "heatmap", recording_heatmap)
    app = open_page("predict")
    uploads = [("a.png", png_bytes(seed=1), "image/png"), ("b.png", png_bytes(seed=2), "image/png")]
    app.file_uploader[0].set_value(uploads).run()
    assert not app.exception, app.exception
    assert set(computed) == {"a.png"}
    toggles = [toggle for toggle in app.toggle if toggle.label == "Show Grad-CAM heatmap"]
    assert [toggle.value for toggle in toggles] == [True, False]
    toggles[1].set_value(True).run()
    assert not app.exception, app.exception
    assert "b.png" in computed
    assert [slider.label for slider in app.slider] == ["Heatmap opacity"] * 2


def _dicom_bytes() -> bytes:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = (np.random.default_rng(0).random((80, 80)) * 4000).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.PatientName = "Doe^Jane"
    dataset.PatientID = "SECRET-123"
    dataset.Modality = "DX"
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME1"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def test_dicom_patient_fields_stay_hidden_until_asked(dashboard_env):
    app = open_page("predict")
    app.file_uploader[0].set_value(("study.dcm", _dicom_bytes(), "application/dicom")).run()
    assert not app.exception, app.exception
    assert any(m.label == "Probability of pneumonia" for m in app.metric)
    expander = next(e for e in app.expander if "DICOM header" in e.label)
    assert "SECRET-123" not in str(expander) and not app.table
    upload = app.file_uploader[0].value[0]
    app.session_state[f"dicom_0_{upload.file_id}"] = True
    app.run()
    assert not app.exception, app.exception
    header = app.table[0].value
    assert "SECRET-123" in header.to_string()


def test_predict_page_without_a_model_says_so(dashboard_env, monkeypatch, tmp_path):
    monkeypatch.setenv("PNEUMONET_MODEL", str(tmp_path / "missing.keras"))
    app = open_page("predict")
    assert "No model is available yet" in texts(app)
    assert not app.file_uploader


# --- Evaluate --------------------------------------------------------------------------------


@pytest.fixture
def evaluate_root(monkeypatch, synthetic_folder) -> Path:
    """The data root Evaluate may read: the folder holding `synthetic_folder`."""
    monkeypatch.setenv("PNEUMONET_DATA", str(synthetic_folder.parent))
    return synthetic_folder.parent


def _evaluate_on_folder(folder: Path) -> AppTest:
    app = open_page("evaluate")
    app.selectbox(key="evaluate_split").set_value("Another folder…").run()
    app.text_input(key="evaluate_folder").set_value(str(folder)).run()
    assert not app.exception, app.exception
    return app


def test_evaluate_page_widgets(dashboard_env, evaluate_root, synthetic_folder):
    app = _evaluate_on_folder(synthetic_folder)
    labels = [slider.label for slider in app.slider]
    assert any(label.startswith("Decision threshold") for label in labels)
    assert {"Sensitivity", "Specificity", "Accuracy", "F1"} <= {m.label for m in app.metric}
    titles = [f["layout"]["title"]["text"] for f in plotly_figures(app)]
    assert any(title.startswith("ROC") for title in titles)
    assert any(title.startswith("Precision-recall") for title in titles)
    assert any(title.startswith("Calibration") for title in titles)
    report = app.dataframe[0].value
    assert {"NORMAL", "PNEUMONIA"} <= set(report.index)
    assert "12 images" in texts(app)


def test_moving_the_threshold_changes_the_confusion_matrix(
    dashboard_env, evaluate_root, synthetic_folder
):
    app = _evaluate_on_folder(synthetic_folder)
    threshold = next(s for s in app.slider if s.label.startswith("Decision threshold"))
    threshold.set_value(0.0).run()
    low = matrix_values(app)
    sensitivity_low = next(m.value for m in app.metric if m.label == "Sensitivity")
    threshold = next(s for s in app.slider if s.label.startswith("Decision threshold"))
    threshold.set_value(1.0).run()
    assert not app.exception, app.exception
    high = matrix_values(app)
    assert not np.array_equal(low, high)
    assert low[:, 1].sum() == 12  # at 0 everything is called PNEUMONIA
    assert high[:, 0].sum() == 12  # at 1 (untrained model) everything is NORMAL
    assert sensitivity_low == "1.000"
    assert next(m.value for m in app.metric if m.label == "Sensitivity") == "0.000"


def test_normalised_matrix_shows_fractions(dashboard_env, evaluate_root, synthetic_folder):
    app = _evaluate_on_folder(synthetic_folder)
    app.toggle(key="evaluate_normalise").set_value(True).run()
    figure = confusion_matrix(app)
    assert "normalised" in figure["layout"]["title"]["text"]
    fractions = matrix_values(app)
    assert fractions.max() <= 1.0
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0)


def test_evaluate_runs_the_shortcut_audit_on_request(
    dashboard_env, evaluate_root, synthetic_folder
):
    app = _evaluate_on_folder(synthetic_folder)
    assert "ROC AUC, lungs hidden" not in {m.label for m in app.metric}
    app.toggle(key="shortcuts").set_value(True).run()
    assert not app.exception, app.exception
    figures = {m.label: m.value for m in app.metric}
    for label in ("ROC AUC, whole image", "ROC AUC, lungs hidden", "ROC AUC, outside hidden"):
        assert 0.0 <= float(figures[label]) <= 1.0
    # The untrained tiny model may have an all-zero Grad-CAM: then the share is undefined.
    share = figures["Grad-CAM in the lungs"]
    assert share == "n/a" or 0 <= float(share.rstrip("%")) <= 100
    assert "12 images · targets lungs hidden:" in texts(app)


def test_evaluate_reports_an_unusable_folder(dashboard_env, evaluate_root, tmp_path):
    app = _evaluate_on_folder(tmp_path / "nowhere")
    assert app.error and "Could not" in app.error[0].value


# --- Train -----------------------------------------------------------------------------------


def test_train_page_settings_and_start(dashboard_env, synthetic_folder, monkeypatch):
    from pneumonet_core.training import jobs

    started = []

    def fake_start(train_config, **audit_fields):
        started.append(train_config)
        raise jobs.JobAlreadyRunning("training job abc is already running")

    monkeypatch.setattr(jobs, "start_training_job", fake_start)
    app = open_page("train")
    assert {"Architecture", "Image size (px)", "Batch size", "Learning rate"} <= {
        box.label for box in app.selectbox
    }
    assert {"Epochs", "Seed"} <= {box.label for box in app.number_input}
    assert app.toggle(key="train_augmentation").value is True
    app.text_input(key="train_data_dir").set_value(str(synthetic_folder.parent)).run()
    app.number_input(key="train_epochs").set_value(2)
    app.selectbox(key="train_image_size").set_value(64)
    app.button(key="FormSubmitter:train_settings-Start training").click().run()
    assert not app.exception, app.exception
    assert len(started) == 1
    config = started[0]
    assert (config.epochs, config.image_size, config.data_dir) == (
        2,
        64,
        str(synthetic_folder.parent),
    )
    assert any("already running" in element.value for element in app.error)


def test_train_page_shows_a_failed_run(dashboard_env):
    from pneumonet_core.utils import config
    from pneumonet_core.utils.atomic import write_json_atomically

    write_json_atomically(
        config.jobs_dir() / "status.json",
        {"state": "failed", "job_id": "abc123", "error": "ValueError: no train/ images"},
    )
    app = open_page("train")
    assert any("no train/ images" in element.value for element in app.error)
    assert app.button(key="FormSubmitter:train_settings-Start training").disabled is False


def test_train_page_shows_a_failed_audit_write_of_the_job(dashboard_env):
    from pneumonet_core.utils import config
    from pneumonet_core.utils.atomic import write_json_atomically

    notice = "audit write failed: train_end was not recorded in the audit trail (locked)"
    write_json_atomically(
        config.jobs_dir() / "status.json",
        {"state": "finished", "job_id": "abc123", "audit_error": notice},
    )
    app = open_page("train")
    assert [w.value for w in app.warning if "not recorded" in w.value] == [
        "Audit write failed: train_end was not recorded in the audit trail (locked)"
    ]


@pytest.mark.slow
def test_one_press_of_stop_stops_a_real_job(dashboard_env, synthetic_data, train_config_factory):
    from job_helpers import JOB_TIMEOUT_S, wait_until

    from pneumonet_core.training import jobs

    config = train_config_factory(synthetic_data, dashboard_env / "long.keras", epochs=500)
    jobs.start_training_job(config)
    try:
        wait_until(lambda: (jobs.read_job_status() or None) and jobs.read_job_status().batches)
        app = open_page("train")
        assert any(h.value.startswith("Running") for h in app.subheader), texts(app)
        app.button(key="stop").click().run()
        assert not app.exception, app.exception
        status = jobs.wait_for_job(timeout_s=JOB_TIMEOUT_S)
        assert status.state == "stopped"
        app.run()
        assert "was stopped" in texts(app)
    finally:
        status = jobs.read_job_status()
        if status is not None and status.is_active:
            jobs.request_stop()
            jobs.wait_for_job(timeout_s=JOB_TIMEOUT_S)


# --- Runs ------------------------------------------------------------------------------------


def test_runs_page_without_runs_explains_the_mlflow_ui(dashboard_env):
    app = open_page("runs")
    assert "No runs recorded yet" in texts(app)
    assert "mlflow ui --backend-store-uri" in app.code[0].value


def test_runs_page_lists_recorded_runs(dashboard_env):
    from pneumonet_core.governance import tracking

    mlflow = tracking.configure()
    experiment_id = tracking.ensure_experiment()
    with mlflow.start_run(experiment_id=experiment_id, run_name="unit-test-run"):
        mlflow.log_params({"epochs": 3, "architecture": "seed"})
        mlflow.log_metric("val_auc", 0.91, step=1)
        mlflow.log_metrics({"final_val_roc_auc": 0.93, "final_val_threshold": 0.42})
    app = open_page("runs")
    shown = app.dataframe[0].value  # readable names, few enough columns for 1280 px
    assert list(shown.columns) == [
        "run",
        "status",
        "started",
        "duration (s)",
        "ROC-AUC",
        "threshold",
        "architecture",
        "epochs",
    ]
    assert list(shown["run"]) == ["unit-test-run"]
    assert shown.loc[0, "ROC-AUC"] == pytest.approx(0.93)
    assert "best epoch's model at its chosen threshold" in texts(app)
    table = app.dataframe[1].value  # everything, in the expander
    assert table.loc[0, "epochs"] == "3"
    assert table.loc[0, "last epoch val AUC"] == pytest.approx(0.91)
    assert table.loc[0, "status"] == "FINISHED"
    assert not any(":" in column for column in table.columns)


def test_every_page_renders_without_exception(dashboard_env):
    app = open_page()
    for page in ("predict", "evaluate", "train", "runs"):
        app.switch_page(f"views/{page}.py").run()
        assert not app.exception, (page, app.exception)
        assert app.title[0].value == page.capitalize()


def test_a_finished_run_can_be_promoted(dashboard_env, monkeypatch, tiny_model, tmp_path):
    import shutil

    from pneumonet_core.governance import registry
    from pneumonet_core.utils import config
    from pneumonet_core.utils.atomic import write_json_atomically

    monkeypatch.delenv("PNEUMONET_MODEL")
    # The promotion gate's data: noise images the tiny untrained model scores at chance.
    gate_data = tmp_path / "gate_data"
    write_labelled_folder(gate_data / "train", per_class=10)
    write_labelled_folder(gate_data / "test", per_class=6)
    monkeypatch.setenv("PNEUMONET_DATA", str(gate_data))
    monkeypatch.setattr(config, "shipped_model_path", lambda: tmp_path / "no-shipped.keras")
    run_model = tmp_path / "run-model.keras"
    shutil.copyfile(tiny_model, run_model)
    write_json_atomically(
        config.jobs_dir() / "status.json",
        {"state": "finished", "job_id": "abc123", "model_path": str(run_model)},
    )
    app = open_page("train")
    assert any("finished" in element.value for element in app.success)
    assert "Promotion gate: **did not learn**" in texts(app)
    assert "promote" not in {button.key for button in app.button}
    app.text_input(key="promote_override_reason").set_value("page test").run()
    app.button(key="promote").click().run()
    assert not app.exception, app.exception
    assert registry.version_model_path(1).is_file()  # promotion registers a version
    assert "This model is the active model" in texts(app)
    assert registry.active_model_path() == registry.version_model_path(1)
    app.switch_page("views/home.py").run()
    assert "source: registry version 1" in texts(app)


def test_two_models_compared_side_by_side(dashboard_env, evaluate_root, synthetic_folder, tmp_path):
    from pneumonet_core.governance import tracking

    other = build_tiny_model(tmp_path / "other.keras", threshold=0.3, name="other-model")
    mlflow = tracking.configure()
    with mlflow.start_run(experiment_id=tracking.ensure_experiment(), run_name="other-run"):
        mlflow.set_tag("pneumonet.model_path", str(other))
    app = _evaluate_on_folder(synthetic_folder)
    compare = app.multiselect(key="evaluate_compare")
    assert any("other-run" in option for option in compare.options)
    compare.set_value([option for option in compare.options if "other-run" in option]).run()
    assert not app.exception, app.exception
    table = next(frame.value for frame in app.dataframe if "model" in frame.value.columns)
    assert list(table["model"]) == ["tiny-test-model", "Run other-run"]
    assert list(table["threshold"]) == [0.5, 0.3]
    titles = [f["layout"]["title"]["text"] for f in plotly_figures(app)]
    assert "ROC curves" in titles and "PR curves" in titles


def test_home_reads_the_model_card(dashboard_env, monkeypatch, tiny_model, tmp_path):
    import shutil

    model = tmp_path / "carded" / "pneumonet.keras"
    model.parent.mkdir()
    shutil.copyfile(tiny_model, model)
    card = {
        "name": "pneumonet-card-test",
        "validation": {
            "roc_auc": {"value": 0.97, "ci_low": 0.95, "ci_high": 0.98},
            "sensitivity": 0.96,
        },
        "operating_point": "threshold for 95% sensitivity",
        "limitations": ["Only tested on the card's data."],
    }
    (model.parent / "model_card.json").write_text(json.dumps(card))
    monkeypatch.setenv("PNEUMONET_MODEL", str(model))
    app = open_page()
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["ROC AUC"] == "0.970" and metrics["Sensitivity"] == "0.960"
    page_text = texts(app)
    assert "pneumonet-card-test" in page_text
    assert "ROC AUC 0.950–0.980" in page_text
    assert "Only tested on the card's data." in page_text


def test_home_leads_with_the_out_of_distribution_figures(
    dashboard_env, monkeypatch, tiny_model, tmp_path
):
    import shutil

    model = tmp_path / "carded" / "pneumonet.keras"
    model.parent.mkdir()
    shutil.copyfile(tiny_model, model)
    card = {
        "name": "pneumonet-ood-card",
        "development": {
            "label": "on images from outside the training set, used for model selection",
            "set": "test/ (314 images)",
            "metrics": {"accuracy": {"value": 0.901, "ci_low": 0.87, "ci_high": 0.93}},
        },
        "validation": {"accuracy": {"value": 0.982, "ci_low": 0.973, "ci_high": 0.989}},
    }
    (model.parent / "model_card.json").write_text(json.dumps(card))
    monkeypatch.setenv("PNEUMONET_MODEL", str(model))
    app = open_page()
    assert not app.exception
    accuracies = [metric.value for metric in app.metric if metric.label == "Accuracy"]
    assert accuracies == ["0.901", "0.982"]  # the outside figure first, validation beside it
    page_text = texts(app)
    assert page_text.index("outside the training set") < page_text.index("Validation metrics")
    assert "test/ (314 images)" in page_text


def test_home_warns_when_a_model_has_only_validation_figures(
    dashboard_env, monkeypatch, tiny_model, tmp_path
):
    import shutil

    model = tmp_path / "carded" / "pneumonet.keras"
    model.parent.mkdir()
    shutil.copyfile(tiny_model, model)
    card = {"validation": {"accuracy": {"value": 0.982, "ci_low": 0.973, "ci_high": 0.989}}}
    (model.parent / "model_card.json").write_text(json.dumps(card))
    monkeypatch.setenv("PNEUMONET_MODEL", str(model))
    app = open_page()
    assert any("overstate accuracy on new images" in w.value for w in app.warning)


def test_a_corrupt_model_is_an_error_message_not_a_traceback(dashboard_env, monkeypatch, tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip archive")
    monkeypatch.setenv("PNEUMONET_MODEL", str(broken))
    app = open_page()
    assert not app.exception
    assert any(e.value.startswith("Could not read the active model") for e in app.error)
    app.switch_page("views/predict.py").run()
    assert not app.exception
    assert app.error


# --- Train: one epoch and one threshold for the summary, the curves and the sidebar -----------


def test_the_train_page_names_the_summarys_epoch_and_threshold(dashboard_env, tmp_path):
    import keras

    from pneumonet_core.models import architectures, modelio
    from pneumonet_core.utils import config
    from pneumonet_core.utils.atomic import write_json_atomically

    keras.utils.set_random_seed(1)
    metadata = modelio.ModelMetadata(
        architecture="seed",
        image_size=32,
        threshold=0.42,
        metrics={"validation": {"roc_auc": 0.91, "accuracy": 0.8}, "best_epoch": 7},
        training={"epochs": 30, "monitor": "val_auc", "threshold_policy": "youden"},
    )
    model_path = modelio.save_model(
        architectures.build_model("seed", 32), tmp_path / "run.keras", metadata
    )
    write_json_atomically(
        config.jobs_dir() / "status.json",
        {"state": "finished", "job_id": "abc123", "model_path": str(model_path)},
    )
    app = open_page("train")
    assert (
        "The summary is the best epoch's model (epoch 7 of 30, kept by val_auc) at threshold "
        "0.42 (youden)"
    ) in texts(app)
    assert "so at epoch 7 it is the summary's" in texts(app)


def test_the_sidebar_and_the_train_page_say_the_same_epoch(dashboard_env, monkeypatch):
    from dashboard import training

    running = training.JobSummary(
        state="running",
        is_active=True,
        job_id="abc123",
        run_id=None,
        run_name="calm-run",
        epoch=10,
        epochs=30,
        batch=3,
        batches=8,
        progress=0.3,
        elapsed_seconds=60.0,
        eta_seconds=140.0,
        error=None,
        model_path=None,
        settings={},
    )
    monkeypatch.setattr(training, "job_summary", lambda: running)
    app = open_page("train")
    sidebar = [element.value for element in app.sidebar.info]
    assert sidebar == ["Training running (epoch 10 of 30)"]
    (progress,) = app.get("progress")
    assert progress.proto.text.startswith("Epoch 10 of 30 · batch 3/8")
