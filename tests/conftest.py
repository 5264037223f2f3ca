"""Shared fixtures for the core package's tests.

Everything here is synthetic and small (images of a few dozen pixels, models at image_size 32),
so the core suite runs in a few minutes on two CPU cores. Core tests run with `PNEUMONET_HOME`
in a temporary folder, so they never touch the real run store; the expensive objects (a trained
tiny model and its MLflow run) are built once per session and shared.

The dashboard tests (`tests/dashboard/`, `tests/e2e/`) use `dashboard_fixtures.py`;
the environment isolation below leaves them alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from dashboard_fixtures import require_data  # noqa: E402
from image_files import encode, patient_file_names

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TINY_IMAGE_SIZE = 32
IMAGES_PER_CLASS = 24
ISOLATED_ENV_VARS = (
    "PNEUMONET_MODEL",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "PNEUMONET_DATABASE_URL",
)
DASHBOARD_TEST_FOLDERS = ("dashboard", "e2e")  # their tests set up their own environment


def _is_dashboard_test(request) -> bool:
    return Path(request.node.path).parent.name in DASHBOARD_TEST_FOLDERS


@pytest.fixture(autouse=True)
def isolated_state(request, monkeypatch, tmp_path_factory):
    """Core tests get their own PNEUMONET_HOME and no inherited model or tracking URI."""
    if _is_dashboard_test(request):
        yield None
        return
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PNEUMONET_HOME", str(home))
    for name in ISOLATED_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield home


# --- a real PostgreSQL ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgresql_server():
    """One PostgreSQL server for the session (initdb + pg_ctl in a temporary folder)."""
    from pneumonet_testing.postgresql import postgresql_available, start_postgresql

    if not postgresql_available():
        message = "PostgreSQL is missing (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = start_postgresql()
    yield server
    server.stop()
    server.remove()


@pytest.fixture
def shared_database(postgresql_server, monkeypatch, request):
    """A fresh PostgreSQL database as PNEUMONET_DATABASE_URL, for this test only."""
    from pneumonet_core.storage import database

    name = "test_" + "".join(character for character in request.node.name if character.isalnum())
    url = postgresql_server.create_database(name[:50] + str(os.getpid()))
    monkeypatch.setenv("PNEUMONET_DATABASE_URL", url)
    yield url
    database.dispose_engines()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_engine(request) -> str:
    """Run the test on SQLite under PNEUMONET_HOME, then on a real PostgreSQL."""
    if request.param == "postgresql":
        request.getfixturevalue("shared_database")
    return request.param


# --- synthetic images ------------------------------------------------------------------------


def synthetic_xray(label_index: int, seed: int, size: int = 48) -> np.ndarray:
    """A uint8 (size, size) picture: NORMAL is dark and smooth, PNEUMONIA has a bright patch."""
    rng = np.random.default_rng(seed)
    pixels = rng.normal(70, 12, (size, size))
    if label_index == 1:
        top = int(rng.integers(4, size // 2))
        left = int(rng.integers(4, size // 2))
        pixels[top : top + size // 3, left : left + size // 3] += 120
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_dataset(
    root: Path,
    *,
    per_class: int = IMAGES_PER_CLASS,
    splits: tuple[str, ...] = ("train",),
    seed: int = 0,
) -> Path:
    """Write `<root>/<split>/{NORMAL,PNEUMONIA}/*.jpeg` synthetic X-rays and return root."""
    for split_index, split in enumerate(splits):
        for label_index, label in enumerate(("NORMAL", "PNEUMONIA")):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for index, name in enumerate(patient_file_names(label, per_class)):
                image_seed = seed + 100_000 * split_index + 10_000 * label_index + index
                pixels = synthetic_xray(label_index, image_seed)
                (folder / name).write_bytes(encode(pixels, "JPEG", quality=90))
    return root


@pytest.fixture
def dataset_factory(tmp_path):
    """Call with keyword arguments of `write_dataset` to get a fresh synthetic dataset root."""
    counter = iter(range(1000))

    def make(**options) -> Path:
        return write_dataset(tmp_path / f"dataset{next(counter)}", **options)

    return make


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """A read-only synthetic dataset: 24 train and 4 val images per class. Do not modify."""
    root = tmp_path_factory.mktemp("synthetic") / "chest_xray"
    write_dataset(root, per_class=IMAGES_PER_CLASS, splits=("train",))
    write_dataset(root, per_class=4, splits=("val",), seed=7)
    return root


@pytest.fixture
def image_factory(tmp_path):
    """Write a synthetic image file: `make(name, label_index=1, seed=0, fmt=None)` -> path."""

    def make(name: str, label_index: int = 1, seed: int = 0, fmt: str | None = None) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = fmt or ("PNG" if path.suffix.lower() == ".png" else "JPEG")
        path.write_bytes(encode(synthetic_xray(label_index, seed), fmt))
        return path

    return make


@pytest.fixture
def corrupt_jpeg(tmp_path) -> Path:
    """A `.jpeg` file that holds no image."""
    path = tmp_path / "corrupt" / "person999_bacteria_1.jpeg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a JPEG file at all")
    return path


# --- models ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def untrained_model_path(tmp_path_factory) -> Path:
    """A PneumoNet file holding an untrained seed model at image_size 32 (threshold 0.5)."""
    import keras

    from pneumonet_core.models.architectures import build_model
    from pneumonet_core.models.modelio import ModelMetadata, save_model

    keras.utils.set_random_seed(1)
    model = build_model("seed", TINY_IMAGE_SIZE)
    path = tmp_path_factory.mktemp("untrained") / "untrained.keras"
    save_model(model, path, ModelMetadata(architecture="seed", image_size=TINY_IMAGE_SIZE))
    return path


@dataclass
class TrainedRun:
    """A tiny model trained once per session on `synthetic_data`, and where its run is stored."""

    home: Path
    data_dir: Path
    config: object
    result: object

    @property
    def model_path(self) -> Path:
        return Path(self.result.model_path)

    def activate(self, monkeypatch) -> None:
        """Point PNEUMONET_HOME at this run's store (for tracking queries)."""
        monkeypatch.setenv("PNEUMONET_HOME", str(self.home))


