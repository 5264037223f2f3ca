"""Never crash: hostile and unusual files are converted or refused with a one-line reason.

The corpus lives in `hostile_files.py`; every file goes through `read_image`, the Predictor,
and the `pneumonet predict` command (in-process and, for a few files, as a subprocess).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings

import numpy as np
import pydicom
import pytest
from hostile_files import (
    BOMB_SIDE,
    HostileFile,
    chest_like,
    decompression_bomb_png,
    hostile_corpus,
    pydicom_file,
    synthetic_dicom,
    unreadable_files,
    valid_unusual_files,
    write_corpus,
)

from pneumonet_core import cli
from pneumonet_core.imaging import ImageReadError, read_image, read_image_with_info
from pneumonet_core.imaging.preprocessing import resize_image
from pneumonet_core.inference.ood import NOT_A_CHEST_XRAY
from pneumonet_core.inference.predict import Predictor

CORPUS = hostile_corpus()


def assert_is_gray_image(image: np.ndarray) -> None:
    assert isinstance(image, np.ndarray)
    assert image.dtype == np.float32 and image.ndim == 2 and image.size > 0
    assert np.isfinite(image).all()
    assert 0.0 <= image.min() <= image.max() <= 1.0


def assert_one_line_reason(message: str, item: HostileFile) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(item.name) or message.startswith("uploaded file")
    assert re.search(item.expect_error, message), message


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("item", CORPUS, ids=[item.name for item in CORPUS])
def test_every_file_decodes_or_fails_with_its_reason(item, tmp_path):
    """Warnings are errors here: a library warning must never escape as a crash."""
    (path,) = write_corpus(tmp_path, [item])
    try:
        image = read_image(path)
    except ImageReadError as error:
        assert item.expect_error is not None, f"{item.name} should decode: {error}"
        assert_one_line_reason(str(error), item)
        return
    assert item.expect_error is None or item.either, f"{item.name} should have been refused"
    assert_is_gray_image(image)
    assert resize_image(image, 32).shape == (32, 32, 1)


@pytest.mark.parametrize("item", CORPUS[:3], ids=[item.name for item in CORPUS[:3]])
def test_bytes_and_paths_decode_alike(item, tmp_path):
    (path,) = write_corpus(tmp_path, [item])
    np.testing.assert_array_equal(read_image(path), read_image(item.content))


def test_decompression_bomb_is_tiny_on_disk_and_refused_before_decoding():
    bomb = decompression_bomb_png()
    assert len(bomb) < 2000
    pixels = f"{BOMB_SIDE * BOMB_SIDE} pixels"
    with pytest.raises(ImageReadError, match=rf"too many pixels to be decoded .*{pixels}"):
        read_image(bomb)


def test_monochrome1_is_inverted_relative_to_monochrome2():
    pixels = chest_like().astype(np.uint16) * 16
    monochrome2 = read_image(synthetic_dicom(pixels, photometric="MONOCHROME2"))
    monochrome1 = read_image(synthetic_dicom(pixels, photometric="MONOCHROME1"))
    np.testing.assert_allclose(monochrome1, 1.0 - monochrome2, atol=1e-6)
    assert monochrome2[20, 20] > monochrome2[5, 5]  # the bright patch stays bright in M2


def test_pydicom_warnings_are_neither_printed_nor_logged(capsys, caplog):
    caplog.set_level("DEBUG")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_image(pydicom_file("SC_rgb_jpeg.dcm"))  # pydicom warns: implicit VR found
        read_image(pydicom_file("MR_small_padded.dcm"))  # pydicom warns: excess padding
    assert caught == []
    assert caplog.records == []
    assert capsys.readouterr().err == ""


def test_image_info_describes_the_original_file():
    gray, info = read_image_with_info(next(i for i in CORPUS if i.name == "strip.png").content)
    assert gray.shape == (3, 4000)
    assert (info.format, info.width, info.height, info.aspect_ratio) == ("PNG", 4000, 3, 4000 / 3)
    _, ct = read_image_with_info(pydicom_file("CT_small.dcm"))
    assert (ct.format, ct.modality, ct.color_fraction) == ("DICOM", "CT", 0.0)
    _, colour = read_image_with_info(pydicom_file("SC_rgb_rle_2frame.dcm"))
    assert colour.frames == 2 and colour.color_fraction > 0.5


@pytest.fixture(scope="module")
def predictor(untrained_model_path) -> Predictor:
    return Predictor(untrained_model_path)


def test_predictor_predicts_every_valid_file_and_explains_every_bad_one(predictor, tmp_path):
    paths = write_corpus(tmp_path, CORPUS)
    predictions = predictor.predict(paths)
    assert len(predictions) == len(CORPUS)
    for item, prediction in zip(CORPUS, predictions, strict=True):
        if prediction.error is None:
            assert item.expect_error is None or item.either, item.name
            assert 0.0 <= prediction.probability <= 1.0
        else:
            assert item.expect_error is not None, f"{item.name}: {prediction.error}"
            assert prediction.probability is None and prediction.ood is False
            assert_one_line_reason(prediction.error, item)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("one_pixel.png", "too small"),
        ("strip.png", "aspect ratio"),
        ("CT_small.dcm", "modality CT"),
        ("SC_rgb_rle_2frame.dcm", "colour"),
    ],
)
def test_predictor_flags_inputs_that_are_not_chest_xrays(predictor, name, reason):
    item = next(item for item in CORPUS if item.name == name)
    (prediction,) = predictor.predict([item.content], names=[name])
    assert prediction.error is None
    assert prediction.ood is True
    assert prediction.ood_reason.startswith(f"{NOT_A_CHEST_XRAY}: ")
    assert reason in prediction.ood_reason


def test_predictor_does_not_flag_a_plain_grayscale_picture(predictor):
    (prediction,) = predictor.predict([synthetic_dicom(chest_like().astype(np.uint16) * 16)])
    assert prediction.error is None
    assert prediction.ood is False and prediction.ood_reason is None


def test_cli_predict_json_reports_each_file_and_continues(untrained_model_path, tmp_path, capsys):
    paths = write_corpus(tmp_path, CORPUS)
    arguments = ["predict", "--json", "--quiet", "--model", str(untrained_model_path)]
    status = cli.main(arguments + [str(path) for path in paths])
    captured = capsys.readouterr()
    assert status == 1  # some files failed, the batch still finished
    assert "Traceback" not in captured.out + captured.err
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [record["file"] for record in records] == [str(path) for path in paths]
    for item, record in zip(CORPUS, records, strict=True):
        assert {"error", "ood", "ood_reason", "probability"} <= set(record)
        if item.expect_error is not None and not item.either:
            assert re.search(item.expect_error, record["error"]), record
        elif not item.either:
            assert record["error"] is None and isinstance(record["ood"], bool)


def test_cli_text_output_shows_the_not_a_chest_xray_warning(untrained_model_path, capsys):
    ct_path = pydicom.data.get_testdata_file("CT_small.dcm")
    assert cli.main(["predict", "--quiet", "--model", str(untrained_model_path), ct_path]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"\tno result: {NOT_A_CHEST_XRAY}: DICOM modality CT is not a radiograph" in line
    assert "NORMAL" not in line and "PNEUMONIA" not in line


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pneumonet_core.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_subprocess_never_shows_a_traceback(untrained_model_path, tmp_path):
    chosen = [
        *[i for i in unreadable_files() if i.name in ("bomb.png", "garbage_after_dicm.dcm")],
        *[i for i in valid_unusual_files() if i.name in ("strip.png", "SC_rgb_jpeg.dcm")],
    ]
    paths = write_corpus(tmp_path / "files", chosen)
    broken_model = tmp_path / "broken.keras"
    broken_model.write_bytes(b"PK\x03\x04 not really a zip")

    result = run_cli("predict", "--json", "--model", str(untrained_model_path), *map(str, paths))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["error"] is not None for r in records] == [True, True, False, False]
    assert records[2]["ood"] is True  # the strip

    result = run_cli("predict", "--model", str(broken_model), str(paths[2]))
    assert result.returncode == cli.EXIT_ERROR
    assert "Traceback" not in result.stderr
    (message,) = [line for line in result.stderr.splitlines() if line.startswith("pneumonet:")]
    assert "broken.keras" in message and "not a readable .keras model file" in message
