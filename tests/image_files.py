"""Small image files for tests: Pillow-encoded bytes and Kermany-style file names."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode(pixels: np.ndarray, fmt: str = "PNG", mode: str | None = None, **options) -> bytes:
    """Encode an array with Pillow and return the file's bytes."""
    image = Image.fromarray(pixels, mode=mode) if mode else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def patient_file_names(label: str, count: int) -> list[str]:
    """Kermany-style names, two images per patient (so the patient split has groups to keep)."""
    names = []
    for index in range(count):
        patient, image = divmod(index, 2)
        if label == "NORMAL":
            names.append(f"IM-{1000 + patient:04d}-{image + 1:04d}.jpeg")
        else:
            kind = "bacteria" if patient % 2 else "virus"
            names.append(f"person{100 + patient}_{kind}_{index}.jpeg")
    return names
