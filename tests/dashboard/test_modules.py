"""Unit checks of the dashboard's modules, charts and HTML report (no Streamlit server)."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import HOME_SCRIPT, PROJECT_ROOT

from dashboard import charts, inference, models, report
from dashboard import text as dashboard_text
from pneumonet_core.inference import ood


def test_home_does_not_import_tensorflow_keras_or_mlflow(tmp_path):
    """Home must stay fast: rendering it may not import TensorFlow, Keras or MLflow."""
    script = textwrap.dedent(
        f"""
        import sys
        from streamlit.testing.v1 import AppTest
        app = AppTest.from_file({str(HOME_SCRIPT)!r}, default_timeout=60).run()
        assert not app.exception, app.exception
        heavy = sorted(m for m in ("tensorflow", "keras", "mlflow") if m in sys.modules)
        print("HEAVY:" + ",".join(heavy))
        """
    )
    environment = {
        "PATH": "/usr/bin:/bin",
        "PNEUMONET_HOME": str(tmp_path),
        "PNEUMONET_MODEL": str(tmp_path / "missing.keras"),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "HEAVY:\n" in result.stdout or result.stdout.strip().endswith("HEAVY:"), result.stdout


def _prediction(
    name: str, probability: float | None, error: str | None = None, ood_reason: str | None = None
):
    return inference.ImagePrediction(
        file_name=name,
        probability=probability,
        label=None if probability is None else ("PNEUMONIA" if probability >= 0.5 else "NORMAL"),
        threshold=0.5,
        error=error,
        image=None,
        model_input=None,
        is_dicom=False,
        ood=ood_reason is not None,
        ood_reason=ood_reason,
    )


NOT_AN_XRAY = ood.ood_reason(ood.NOT_A_CHEST_XRAY, "colour image (40% of pixels strongly coloured)")
UNLIKE_TRAINING = ood.ood_reason(
    ood.OUTSIDE_VALIDATED_USE, "unlike the training X-rays (feature distance 41.2 > 30.5)"
)


def test_predictions_table_puts_the_most_likely_pneumonia_first():
    table = inference.predictions_table(
        [
            _prediction("low.png", 0.1),
            _prediction("bad.png", None, "not an image"),
            _prediction("high.png", 0.9),
            _prediction("photo.png", 0.5, ood_reason=NOT_AN_XRAY),
            _prediction("adult.png", 0.3, ood_reason=UNLIKE_TRAINING),
        ]
    )
    assert list(table["file"]) == ["high.png", "photo.png", "adult.png", "low.png", "bad.png"]
    assert table.loc[4, "label"] == "unreadable"
    assert list(table["warning"]) == ["", NOT_AN_XRAY, UNLIKE_TRAINING, "", ""]
    csv = dashboard_text.table_to_csv(table).decode()
    assert csv.splitlines()[0] == "file,probability,label,threshold,warning,error"


def test_a_non_x_ray_has_no_label_in_the_table_nor_its_csv_and_the_csv_says_the_use_once():
    photo = dataclasses.replace(
        _prediction("photo.png", 0.9, ood_reason=NOT_AN_XRAY), label=None, threshold=0.4236
    )
    adult = _prediction("adult.png", 0.3, ood_reason=UNLIKE_TRAINING)
    table = inference.predictions_table([photo, adult])
    assert table.set_index("file").loc["photo.png", "label"] == ""
    assert table.set_index("file").loc["adult.png", "label"] == "NORMAL"
    assert table.set_index("file").loc["photo.png", "threshold"] == 0.42
    csv = dashboard_text.table_to_csv(table, dashboard_text.intended_use()).decode()
    assert csv.count("Not a diagnosis") == 1 and csv.startswith("# ")
    read_back = pd.read_csv(io.StringIO(csv), comment="#", keep_default_na=False)
    assert read_back.set_index("file").loc["photo.png", "label"] == ""
    photo_line = next(line for line in csv.splitlines() if line.startswith("photo.png,"))
    assert "PNEUMONIA" not in photo_line and "NORMAL" not in photo_line
    shown = inference.shown_table(table).set_index("file")
    assert shown.loc["photo.png", "warning"] == "not a chest X-ray"
    assert shown.loc["adult.png", "warning"] == "outside validated use"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (5, "5 s"), (65, "1 min 05 s"), (3720, "1 h 02 min")],
)
def test_format_duration(seconds, text):
    assert dashboard_text.format_duration(seconds) == text


def test_describe_error_is_one_line():
    error = ValueError("first line\nTraceback (most recent call last): ...")
    assert dashboard_text.describe_error(error) == "first line"
    assert dashboard_text.describe_error(KeyError()) == "Key error"


def test_report_embeds_plotly_once_and_holds_every_part():
    figures = [
        charts.confusion_matrix(
            {"tn": 5, "fp": 1, "fn": 2, "tp": 7}, normalise=False, threshold=0.5
        ),
        charts.roc_curves(
            [{"name": "m", "fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1], "auc": 0.7}], title="ROC"
        ),
    ]
    table = pd.DataFrame({"value": [0.9]}, index=["sensitivity"])
    html = report.build_report(
        "Test report",
        "Not a diagnosis.",
        [
            report.ReportSection("Charts", figures=figures, tables=[("Metrics", table)]),
            report.ReportSection(
                "Gallery", images=[report.ReportImage("fp", np.zeros((8, 8, 3), np.uint8))]
            ),
        ],
    )
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("window.PlotlyConfig") == 1  # plotly.js embedded exactly once
    assert html.count("Plotly.newPlot") == 2
    assert "sensitivity" in html and "data:image/png;base64," in html
    assert "Not a diagnosis." in html


def test_charts_use_large_fonts():
    figure = charts.roc_curves([{"name": "m", "fpr": [0, 1], "tpr": [0, 1], "auc": 0.5}])
    assert figure.layout.font.size >= 18


def test_training_curves_pair_train_and_validation():
    history = pd.DataFrame(
        {"key": ["auc", "auc", "val_auc"], "step": [1, 2, 1], "value": [0.6, 0.7, 0.65]}
    )
    figure = charts.training_curves(history, "auc", title="AUC")
    assert [trace.name for trace in figure.data] == ["train", "validation"]
    assert list(figure.data[0].x) == [1, 2]


def test_model_summary_says_whether_the_model_carries_ood_statistics(
    trained_model_path, untrained_model_path
):
    assert models.model_summary(trained_model_path).has_ood_guard
    assert not models.model_summary(untrained_model_path).has_ood_guard


def test_train_form_fields_take_their_defaults_from_train_config():
    from dashboard import training
    from pneumonet_core.training.train_config import TrainConfig

    defaults = TrainConfig()
    fields = training.form_fields()
    for field in fields:
        value = defaults
        for name in field.name.split("."):
            value = getattr(value, name)
        assert field.default == value, field.name
        if field.widget == "select":
            assert field.initial in field.options, field.name
    # The form submitted untouched starts the default run (the image size made explicit).
    untouched = training.form_settings("data", {field.name: field.initial for field in fields})
    assert TrainConfig.from_dict(untouched) == TrainConfig(
        data_dir="data", image_size=defaults.resolved_image_size()
    )


def test_active_model_is_resolved_once_per_registry_change(tmp_path, monkeypatch):
    """Page runs reuse the resolved model until the registry's store changes."""
    from pneumonet_core.governance import registry

    database = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    monkeypatch.delenv("PNEUMONET_MODEL", raising=False)
    calls = []

    def counting_resolve():
        calls.append(1)
        return registry.ResolvedModel(tmp_path / "model.keras", "shipped")

    monkeypatch.setattr(registry, "resolve_model", counting_resolve)
    for _ in range(3):
        models.resolved_model()
    assert len(calls) == 1
    database.write_bytes(b"a promotion changed the store")
    models.resolved_model()
    models.resolved_model()
    assert len(calls) == 2