def tiny_train_config(data_dir: Path, out: Path | None, **overrides):
    """The suite's standard tiny training run: seed CNN, 32 px, 2 epochs, batch 8."""
    from pneumonet_core.training.trainer import TrainConfig

    values = {
        "data_dir": str(data_dir),
        "architecture": "seed",
        "image_size": TINY_IMAGE_SIZE,
        "epochs": 2,
        "batch_size": 8,
        "seed": 3,
        "val_fraction": 0.25,
        "out": str(out) if out else None,
    }
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def train_config_factory():
    """`make(data_dir, out, **overrides)` -> the suite's standard tiny TrainConfig."""
    return tiny_train_config


@pytest.fixture(scope="session")
def trained(synthetic_data, tmp_path_factory) -> TrainedRun:
    """Train the tiny model once (with its own PNEUMONET_HOME) and share it across tests."""
    from pneumonet_core.training.trainer import train

    home = tmp_path_factory.mktemp("trained_home")
    config = tiny_train_config(synthetic_data, home / "out" / "tiny.keras", run_name="tiny")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PNEUMONET_HOME", str(home))
        for name in ISOLATED_ENV_VARS:
            patch.delenv(name, raising=False)
        result = train(config, verbose=0)
    return TrainedRun(home=home, data_dir=synthetic_data, config=config, result=result)


@pytest.fixture(scope="session")
def trained_model_path(trained) -> Path:
    return trained.model_path


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared dataset root; tests using it are skipped with the reason when it is absent."""
    return require_data()


# Fixtures that train a model or build a training run: a test using one is `slow`, so
# `pytest -m "not slow and not e2e"` is the quick loop (CI still runs everything).
TRAINING_FIXTURES = {"trained", "trained_model_path", "train_config_factory"}


def pytest_collection_modifyitems(items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
