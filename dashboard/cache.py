"""Cache keys and the expensive loaders every concern shares.

A file's cache key is its path, size and modification time (`file_signature`), so a replaced
model is loaded again. The model is a Streamlit resource (a `Predictor`, which also builds its
Grad-CAM gradient model once, on first use), loaded once per file version and shared by every
session; TensorFlow is imported only when one is first loaded. Each concern module caches its
own results next to the code that computes them, keyed on these signatures.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import streamlit as st

from pneumonet_core.governance import registry


def file_signature(path: str | os.PathLike) -> str:
    """A cache key for a file: its path, size and modification time.

    Args:
        path: The file.

    Returns:
        A string that changes whenever the file is replaced.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


@st.cache_data(show_spinner=False, max_entries=32)
def file_digest(path_text: str, signature: str) -> str:
    """The SHA-256 of a file's bytes, computed once per file version.

    Args:
        path_text: The file.
        signature: Its `file_signature` (part of the cache key only).

    Returns:
        The digest as 64 hexadecimal characters.
    """
    del signature  # part of the cache key only
    return hashlib.sha256(Path(path_text).read_bytes()).hexdigest()


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def cached_predictor(path_text: str, signature: str) -> Any:
    """The model wrapped for inference, shared by every session (one per file version).

    Args:
        path_text: The `.keras` file.
        signature: Its `file_signature` (part of the cache key only: a replaced file is
            loaded again).

    Returns:
        A `pneumonet_core.inference.predict.Predictor`.
    """
    del signature  # part of the cache key only: a replaced file is loaded again
    from pneumonet_core.inference import Predictor

    return Predictor(Path(path_text))


def load_predictor(path: str | os.PathLike | None = None) -> Any:
    """The model wrapped for inference, loaded once per file version.

    Args:
        path: A `.keras` file; the active model (`registry.active_model_path()`) when None.

    Returns:
        A `pneumonet_core.inference.predict.Predictor` at the file's own threshold.

    Raises:
        FileNotFoundError: No model exists at that path.
    """
    path = Path(path) if path is not None else registry.active_model_path()
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}; train one on the Train page and promote it")
    return cached_predictor(str(path), file_signature(path))
