"""A corpus of hostile and unusual input files, built in memory (no downloads).

`hostile_corpus()` returns `HostileFile`s: a file name, its bytes, and what reading it must do:
decode (`expect_error is None`) or fail with an `ImageReadError` whose message matches
`expect_error`. Files marked `either=True` may do both (a decoder plugin may or may not
handle them) but must never crash.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom import data as pydicom_data
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

PYDICOM_FILES = Path(pydicom_data.__file__).parent / "test_files"
BOMB_SIDE = 40_000


@dataclass(frozen=True)
class HostileFile:
    """One corpus entry: `expect_error` is a regex for the message, or None to decode."""

    name: str
    content: bytes
    expect_error: str | None = None
    either: bool = False


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """An image's file bytes in a Pillow format."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def chest_like(size: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 (size, size): a dark, smooth, noisy picture with a bright patch."""
    rng = np.random.default_rng(seed)
    pixels = rng.normal(80, 15, (size, size))
    pixels[size // 4 : size // 2, size // 4 : size // 2] += 100
    return np.clip(pixels, 0, 255).astype(np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def decompression_bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A PNG of a few dozen bytes whose header claims side x side 8-bit pixels."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * (side + 1) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


def dicom_bytes(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def synthetic_dicom(
    pixels: np.ndarray | None = None,
    *,
    photometric: str = "MONOCHROME2",
    modality: str = "DX",
    patient_name: str = "Doe^Jane",
    patient_id: str = "SECRET-4711",
    body_part: str | None = "CHEST",
) -> bytes:
    """A DICOM file (explicit VR little endian) with patient fields and optional pixels."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = modality
    dataset.PatientName = patient_name
    dataset.PatientID = patient_id
    if body_part:
        dataset.BodyPartExamined = body_part
    if pixels is not None:
        pixels = np.asarray(pixels, dtype=np.uint16)
        dataset.Rows, dataset.Columns = pixels.shape
        dataset.SamplesPerPixel = 1
        dataset.PhotometricInterpretation = photometric
        dataset.BitsAllocated = 16
        dataset.BitsStored = 12
        dataset.HighBit = 11
        dataset.PixelRepresentation = 0
        dataset.PixelData = pixels.tobytes()
    return dicom_bytes(dataset)


def headerless_dicom(pixels: np.ndarray) -> bytes:
    """A DX file as old CR/DX exports store it: implicit VR little endian, no preamble, no
    'DICM' marker and no file meta information (so no Transfer Syntax UID)."""
    dataset = pydicom.dcmread(io.BytesIO(synthetic_dicom(pixels)))
    dataset.file_meta = FileMetaDataset()
    dataset.preamble = None
    buffer = io.BytesIO()
    pydicom.dcmwrite(
        buffer, dataset, implicit_vr=True, little_endian=True, enforce_file_format=False
    )
    return buffer.getvalue()


def pydicom_file(name: str) -> bytes:
    return (PYDICOM_FILES / name).read_bytes()


def animated_gif() -> bytes:
    frames = [Image.fromarray(chest_like(32, seed)).convert("P") for seed in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    return buffer.getvalue()


def valid_unusual_files() -> list[HostileFile]:
    """Formats that must be converted and predicted."""
    gray = Image.fromarray(chest_like())
    sixteen_bit = Image.fromarray(chest_like().astype(np.uint16) * 257)
    return [
        HostileFile("sixteen_bit.png", encode(sixteen_bit, "PNG")),
        HostileFile("sixteen_bit.tiff", encode(sixteen_bit, "TIFF")),
        HostileFile("rgba.png", encode(gray.convert("RGBA"), "PNG")),
        HostileFile("gray_alpha.png", encode(gray.convert("LA"), "PNG")),
        HostileFile("palette.png", encode(gray.convert("P"), "PNG")),
        HostileFile("one_bit.png", encode(gray.convert("1"), "PNG")),
        HostileFile("cmyk.jpeg", encode(gray.convert("CMYK"), "JPEG")),
        HostileFile("cmyk.tiff", encode(gray.convert("CMYK"), "TIFF")),
        HostileFile("image.webp", encode(gray, "WEBP")),
        HostileFile("image.tiff", encode(gray, "TIFF")),
        HostileFile("image.bmp", encode(gray, "BMP")),
        HostileFile("animated.gif", animated_gif()),
        HostileFile("one_pixel.png", encode(Image.new("L", (1, 1), 128), "PNG")),
        HostileFile("strip.png", encode(Image.new("L", (4000, 3), 90), "PNG")),
        HostileFile("tall_strip.png", encode(Image.new("L", (3, 4000), 90), "PNG")),
        HostileFile("png_named_as.dcm", encode(gray, "PNG")),
        HostileFile("JPEG2000.dcm", pydicom_file("JPEG2000.dcm")),
        HostileFile("MR_small_RLE.dcm", pydicom_file("MR_small_RLE.dcm")),
        HostileFile("SC_rgb_jpeg.dcm", pydicom_file("SC_rgb_jpeg.dcm")),
        HostileFile("MR_small_padded.dcm", pydicom_file("MR_small_padded.dcm")),
        HostileFile("examples_palette.dcm", pydicom_file("examples_palette.dcm")),
        HostileFile("SC_rgb_rle_2frame.dcm", pydicom_file("SC_rgb_rle_2frame.dcm")),
        HostileFile("CT_small.dcm", pydicom_file("CT_small.dcm")),
        HostileFile("monochrome1.dcm", synthetic_dicom(chest_like(), photometric="MONOCHROME1")),
        HostileFile("headerless_implicit_vr.dcm", headerless_dicom(chest_like())),
        HostileFile("JPEG-lossy.dcm", pydicom_file("JPEG-lossy.dcm"), r"decoded", either=True),
    ]


def unreadable_files() -> list[HostileFile]:
    """Files that must fail with a clear, specific one-line message."""
    png = encode(Image.fromarray(chest_like()), "PNG")
    jpeg = encode(Image.fromarray(chest_like()), "JPEG")
    not_an_image = r"not a recognised image"
    return [
        HostileFile("empty.png", b"", r"empty"),
        HostileFile("truncated.png", png[: len(png) // 2], r"damaged or truncated"),
        HostileFile("truncated.jpeg", jpeg[: len(jpeg) // 3], r"damaged or truncated"),
        HostileFile("random.jpeg", np.random.default_rng(1).bytes(3000), not_an_image),
        HostileFile("notes.png", b"Findings: none.\nThis is a text file.\n", not_an_image),
        HostileFile("page.jpeg", b"<!DOCTYPE html><html><body>X-ray</body></html>", not_an_image),
        HostileFile(
            "report.png", b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n", not_an_image
        ),
        HostileFile("bomb.png", decompression_bomb_png(), r"too (large|many pixels)"),
        HostileFile("rtplan.dcm", pydicom_file("rtplan.dcm"), r"no image \(modality RTPLAN\)"),
        HostileFile("no_pixels.dcm", synthetic_dicom(None), r"no image \(modality DX\)"),
        HostileFile("MR_truncated.dcm", pydicom_file("MR_truncated.dcm"), r"could not be decoded"),
        HostileFile(
            "garbage_after_dicm.dcm",
            b"\0" * 128 + b"DICM" + np.random.default_rng(2).bytes(600),
            r"not a readable DICOM file",
        ),
        HostileFile("only_dicm_marker.dcm", b"\0" * 128 + b"DICM", r"not a readable DICOM"),
    ]


def hostile_corpus() -> list[HostileFile]:
    """Every corpus entry, valid-but-unusual first."""
    return valid_unusual_files() + unreadable_files()


def write_corpus(folder: Path, files: list[HostileFile]) -> list[Path]:
    """Write the files into `folder` and return their paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for item in files:
        path = folder / item.name
        path.write_bytes(item.content)
        paths.append(path)
    return paths
