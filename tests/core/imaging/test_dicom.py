"""dicom: files without file meta, and decoded pixel values for every codec.

The references are pydicom's shipped test files. An uncompressed (or losslessly compressed)
file is first checked against values fixed outside PneumoNet's decoder (the raw Pixel Data
bytes with the DICOM window formula, or the colour bars pydicom's own test suite publishes);
every other encoding of the same picture must then decode to the same pixels (lossless) or
within a stated tolerance (lossy), not merely to the right shape and range.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.data import get_testdata_file

from pneumonet_core import imaging
from pneumonet_core.imaging import ImageReadError, dicom, read_image

# One grey level of an 8-bit picture, in the decoder's [0, 1] output.
LEVEL = 1.0 / 255.0


def shipped(name: str) -> bytes:
    with open(get_testdata_file(name), "rb") as handle:
        return handle.read()


def without_preamble_and_file_meta(data: bytes) -> bytes:
    """The data set alone, as old CR/DX exports store it: no preamble, 'DICM' or group 0002."""
    assert data[128:132] == b"DICM" and data[132:138] == b"\x02\x00\x00\x00UL"
    group_length = int.from_bytes(data[140:144], "little")  # (0002,0000) UL value
    return data[144 + group_length :]


def written_without_file_meta(dataset: pydicom.Dataset, *, implicit_vr: bool) -> bytes:
    """A data set written little endian with no preamble and no file meta information."""
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.preamble = None
    buffer = io.BytesIO()
    pydicom.dcmwrite(
        buffer, dataset, implicit_vr=implicit_vr, little_endian=True, enforce_file_format=False
    )
    return buffer.getvalue()


def transfer_syntax(name: str) -> str:
    with imaging.quiet_warnings():  # some files misstate their VR; pydicom warns and copes
        dataset = pydicom.dcmread(get_testdata_file(name), stop_before_pixels=True)
    return dataset.file_meta.TransferSyntaxUID


# --- files without file meta -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("MR_small_implicit.dcm", (True, True)),
        ("rtdose_1frame.dcm", (True, True)),
        ("MR_small.dcm", (False, True)),
        ("MR_small_bigendian.dcm", (False, False)),
        ("liver_expb_1frame.dcm", (False, False)),
    ],
)
def test_a_data_set_without_preamble_or_file_meta_decodes_like_the_original(name, encoding):
    original = shipped(name)
    bare = without_preamble_and_file_meta(original)
    parsed = pydicom.dcmread(io.BytesIO(bare), force=True)
    assert "TransferSyntaxUID" not in parsed.file_meta
    assert parsed.original_encoding == encoding  # (implicit VR, little endian)
    np.testing.assert_array_equal(read_image(bare), read_image(original))


@pytest.mark.parametrize("implicit_vr", [True, False])
def test_a_data_set_written_without_file_meta_decodes_to_the_same_pixels(implicit_vr):
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    bare = written_without_file_meta(dataset, implicit_vr=implicit_vr)
    assert bare[:4] == b"\x08\x00\x05\x00"  # (0008,0005) first: no preamble, no 'DICM'
    np.testing.assert_array_equal(read_image(bare), read_image(get_testdata_file("CT_small.dcm")))


def test_decompressed_pixels_written_as_implicit_vr_without_file_meta_decode():
    dataset = pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm"))
    dataset.decompress()
    bare = written_without_file_meta(dataset, implicit_vr=True)
    np.testing.assert_array_equal(read_image(bare), read_image(get_testdata_file("MR_small.dcm")))


def test_file_meta_without_a_transfer_syntax_is_inferred_from_the_data_set():
    dataset = pydicom.dcmread(get_testdata_file("MR_small_implicit.dcm"))
    del dataset.file_meta.TransferSyntaxUID
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, implicit_vr=True, little_endian=True)
    assert buffer.getvalue()[128:132] == b"DICM"
    np.testing.assert_array_equal(
        read_image(buffer.getvalue()), read_image(get_testdata_file("MR_small.dcm"))
    )


def test_infer_transfer_syntax_names_the_encoding_and_keeps_a_stated_one():
    bare = without_preamble_and_file_meta(shipped("MR_small_bigendian.dcm"))
    dataset = pydicom.dcmread(io.BytesIO(bare), force=True)
    dicom.infer_transfer_syntax(dataset)
    assert dataset.file_meta.TransferSyntaxUID == uid.ExplicitVRBigEndian
    stated = pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm"))
    dicom.infer_transfer_syntax(stated)
    assert stated.file_meta.TransferSyntaxUID == uid.RLELossless


def test_compressed_pixels_without_a_transfer_syntax_fail_with_one_clear_line():
    bare = without_preamble_and_file_meta(shipped("MR_small_RLE.dcm"))
    with pytest.raises(ImageReadError, match=r"could not be decoded.*Transfer Syntax UID") as err:
        read_image(bare)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "junk",
    [
        b"\x01\x00\x01\x00\x04\x00\x00\x00abcd" * 8,  # parses, but holds no standard element
        b"Findings: none.\n" * 20,
        np.random.default_rng(3).bytes(2000),
    ],
)
def test_bytes_without_dicom_elements_are_still_not_an_image(junk):
    with pytest.raises(ImageReadError, match=r"not a recognised image \(expected PNG, JPEG, "):
        read_image(junk)


def test_moved_names_are_still_importable_from_imaging():
    assert imaging.read_dicom_header is dicom.read_dicom_header
    assert imaging.PATIENT_FIELDS == dicom.PATIENT_FIELDS
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        imaging.nothing_here  # noqa: B018


# --- the references --------------------------------------------------------------------------


def test_the_uncompressed_reference_is_its_raw_pixels_through_the_dicom_window():
    dataset = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    raw = np.frombuffer(dataset.PixelData, dtype="<i2").reshape(64, 64).astype(np.float64)
    # Values pydicom's test suite publishes for this file.
    assert tuple(raw[0, 31:34]) == (422, 319, 361)
    assert tuple(raw[-1, -3:]) == (1369, 1129, 862)
    # DICOM PS3.3 C.11.2.1.2.1 linear window, then the decoder's min-max scaling.
    center, width = float(dataset.WindowCenter), float(dataset.WindowWidth)
    windowed = np.clip((raw - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    expected = (windowed - windowed.min()) / (windowed.max() - windowed.min())
    np.testing.assert_allclose(read_image(get_testdata_file("MR_small.dcm")), expected, atol=1e-5)


# The ten colour bars of pydicom's SC_rgb test image (rows 5, 15, ..., 95 at column 50).
SC_RGB_BARS = [
    (255, 0, 0),
    (255, 128, 128),
    (0, 255, 0),
    (128, 255, 128),
    (0, 0, 255),
    (128, 128, 255),
    (0, 0, 0),
    (64, 64, 64),
    (192, 192, 192),
    (255, 255, 255),
]


def test_the_rgb_reference_decodes_to_the_published_colour_bars_as_luminance():
    gray = read_image(get_testdata_file("SC_rgb_rle.dcm"))
    luminance = np.array(SC_RGB_BARS) @ np.array([0.299, 0.587, 0.114]) / 255.0
    np.testing.assert_allclose(gray[5::10, 50], luminance, atol=1e-5)


# --- every codec against its reference -------------------------------------------------------

LOSSLESS = [
    # (reference, encoded file, transfer syntax of the encoded file)
    ("MR_small.dcm", "MR_small_implicit.dcm", uid.ImplicitVRLittleEndian),
    ("MR_small.dcm", "MR_small_bigendian.dcm", uid.ExplicitVRBigEndian),
    ("MR_small.dcm", "MR_small_RLE.dcm", uid.RLELossless),
    ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm", uid.JPEGLSLossless),
    ("MR_small.dcm", "MR_small_jp2klossless.dcm", uid.JPEG2000Lossless),
    ("rtdose_1frame.dcm", "rtdose_rle_1frame.dcm", uid.RLELossless),
    ("liver_1frame.dcm", "liver_expb_1frame.dcm", uid.ExplicitVRBigEndian),
    ("SC_rgb_small_odd.dcm", "SC_rgb_small_odd_big_endian.dcm", uid.ExplicitVRBigEndian),
    ("SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm", uid.RLELossless),
    ("SC_rgb_rle.dcm", "SC_rgb_rle_32bit.dcm", uid.RLELossless),
    ("SC_rgb_rle.dcm", "SC_rgb_jpeg_gdcm.dcm", uid.JPEGLosslessSV1),
    # JPEG 2000 transfer syntax (lossy allowed); this file was encoded reversibly.
    ("SC_rgb_rle.dcm", "SC_rgb_gdcm_KY.dcm", uid.JPEG2000),
]


@pytest.mark.parametrize(("reference", "name", "syntax"), LOSSLESS)
def test_lossless_encodings_decode_to_the_reference_pixels(reference, name, syntax):
    assert transfer_syntax(name) == syntax
    np.testing.assert_allclose(
        read_image(get_testdata_file(name)), read_image(get_testdata_file(reference)), atol=1e-6
    )


# Tolerances, in grey levels of the [0, 1] output (1 level = 1/255), on every pixel:
# baseline JPEG with full-resolution chroma 3; with chroma subsampled 4:1:1 (colour edges
# smear into the luminance) 10; JPEG-LS near-lossless with NEAR=2 per channel 2. The mean
# error stays below 1 level for all of them.
FULL_CHROMA, SUBSAMPLED_CHROMA, NEAR_LOSSLESS = 3, 10, 2
LOSSY = [
    # (reference, encoded file, transfer syntax, max error in levels)
    ("SC_rgb_rle.dcm", "SC_rgb_jpeg_dcmtk.dcm", uid.JPEGBaseline8Bit, FULL_CHROMA),
    ("SC_rgb_rle.dcm", "SC_rgb_dcmtk_+eb+cr.dcm", uid.JPEGBaseline8Bit, FULL_CHROMA),
    ("SC_rgb_rle.dcm", "SC_rgb_dcmtk_+eb+cy+s4.dcm", uid.JPEGBaseline8Bit, FULL_CHROMA),
    ("SC_rgb_rle.dcm", "SC_rgb_dcmtk_+eb+cy+s2.dcm", uid.JPEGBaseline8Bit, FULL_CHROMA),
    ("SC_rgb_rle.dcm", "SC_rgb_dcmtk_+eb+cy+n2.dcm", uid.JPEGBaseline8Bit, FULL_CHROMA),
    ("SC_rgb_rle.dcm", "SC_rgb_dcmtk_+eb+cy+n1.dcm", uid.JPEGBaseline8Bit, SUBSAMPLED_CHROMA),
    ("SC_rgb_rle.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm", uid.JPEGBaseline8Bit, SUBSAMPLED_CHROMA),
    ("SC_rgb_rle.dcm", "SC_rgb_jpeg_lossy_gdcm.dcm", uid.JPEGBaseline8Bit, SUBSAMPLED_CHROMA),
    ("SC_rgb_small_odd.dcm", "SC_rgb_small_odd_jpeg.dcm", uid.JPEGBaseline8Bit, FULL_CHROMA),
    # SC_rgb_jpeg_dcmd.dcm is DCMTK's uncompressed decode of SC_rgb_jpeg.dcm.
    ("SC_rgb_jpeg_dcmd.dcm", "SC_rgb_jpeg.dcm", uid.JPEGBaseline8Bit, FULL_CHROMA),
    ("SC_rgb_rle.dcm", "SC_rgb_jls_lossy_line.dcm", uid.JPEGLSNearLossless, NEAR_LOSSLESS),
    ("SC_rgb_rle.dcm", "SC_rgb_jls_lossy_sample.dcm", uid.JPEGLSNearLossless, NEAR_LOSSLESS),
]


@pytest.mark.parametrize(("reference", "name", "syntax", "levels"), LOSSY)
def test_lossy_encodings_stay_within_their_tolerance_of_the_reference(
    reference, name, syntax, levels
):
    assert transfer_syntax(name) == syntax
    error = np.abs(read_image(get_testdata_file(name)) - read_image(get_testdata_file(reference)))
    assert error.max() <= levels * LEVEL + 1e-6, f"{error.max() / LEVEL:.2f} levels"
    assert error.mean() <= 1 * LEVEL, f"mean {error.mean() / LEVEL:.2f} levels"


def test_jpeg_extended_12_bit_decodes_to_the_published_samples():
    # No uncompressed original ships; pydicom's test suite publishes two decoded samples.
    name = "JPGExtended.dcm"
    assert transfer_syntax(name) == uid.JPEGExtended12Bit
    stored = pydicom.dcmread(get_testdata_file(name)).pixel_array.astype(np.float64)
    assert stored[420, 140] == 244 and stored[230, 120] == 95
    expected = (stored - stored.min()) / (stored.max() - stored.min())  # no window, no rescale
    np.testing.assert_allclose(read_image(get_testdata_file(name)), expected, atol=1e-6)


def test_a_jpeg_the_installed_plugins_cannot_decode_fails_alone_with_one_clear_line():
    # JPEG-lossy.dcm has a malformed scan header: libjpeg refuses it and Pillow has no
    # 12-bit JPEG. Should a plugin decode it one day, it must match its repaired copy.
    name = "JPEG-lossy.dcm"
    assert transfer_syntax(name) == uid.JPEGExtended12Bit
    try:
        gray = read_image(get_testdata_file(name))
    except ImageReadError as error:
        message = str(error)
        assert "\n" not in message
        assert message.startswith(f"{name}: the DICOM pixel data could not be decoded (JPEG")
        return
    np.testing.assert_allclose(gray, read_image(get_testdata_file("JPGExtended.dcm")), atol=LEVEL)
