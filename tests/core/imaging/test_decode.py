"""imaging: every supported input decodes to one float32 (H, W) grayscale image in [0, 1]."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from pneumonet_core import imaging
from pneumonet_core.imaging import ImageReadError, is_dicom, read_dicom_header, read_image


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture
def gradient() -> np.ndarray:
    """uint8 (20, 30): every value different along a row, rows differ too (not symmetric)."""
    rows = np.arange(20, dtype=np.uint16)[:, None] * 3
    columns = np.arange(30, dtype=np.uint16)[None, :] * 6
    return (rows + columns).astype(np.uint8)


def dicom_bytes(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


# --- Pillow formats --------------------------------------------------------------------------


def test_png_8bit_is_divided_by_255_exactly(gradient):
    image = read_image(encode(Image.fromarray(gradient, mode="L")))
    assert image.dtype == np.float32
    assert image.shape == (20, 30)
    np.testing.assert_allclose(image, gradient / 255.0, atol=1e-6)


def test_png_16bit_is_min_max_scaled_and_keeps_order():
    pixels = (np.arange(12 * 10).reshape(12, 10) * 300 + 1000).astype(np.uint16)
    image = read_image(encode(Image.fromarray(pixels)))
    assert image.shape == (12, 10)
    assert image.dtype == np.float32
    assert image.min() == 0.0 and image.max() == 1.0
    expected = (pixels - pixels.min()) / (pixels.max() - pixels.min())
    np.testing.assert_allclose(image, expected, atol=1e-6)


def test_rgb_png_becomes_itu_601_luminance():
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[:, :2] = (255, 0, 0)
    rgb[:, 2:4] = (0, 255, 0)
    rgb[:, 4:] = (0, 0, 255)
    image = read_image(encode(Image.fromarray(rgb, mode="RGB")))
    assert image.shape == (4, 6)
    np.testing.assert_allclose(image[0, [0, 2, 4]], [0.299, 0.587, 0.114], atol=2 / 255)


def test_rgba_png_is_flattened_onto_black():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[:, :2, 3] = 255  # opaque white on the left
    rgba[:, 2:, 3] = 0  # fully transparent white on the right
    image = read_image(encode(Image.fromarray(rgba, mode="RGBA")))
    assert image.shape == (4, 4)
    np.testing.assert_allclose(image[:, :2], 1.0)
    np.testing.assert_allclose(image[:, 2:], 0.0)


def test_palette_png_uses_the_palette_colours_not_the_indices():
    indices = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    palette_image = Image.fromarray(indices, mode="P")
    palette = [200, 200, 200, 10, 10, 10, 255, 255, 255, 0, 0, 0] + [0] * (256 * 3 - 12)
    palette_image.putpalette(palette)
    image = read_image(encode(palette_image))
    np.testing.assert_allclose(image, np.array([[200, 10], [255, 0]]) / 255.0, atol=1e-6)


def test_cmyk_jpeg_decodes_white_and_black_correctly():
    cmyk = Image.new("CMYK", (40, 20), (0, 0, 0, 0))  # white
    cmyk.paste((0, 0, 0, 255), (0, 0, 20, 20))  # black left half
    image = read_image(encode(cmyk, "JPEG", quality=95))
    assert image.shape == (20, 40)
    assert image[:, :20].mean() < 0.05
    assert image[:, 20:].mean() > 0.95


def test_grayscale_jpeg_is_close_to_the_original(gradient):
    image = read_image(encode(Image.fromarray(gradient, mode="L"), "JPEG", quality=95))
    assert image.shape == gradient.shape
    assert image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert np.abs(image - gradient / 255.0).mean() < 0.02


def test_exif_orientation_is_applied():
    landscape = Image.fromarray(np.zeros((20, 40), dtype=np.uint8), mode="L")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    image = read_image(encode(landscape, "JPEG", exif=exif.tobytes()))
    assert image.shape == (40, 20)


def test_gif_first_frame_is_read():
    frames = [Image.new("L", (8, 8), 255), Image.new("L", (8, 8), 0)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    image = read_image(buffer.getvalue())
    assert image.shape == (8, 8)
    assert image.mean() > 0.99


def test_path_bytes_and_file_objects_give_the_same_array(tmp_path, gradient):
    data = encode(Image.fromarray(gradient, mode="L"))
    path = tmp_path / "image.png"
    path.write_bytes(data)
    from_path = read_image(path)
    assert from_path.shape == (20, 30)
    half_read = open(path, "rb")  # noqa: SIM115 - read half of it first on purpose
    half_read.read(10)
    with half_read:
        from_half_read_file = read_image(half_read)
    for source in (str(path), data, bytearray(data), memoryview(data), io.BytesIO(data)):
        np.testing.assert_array_equal(read_image(source), from_path)
    np.testing.assert_array_equal(from_half_read_file, from_path)


# --- unreadable inputs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (np.random.default_rng(0).bytes(4096), "not a recognised image"),
    ],
    ids=["empty", "random-bytes"],
)
def test_unreadable_bytes_raise_image_read_error_with_a_reason(data, reason):
    with pytest.raises(ImageReadError, match=reason) as caught:
        read_image(data)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_truncated_jpeg_raises_image_read_error(tmp_path, gradient):
    data = encode(Image.fromarray(np.tile(gradient, (5, 5)), mode="L"), "JPEG")
    path = tmp_path / "cut.jpeg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.jpeg: the image is damaged or truncated"):
        read_image(path)


def test_truncated_png_bytes_raise_image_read_error():
    noise = (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)
    data = encode(Image.fromarray(noise, mode="L"))
    with pytest.raises(ImageReadError, match="uploaded file: the image is damaged or truncated"):
        read_image(data[: len(data) // 2])


def test_missing_file_and_folder_name_the_path(tmp_path):
    missing = tmp_path / "nowhere.png"
    with pytest.raises(ImageReadError, match="no such file") as caught:
        read_image(missing)
    assert str(missing) in str(caught.value)
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)


def test_empty_file_names_the_file(tmp_path):
    path = tmp_path / "blank.jpeg"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"blank\.jpeg: the file is empty"):
        read_image(path)


def test_images_above_the_pixel_limit_are_refused(monkeypatch, gradient):
    monkeypatch.setattr(imaging.sources, "MAX_PIXELS", 100)
    with pytest.raises(ImageReadError, match=r"too large \(30x20 pixels"):
        read_image(encode(Image.fromarray(gradient, mode="L")))


# --- DICOM -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("CT_small.dcm", (128, 128)),
        ("MR_small.dcm", (64, 64)),
        ("MR_small_RLE.dcm", (64, 64)),
        ("JPEG2000.dcm", (1024, 256)),
    ],
)
def test_dicom_test_files_decode_to_unit_range(name, shape):
    path = get_testdata_file(name)
    image = read_image(path)
    assert image.shape == shape
    assert image.dtype == np.float32
    assert image.min() == 0.0 and image.max() == 1.0
    assert image.std() > 0.05  # a real picture, not a constant
    with open(path, "rb") as handle:
        np.testing.assert_array_equal(read_image(handle.read()), image)


def test_rle_compressed_dicom_matches_the_uncompressed_original():
    plain = read_image(get_testdata_file("MR_small.dcm"))
    rle = read_image(get_testdata_file("MR_small_RLE.dcm"))
    np.testing.assert_allclose(rle, plain, atol=1e-6)


def test_dicom_without_preamble_is_still_recognised():
    with open(get_testdata_file("MR_small.dcm"), "rb") as handle:
        data = handle.read()
    assert data[128:132] == b"DICM"
    np.testing.assert_array_equal(read_image(data[132:]), read_image(data))


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_monochrome1_is_inverted(name):
    dataset = pydicom.dcmread(get_testdata_file(name))
    assert dataset.PhotometricInterpretation == "MONOCHROME2"
    monochrome2 = read_image(dicom_bytes(dataset))
    dataset.PhotometricInterpretation = "MONOCHROME1"
    monochrome1 = read_image(dicom_bytes(dataset))
    np.testing.assert_allclose(monochrome1, 1.0 - monochrome2, atol=1e-6)
    assert not np.allclose(monochrome1, monochrome2)


def test_dicom_without_pixels_raises_with_its_modality():
    with pytest.raises(ImageReadError, match=r"rtplan\.dcm: .*no image \(modality RTPLAN\)"):
        read_image(get_testdata_file("rtplan.dcm"))


def test_is_dicom_tells_dicom_from_png(gradient):
    assert is_dicom(get_testdata_file("CT_small.dcm"))
    assert not is_dicom(encode(Image.fromarray(gradient, mode="L")))


def test_dicom_header_hides_patient_fields_unless_asked():
    path = get_testdata_file("CT_small.dcm")
    technical = read_dicom_header(path)
    assert technical["Modality"] == "CT"
    assert technical["Rows"] == "128"
    assert not set(technical) & set(imaging.PATIENT_FIELDS)
    with_patient = read_dicom_header(path, include_patient_fields=True)
    assert with_patient["PatientName"] == "CompressedSamples^CT1"
    assert with_patient["PatientID"] == "1CT1"
    assert set(technical).issubset(with_patient)
