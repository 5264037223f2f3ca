"""Decoding ahead in a thread pool, and the reduced-scale JPEG decode the predictor uses.

The exactness test runs the shipped model on the real `test/` images (and the full-resolution
samples next to the dataset, when present): decoding a JPEG at reduced scale down to
`DRAFT_FACTOR` times the model's input must move no probability by more than 1e-3.
"""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from pneumonet_core.imaging import read_image_with_info, resize_image
from pneumonet_core.inference import streaming
from pneumonet_core.inference.predict import Predictor
from pneumonet_core.utils import config

TOLERANCE = 1e-3


def jpeg_bytes(width: int, height: int, orientation: int | None = None) -> bytes:
    ramp = np.linspace(0, 255, width * height, dtype=np.float32).reshape(height, width)
    image = Image.fromarray(ramp.astype(np.uint8), mode="L")
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def test_batched_splits_in_order_and_refuses_a_zero_size():
    assert list(streaming.batched(range(5), 2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="batch size must be at least 1, got 0"):
        list(streaming.batched(range(5), 0))


def test_the_next_batch_decodes_while_the_current_one_is_used():
    decoded, second_batch_started = [], threading.Event()

    def decode(item: int) -> int:
        decoded.append(item)
        if item == 2:
            second_batch_started.set()
        return item * 10

    batches = streaming.prefetched_batches(((str(i), i) for i in range(5)), 2, decode)
    assert next(batches) == [("0", 0), ("1", 10)]
    assert second_batch_started.wait(timeout=10)  # before the caller asked for it
    assert [item for batch in batches for item in batch] == [("2", 20), ("3", 30), ("4", 40)]
    assert sorted(decoded) == [0, 1, 2, 3, 4]


def test_a_large_jpeg_decodes_at_reduced_scale_and_reports_its_full_size():
    gray, info = read_image_with_info(jpeg_bytes(1200, 1000), min_side=256)
    assert gray.shape == (500, 600)  # 1/2 scale: at 1/4 the short side would be 250 < 256
    assert (info.width, info.height) == (1200, 1000)
    full, _ = read_image_with_info(jpeg_bytes(1200, 1000))
    assert full.shape == (1000, 1200)


def test_a_reduced_jpeg_turned_by_exif_reports_its_turned_full_size():
    gray, info = read_image_with_info(jpeg_bytes(1200, 1000, orientation=6), min_side=256)
    assert gray.shape == (600, 500)
    assert (info.width, info.height) == (1000, 1200)


def test_a_small_jpeg_keeps_its_full_scale():
    gray, info = read_image_with_info(jpeg_bytes(300, 300), min_side=256)
    assert gray.shape == (300, 300) and (info.width, info.height) == (300, 300)


def real_jpegs(real_data) -> list:
    paths = sorted((real_data / "test").glob("*/*.jpeg"))
    return paths + sorted((real_data.parent / "fullres-samples").glob("*/*.jpeg"))


@pytest.mark.slow
def test_reduced_scale_decode_moves_no_probability_by_more_than_1e_3(real_data):
    predictor = Predictor(config.shipped_model_path())
    paths = real_jpegs(real_data)
    assert len(paths) >= 314  # test/ at least
    side = streaming.DRAFT_FACTOR * predictor.image_size
    full = [read_image_with_info(path)[0] for path in paths]
    reduced = [read_image_with_info(path, min_side=side)[0] for path in paths]
    full_probabilities = predictor.predict_arrays(
        np.stack([resize_image(gray, predictor.image_size) for gray in full])
    )
    reduced_probabilities = predictor.predict_arrays(
        np.stack([resize_image(gray, predictor.image_size) for gray in reduced])
    )
    difference = np.abs(full_probabilities - reduced_probabilities)
    assert difference.max() <= TOLERANCE, f"largest change {difference.max():.2e}"
    streamed = predictor.predict([str(path) for path in paths])
    streamed_probabilities = np.array([prediction.probability for prediction in streamed])
    np.testing.assert_allclose(streamed_probabilities, reduced_probabilities, atol=1e-6)
