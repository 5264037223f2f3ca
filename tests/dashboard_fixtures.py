"""Shared helpers for the dashboard tests: a tiny untrained model and sample images.

The project's `tests/conftest.py` belongs to the core; these helpers are imported explicitly by
the dashboard tests (`tests/dashboard/` and `tests/e2e/`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from missing_data import missing_data

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOME_SCRIPT = PROJECT_ROOT / "dashboard" / "Home.py"
TINY_IMAGE_SIZE = 64
DATA_ROOT = Path(
    os.environ.get("PNEUMONET_DATA", PROJECT_ROOT.parent / "shared" / "data" / "chest_xray")
)
SAMPLES_ROOT = DATA_ROOT.parent / "fullres-samples"


def require_data() -> Path:
    """The dataset root; when the shared data is absent, skip the test with a clear reason (fail
    it in CI: `missing_data.missing_data`)."""
    if not (DATA_ROOT / "train" / "NORMAL").is_dir():
        missing_data(f"shared dataset not found at {DATA_ROOT} (set PNEUMONET_DATA)")
    return DATA_ROOT


def sample_image_path(label: str = "PNEUMONIA") -> Path:
    """One real X-ray from the shared data (skips the test when it is absent)."""
    for folder in (SAMPLES_ROOT / label, DATA_ROOT / "val" / label, DATA_ROOT / "train" / label):
        if folder.is_dir():
            images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg"))
            if images:
                return images[0]
    missing_data(f"no {label} sample image in the shared data at {DATA_ROOT.parent}")


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
    from pneumonet_core.models import architectures as model_module
    from pneumonet_core.models import modelio

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


APP_TIMEOUT_S = 180
PAGE_TEXT_KINDS = ("markdown", "caption", "info", "warning", "error", "success", "subheader")


def open_page(page: str | None = None):
    """Run the app (Home) in AppTest, then switch to a page and run it."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(HOME_SCRIPT), default_timeout=APP_TIMEOUT_S).run()
    assert not app.exception, app.exception
    if page:
        app.switch_page(f"views/{page}.py").run()
        assert not app.exception, app.exception
    return app


def page_texts(app, kinds: tuple[str, ...] = PAGE_TEXT_KINDS) -> str:
    """Every text element of these kinds on an AppTest page, one per line."""
    parts = []
    for kind in kinds:
        parts += [str(element.value) for element in getattr(app, kind)]
    return "\n".join(parts)


def write_labelled_folder(root: Path, *, per_class: int = 6) -> Path:
    """NORMAL/ and PNEUMONIA/ with `per_class` synthetic 72-px PNGs each."""
    for label_index, label in enumerate(("NORMAL", "PNEUMONIA")):
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            seed = label_index * 100 + index
            (root / label / f"person{seed}_{label.lower()}_{index}.png").write_bytes(
                png_bytes(size=72, seed=seed)
            )
    return root


# Sign-in on, with a clinician domain and one ML user (roles from the secrets, as in production).
CLINICIAN = "dr.who@hospital.example"
ML = "ml-team@hospital.example"
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-long-random-cookie-secret-for-tests",
    "client_id": "pneumonet",
    "client_secret": "client-secret-value",
    "server_metadata_url": "http://localhost:9400/.well-known/openid-configuration",
}
SIGN_IN_ON = {
    "auth": AUTH,
    "pneumonet": {"roles": {"clinician": ["*@hospital.example"], "ml": [ML]}},
}


def open_as(email: str, url_path: str):
    """The app signed in as `email`, at the page whose URL path is `url_path`."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(HOME_SCRIPT), default_timeout=180)
    app.secrets.update(SIGN_IN_ON)
    app.user = {"is_logged_in": True, "email": email, "email_verified": True}
    app.run()
    registered = app._registered_pages.items()  # noqa: SLF001  (AppTest opens files only)
    (page_hash,) = [key for key, info in registered if info.get("url_pathname") == url_path]
    app._page_hash = page_hash  # noqa: SLF001  (what a browser at /<url_path> asks for)
    app.run()
    assert not app.exception, app.exception
    return app
