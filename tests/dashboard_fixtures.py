"""Shared helpers for the dashboard tests: a tiny untrained model and sample images.

The project's `tests/conftest.py` belongs to the core; these helpers are imported explicitly by
the dashboard tests (`tests/dashboard/` and `tests/e2e/`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOME_SCRIPT = PROJECT_ROOT / "dashboard" / "Home.py"
TINY_IMAGE_SIZE = 64
DATA_ROOT = Path(
    os.environ.get("PNEUMONET_DATA", PROJECT_ROOT.parent / "shared" / "data" / "chest_xray")
)
SAMPLES_ROOT = DATA_ROOT.parent / "fullres-samples"


def require_data() -> Path:
    """The dataset root, or skip the test with a clear reason when the shared data is absent."""
    if not (DATA_ROOT / "train" / "NORMAL").is_dir():
        pytest.skip(f"shared dataset not found at {DATA_ROOT} (set PNEUMONET_DATA)")
    return DATA_ROOT


def sample_image_path(label: str = "PNEUMONIA") -> Path:
    """One real X-ray from the shared data (skips the test when it is absent)."""
    for folder in (SAMPLES_ROOT / label, DATA_ROOT / "val" / label, DATA_ROOT / "train" / label):
        if folder.is_dir():
            images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg"))
            if images:
                return images[0]
    pytest.skip(f"no {label} sample image in the shared data at {DATA_ROOT.parent}")


def png_bytes(size: int = 96, seed: int = 0) -> bytes:
    """A small synthetic grayscale PNG (for tests that need no real X-ray)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = (rng.random((size, size)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def build_tiny_model(path: Path, *, threshold: float = 0.5, name: str = "tiny-test-model") -> Path:
    """Build and save a tiny untrained model (64 px) with PneumoNet metadata.

    Args:
        path: Where to write the `.keras` file.
        threshold: The operating threshold to record.
        name: The model name to record.

    Returns:
        The path written.
    """
    from pneumonet_core import model as model_module
    from pneumonet_core import modelio

    network = model_module.build_model("seed", image_size=TINY_IMAGE_SIZE)
    metadata = modelio.ModelMetadata(
        architecture="seed",
        image_size=TINY_IMAGE_SIZE,
        threshold=threshold,
        name=name,
        metrics={"accuracy": 0.5, "roc_auc": 0.5, "sensitivity": 0.5, "specificity": 0.5},
    )
    return modelio.save_model(network, path, metadata)


def make_tiny_dataset(destination: Path, *, per_class: int = 12, size: int = 80) -> Path:
    """Copy a few real images per class, shrunk, into `<destination>/train/<CLASS>/`.

    The file names are kept, so patients stay grouped in the patient split.

    Args:
        destination: An empty folder.
        per_class: Images per class.
        size: Side of the shrunk copies in pixels.

    Returns:
        The dataset root.
    """
    from PIL import Image

    source_root = require_data() / "train"
    for label in ("NORMAL", "PNEUMONIA"):
        target = destination / "train" / label
        target.mkdir(parents=True, exist_ok=True)
        files = sorted((source_root / label).iterdir())[: per_class * 3 : 3]
        for path in files:
            with Image.open(path) as image:
                image.convert("L").resize((size, size)).save(target / path.name)
    return destination
