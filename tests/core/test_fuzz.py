"""Property tests: whatever the bytes, the decoder returns a valid image or ImageReadError.

Hypothesis runs a fixed number of derandomized examples (stable in CI, no example database).
Warnings are errors here, so a library warning escaping the decoder fails the test too.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hostile_files import chest_like, encode, synthetic_dicom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pneumonet_core.imaging import ImageReadError, read_dicom_header, read_image

FUZZ_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
HEADERS = {
    "png": b"\x89PNG\r\n\x1a\n",
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "gif": b"GIF89a",
    "bmp": b"BM",
    "tiff": b"II*\x00",
    "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    "dicom": b"\x00" * 128 + b"DICM",
    "dicom-no-preamble": b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100",
}
# Flip positions favour the first 512 bytes, where headers (and most decoder branches) live.
FLIPS = st.lists(
    st.tuples(st.one_of(st.integers(0, 511), st.integers(0, 1 << 20)), st.integers(0, 255)),
    min_size=1,
    max_size=12,
)
SMALL_PICTURE = chest_like(24, seed=3)
VALID_FILES = {
    "png": encode(Image.fromarray(SMALL_PICTURE), "PNG"),
    "jpeg": encode(Image.fromarray(SMALL_PICTURE), "JPEG", quality=80),
    "dicom": synthetic_dicom(SMALL_PICTURE.astype(np.uint16) * 16),
}


def assert_image_or_read_error(content: bytes) -> None:
    try:
        image = read_image(content)
    except ImageReadError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert isinstance(image, np.ndarray) and image.dtype == np.float32
    assert image.ndim == 2 and image.size > 0
    assert np.isfinite(image).all() and 0.0 <= image.min() <= image.max() <= 1.0


def mutate(content: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    """Overwrite bytes at (position modulo length, value) and optionally truncate."""
    data = bytearray(content)
    for position, value in flips:
        data[position % len(data)] = value
    return bytes(data[:cut] if cut is not None else data)


pytestmark = pytest.mark.filterwarnings("error")


@FUZZ_SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes(content):
    assert_image_or_read_error(content)


@FUZZ_SETTINGS
@given(st.sampled_from(sorted(HEADERS)), st.binary(max_size=2048))
def test_random_bytes_behind_a_real_header(kind, tail):
    assert_image_or_read_error(HEADERS[kind] + tail)


@FUZZ_SETTINGS
@given(
    st.sampled_from(sorted(VALID_FILES)),
    FLIPS,
    st.one_of(st.none(), st.integers(0, 4096)),
)
def test_mutated_valid_files(kind, flips, cut):
    assert_image_or_read_error(mutate(VALID_FILES[kind], flips, cut))


@FUZZ_SETTINGS
@given(
    FLIPS,
    st.one_of(st.none(), st.integers(0, 4096)),
)
def test_mutated_dicom_header_reads_or_refuses(flips, cut):
    content = mutate(VALID_FILES["dicom"], flips, cut)
    try:
        header = read_dicom_header(io.BytesIO(content))
    except ImageReadError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(header, dict)
    assert all(isinstance(value, str) for value in header.values())


def test_the_seed_files_are_valid():
    """The mutation tests start from files that decode (else they would prove nothing)."""
    for content in VALID_FILES.values():
        assert read_image(content).shape == SMALL_PICTURE.shape
