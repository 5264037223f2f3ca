"""Never leak: uploads stay in memory, patient fields stay out of logs, the server stays local."""

from __future__ import annotations

import logging
import tempfile
import tomllib
from pathlib import Path

import numpy as np
from hostile_files import chest_like, synthetic_dicom

from pneumonet_core.imaging import PATIENT_FIELDS, read_dicom_header, read_image
from pneumonet_core.inference.predict import Predictor
from pneumonet_core.utils import config

PATIENT_NAME = "Doe^Jane"
PATIENT_ID = "SECRET-4711"


def listing(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def test_predicting_bytes_writes_no_file(untrained_model_path, tmp_path, monkeypatch):
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    working = tmp_path / "cwd"
    working.mkdir()
    monkeypatch.chdir(working)
    predictor = Predictor(untrained_model_path)
    home = config.state_dir()
    home.mkdir(parents=True, exist_ok=True)
    watched = [home, private_tmp, working]
    before = [listing(folder) for folder in watched]

    upload = synthetic_dicom(chest_like().astype(np.uint16) * 16)
    (prediction,) = predictor.predict([upload], names=["upload.dcm"])

    assert prediction.error is None
    assert [listing(folder) for folder in watched] == before


def test_header_patient_fields_only_on_request():
    upload = synthetic_dicom(chest_like().astype(np.uint16))
    technical = read_dicom_header(upload)
    assert technical["Modality"] == "DX"
    assert not set(PATIENT_FIELDS) & set(technical)
    assert PATIENT_NAME not in str(technical) and PATIENT_ID not in str(technical)
    identifying = read_dicom_header(upload, include_patient_fields=True)
    assert identifying["PatientName"] == PATIENT_NAME and identifying["PatientID"] == PATIENT_ID


def test_patient_fields_never_reach_logs_outputs_or_errors(untrained_model_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    predictor = Predictor(untrained_model_path)
    with_pixels = synthetic_dicom(chest_like().astype(np.uint16))
    without_pixels = synthetic_dicom(None)
    bad_vr = with_pixels.replace(b"SECRET-4711", b"SECRET\x004711")  # a malformed element
    read_image(with_pixels)
    predictions = predictor.predict([with_pixels, without_pixels, bad_vr])
    everything = " ".join(
        [str(p.to_dict()) for p in predictions]
        + [record.getMessage() for record in caplog.records]
        + list(capsys.readouterr())
    )
    assert predictions[1].error is not None
    assert "Doe" not in everything and "SECRET" not in everything


def test_streamlit_serves_localhost_only_with_xsrf_protection():
    path = config.project_root() / ".streamlit" / "config.toml"
    server = tomllib.loads(path.read_text())["server"]
    assert server["address"] == "localhost"
    assert server["enableXsrfProtection"] is True


def test_readme_safety_section_explains_authentication():
    readme = (config.project_root() / "README.md").read_text()
    text = readme.partition("## Safety and privacy")[2].partition("\n## ")[0]
    for phrase in ("localhost", "OpenID Connect", "[pneumonet.roles]", "TLS", "in memory"):
        assert phrase in text, phrase
