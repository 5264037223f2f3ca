"""Decode images in a thread pool, one batch ahead of the model.

Pillow and NumPy release the GIL while they decode and resize, so a few threads decode a batch
in parallel while the model runs on the previous one (`Predictor.iter_predict`). At most two
batches are decoded at any time, so memory stays bounded however many images stream through.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import TypeVar

from pneumonet_core.imaging import IMAGE_SUFFIXES

Source = TypeVar("Source")
Decoded = TypeVar("Decoded")

# Threads that decode; more than the cores gain nothing, and four is enough to keep ahead of
# the model on a laptop.
DECODE_WORKERS = max(1, min(4, os.cpu_count() or 1))
# A JPEG is decoded at reduced scale (`imaging.read_image_with_info`'s `min_side`) only down
# to this many times the model's input side. With the shipped model (128 px) on the
# full-resolution samples, 4 moves no probability by more than 3e-5, while 2 moved one by
# 2.6e-3 (tests/core/inference/test_streaming.py holds every test/ image to 1e-3).
DRAFT_FACTOR = 4


def batched(items: Iterable[Source], size: int) -> Iterator[list[Source]]:
    """Consecutive lists of `size` items (the last may be shorter); ValueError if size < 1."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size!r}")
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def prefetched_batches(
    named_sources: Iterable[tuple[str, Source]],
    batch_size: int,
    decode: Callable[[Source], Decoded],
) -> Iterator[list[tuple[str, Decoded]]]:
    """Batches of `(name, decode(source))`, in order; the next batch decodes meanwhile.

    Args:
        named_sources: `(name, source)` pairs, read lazily.
        batch_size: Items per batch, at least 1.
        decode: Called on each source in a worker thread; it must not raise (return an error
            value instead), or the exception surfaces here when its batch is yielded.
    """
    with ThreadPoolExecutor(DECODE_WORKERS, thread_name_prefix="decode") as pool:
        ahead: list | None = None
        for batch in batched(named_sources, batch_size):
            submitted = [(name, pool.submit(decode, source)) for name, source in batch]
            if ahead is not None:
                yield [(name, future.result()) for name, future in ahead]
            ahead = submitted
        if ahead is not None:
            yield [(name, future.result()) for name, future in ahead]


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given, and the image files found (recursively, sorted) in given folders."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(
                p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            files.append(item)
    return files
