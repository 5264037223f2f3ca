"""Decoding limits: a multi-frame DICOM is sized from its header, only one frame is decoded,
and Pillow opens only the formats the decoder accepts."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless, SecondaryCaptureImageStorage, generate_uid

from pneumonet_core.imaging import MAX_DECODED_BYTES, ImageReadError, read_image_with_info

# A replicate run in PackBits: a control byte of -127 repeats the next byte 128 times.
_RUN = 128


def rle_frame(rows: int, columns: int) -> bytes:
    """One 16-bit RLE Lossless frame whose rows are constant (row index), built by hand so a
    large frame costs a few kilobytes and no encoder time."""
    if columns % _RUN:
        raise ValueError(f"columns must be a multiple of {_RUN}, got {columns}")
    runs = columns // _RUN
    segments = []
    for shift in (8, 0):  # most significant byte first, as DICOM RLE orders segments
        segments.append(
            b"".join(bytes([0x81, (row >> shift) & 0xFF]) * runs for row in range(rows))
        )
    header = struct.pack("<16I", 2, 64, 64 + len(segments[0]), *([0] * 13))
    return header + segments[0] + segments[1]


def multi_frame_dicom(frames: int, side: int, *, stored_frames: int | None = None) -> bytes:
    """An RLE multi-frame DX file claiming `frames` frames of side x side 16-bit pixels; only
    `stored_frames` of them are actually stored (all by default)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = RLELossless
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "DX"
    dataset.BodyPartExamined = "CHEST"
    dataset.Rows = dataset.Columns = side
    dataset.NumberOfFrames = frames
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 16
    dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 0
    frame = rle_frame(side, side)
    dataset.PixelData = encapsulate([frame] * (frames if stored_frames is None else stored_frames))
    dataset["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_multi_frame_file_claiming_too_many_decoded_bytes_is_refused_from_its_header():
    # 150 frames of 4096 x 4096 16-bit pixels is 4.7 GiB decoded; the file stores one frame.
    data = multi_frame_dicom(150, 4096, stored_frames=1)
    assert len(data) < 1_000_000
    with pytest.raises(ImageReadError, match=r"too large to decode \(150 frame") as caught:
        read_image_with_info(data)
    assert "\n" not in str(caught.value)
    assert "MiB" in str(caught.value)


def test_only_the_middle_frame_of_a_multi_frame_file_is_decoded_and_named():
    gray, info = read_image_with_info(multi_frame_dicom(5, 256))
    assert gray.shape == (256, 256)
    assert info.frames == 5 and info.decoded_frame == 2
    assert info.frame_note == "frame 3 of 5 decoded"


def test_a_single_image_has_no_frame_note():
    _, info = read_image_with_info(multi_frame_dicom(1, 128))
    assert info.frames == 1 and info.frame_note is None


_MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    from pneumonet_core.imaging import read_image_with_info
    data = open(sys.argv[1], "rb").read()
    read_image_with_info(sys.argv[2])  # load pydicom and its RLE decoder first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gray, info = read_image_with_info(data)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_kib": after - before, "frames": info.frames}))
    """
)


def test_a_large_allowed_multi_frame_file_decodes_within_300_mb(tmp_path: Path):
    # 40 frames of 2048 x 2048 16-bit pixels: 320 MiB decoded, under the limit, ~5 MB on disk.
    frames, side = 40, 2048
    assert frames * side * side * 2 < MAX_DECODED_BYTES
    large, small = tmp_path / "large.dcm", tmp_path / "small.dcm"
    large.write_bytes(multi_frame_dicom(frames, side))
    small.write_bytes(multi_frame_dicom(3, 128))
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(large), str(small)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["frames"] == frames
    assert measured["growth_kib"] * 1024 < 300_000_000, measured


EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n%%EndComments\n"
    b"newpath 0 0 moveto 64 64 lineto stroke\nshowpage\n%%EOF\n"
)


@pytest.mark.parametrize("name", ["scan.png", "scan.jpeg"])
def test_a_renamed_eps_file_never_reaches_a_decoder(tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_bytes(EPS)
    with pytest.raises(ImageReadError, match=r"not a recognised image") as caught:
        read_image_with_info(path)
    assert "\n" not in str(caught.value)


def test_a_format_outside_the_list_is_refused_even_when_pillow_reads_it():
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16), 128, dtype=np.uint8)).save(buffer, format="PPM")
    with pytest.raises(ImageReadError, match=r"not a recognised image"):
        read_image_with_info(buffer.getvalue())
