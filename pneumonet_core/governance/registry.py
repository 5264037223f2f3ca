"""The model registry: promoted models as versions of the MLflow registered model `pneumonet`.

A version's `.keras` file (and card) is stored once, read-only, in `PNEUMONET_HOME/registry/
pneumonet/<sha256[:24]>/`; the alias `active` names the version in use; facts are version tags.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pneumonet_core.governance import modelcard, tracking
from pneumonet_core.inference.predict import Predictor, check_threshold
from pneumonet_core.models import modelio
from pneumonet_core.utils import config
from pneumonet_core.utils.atomic import write_json_atomically

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

# A registry on a tracking server is asked again this often for its active version.
SERVER_REFRESH_SECONDS = 10
MODEL_NAME = "pneumonet"
ACTIVE_ALIAS = "active"
MODEL_FILE = "model.keras"
TAG = "pneumonet."
OPERATING_POINT_TAG = "pneumonet.operating_point"
CARD_FIGURES = ("accuracy", "roc_auc")
FIGURES = ("threshold", *(f"val_{key}" for key in CARD_FIGURES))
TEXT_TAGS = ("promoted_by", "activated_by", "sha256", "gate_verdict", "override_reason")


@dataclasses.dataclass(frozen=True)
class Evidence:
    """A labelled folder (NORMAL/, PNEUMONIA/) scored by one model (its SHA-256) at a threshold:
    readable images scored, `data.data_fingerprint` of all its image files, and the figures."""

    threshold: float
    n_images: int
    fingerprint: str
    sensitivity: float
    specificity: float
    folder: str
    model_sha256: str


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
    """A site threshold saved on a registry version: who saved it, when (ISO UTC), evidence."""

    version: int
    threshold: float
    saved_by: str
    saved_at: str
    evidence: Evidence


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    """The model used when none is named: its file, source ("PNEUMONET_MODEL", "registry" or
    "shipped"), registry version and that version's site operating point (None if not saved)."""

    path: Path
    source: str
    version: int | None = None
    operating_point: OperatingPoint | None = None

    @property
    def label(self) -> str:
        """Display text: "registry version 3", "PNEUMONET_MODEL" or "shipped"."""
        return f"registry version {self.version}" if self.source == "registry" else self.source

    @property
    def threshold(self) -> float | None:
        """The site operating point's threshold, in (0, 1); None without one (the file's own)."""
        return None if self.operating_point is None else self.operating_point.threshold


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_user(user: str) -> str:
    if not isinstance(user, str) or not user.strip() or len(user) > 200 or "\n" in user:
        raise ValueError(f"user must be a non-empty one-line name, got {user!r}")
    return user.strip()


def _client():
    tracking.configure()
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def _registry_exists() -> bool:
    uri = config.tracking_uri()
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).is_file()


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _stored_file(sha: str) -> Path:
    return config.state_dir() / "registry" / MODEL_NAME / sha[:24] / MODEL_FILE


def _intact(path: Path, sha: str) -> bool:
    return path.is_file() and _sha256(path) == sha


def _store_copy(path: Path, sha: str) -> Path:
    """Load a model in safe mode and copy it (atomically, once) into its content-addressed file."""
    config.import_tensorflow_quietly()
    target = _stored_file(sha)
    if _intact(target, sha):  # stored before: checked again, never rewritten
        modelio.load_model(target)
        return target
    modelio.promote_model(path, target)  # safe-mode load, then temporary file and os.replace
    if not _intact(target, sha):
        target.unlink()
        raise OSError(f"{path} changed while it was copied into the registry; try again")
    target.chmod(0o444)
    return target


def _known_run(client, run_id: str) -> str | None:
    try:
        return client.get_run(run_id).info.run_id if run_id else None
    except Exception:  # noqa: BLE001  (not in this store: a foreign run, or no run id at all)
        return None


def locate_model(path_or_run_id: str | os.PathLike, scratch: Path) -> tuple[Path, str | None]:
    """The model file to promote and its run (a run's logged model is downloaded to `scratch`);
    ValueError when it is neither a file nor a run of the store with a logged `.keras` model."""
    path = Path(path_or_run_id).expanduser()
    if path.is_file():
        return path, None
    run_id, client = str(path_or_run_id).strip(), _client()
    if _known_run(client, run_id) is None:
        raise ValueError(f"{run_id!r} is neither a model file nor a run id of the tracking store")
    models = [a.path for a in client.list_artifacts(run_id, "model") if a.path.endswith(".keras")]
    if not models:
        raise ValueError(f"run {run_id!r} saved no .keras model under model/")
    return tracking.download_artifact(run_id, models[0], scratch), run_id


def _versions(client) -> list:
    found = client.search_model_versions(f"name='{MODEL_NAME}'")
    return sorted(found, key=lambda item: int(item.version), reverse=True)


def _activate(client, version: int | str, user: str, tags: dict | None = None) -> ModelVersion:
    """Record who activated a version and when, then move the alias (the step that counts)."""
    tags = {"activated_by": user, "activated_at": _now()} | (tags or {})
    for key, value in tags.items():
        client.set_model_version_tag(MODEL_NAME, str(version), TAG + key, value)
    client.set_registered_model_alias(MODEL_NAME, ACTIVE_ALIAS, str(version))
    return client.get_model_version(MODEL_NAME, str(version))


def promote(path_or_run_id: str | os.PathLike, *, user: str, tags: dict | None = None):
    """Register a model (a `.keras` file or a run id) as a version, and make it `active`;
    `tags` (e.g. the promotion gate's verdict) are set on the version, prefixed `pneumonet.`.

    Raises:
        ValueError: Bad user; neither a model file nor a run with a model; the model does not
            load in safe mode (`modelio.ModelLoadError`, checked before anything is registered).
    """
    user = _check_user(user)
    with tempfile.TemporaryDirectory() as scratch:
        path, run_id = locate_model(path_or_run_id, Path(scratch))
        sha, card = _sha256(path), modelcard.model_card_for(path)
        stored = _store_copy(path, sha)
    if card and not stored.with_name(modelcard.CARD_FILE_NAME).exists():
        write_json_atomically(stored.with_name(modelcard.CARD_FILE_NAME), card)
    metadata = modelio.read_metadata(stored)
    client = _client()
    if _aliases(client) is None:
        with contextlib.suppress(Exception):  # created meanwhile by another process
            client.create_registered_model(MODEL_NAME)
    for existing in _versions(client):  # a model registered before becomes active again
        if existing.tags.get(f"{TAG}sha256") == sha:
            return _activate(client, existing.version, user, tags)
    figures = modelcard.card_facts(card, metadata.metrics).metrics
    new_tags = {
        "promoted_by": user,
        "promoted_at": _now(),
        "sha256": sha,
        "source": f"run {run_id}" if run_id else str(path.resolve()),
        "threshold": repr(float(metadata.threshold)),
        "image_size": str(metadata.image_size),
        "trained_in_run": metadata.run_id or "-",
    } | {f"val_{key}": repr(figures[key]) for key in CARD_FIGURES if key in figures}
    tags = new_tags | (tags or {})
    created = client.create_model_version(
        MODEL_NAME,
        stored.parent.resolve().as_uri(),
        run_id=run_id or _known_run(client, metadata.run_id),
        tags={TAG + key: value for key, value in tags.items()},
        description=f"promoted by {user}",
    )
    return _activate(client, created.version, user)


def _get_version(version: int | str):
    """`(client, ModelVersion)`; ValueError for a bad or unknown version."""
    text = str(version).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"version must be a positive whole number, got {version!r}")
    client = _client() if _registry_exists() else None
    known = {int(item.version): item for item in _versions(client)} if client else {}
    if int(text) not in known:
        raise ValueError(f"no registry version {int(text)}; known versions: {sorted(known)}")
    return client, known[int(text)]


def rollback(version: int | str, *, user: str) -> ModelVersion:
    """Point `active` at an existing version (ValueError: bad user, unknown version;
    modelio.ModelLoadError: its stored file is missing or changed)."""
    user = _check_user(user)
    client, found = _get_version(version)
    path = _stored_file(found.tags.get(f"{TAG}sha256", "-"))
    if not _intact(path, found.tags.get(f"{TAG}sha256")):
        raise modelio.ModelLoadError(f"{path} no longer matches registry version {found.version}")
    return _activate(client, found.version, user)


def version_model_path(version: int | str) -> Path:
    """The local `.keras` file of a registry version (ValueError for an unknown version)."""
    return _stored_file(_get_version(version)[1].tags.get(f"{TAG}sha256", "-"))


def _aliases(client) -> dict | None:
    found = client.search_registered_models(f"name='{MODEL_NAME}'")
    return {name: int(number) for name, number in found[0].aliases.items()} if found else None


def active_version() -> ModelVersion | None:
    """The version the alias `active` names, or None when nothing was promoted."""
    client = _client() if _registry_exists() else None
    number = (_aliases(client) or {}).get(ACTIVE_ALIAS) if client else None
    return client.get_model_version(MODEL_NAME, str(number)) if number else None


def resolve_model() -> ResolvedModel:
    """`PNEUMONET_MODEL` if set, else the registry's active version, else the shipped model."""
    if os.environ.get("PNEUMONET_MODEL"):
        return ResolvedModel(Path(os.environ["PNEUMONET_MODEL"]).expanduser(), "PNEUMONET_MODEL")
    active = active_version()
    if active is None:
        return ResolvedModel(config.shipped_model_path(), "shipped")
    number, path = int(active.version), _stored_file(active.tags.get(f"{TAG}sha256", "-"))
    return ResolvedModel(path, "registry", number, _read_op(number, active.tags))


def registry_state() -> tuple:
    """What changes whenever the active model may have changed, read without MLflow.

    `PNEUMONET_MODEL`, the tracking URI and, for the embedded SQLite store, the size and
    modification time of its files. A store on a server cannot be watched this way: its state
    changes every `SERVER_REFRESH_SECONDS`, so it is asked again that often.
    """
    uri = config.tracking_uri()
    state = (os.environ.get("PNEUMONET_MODEL", ""), uri)
    if not uri.startswith("sqlite:///"):
        return (*state, int(time.monotonic() // SERVER_REFRESH_SECONDS))
    database = Path(uri.removeprefix("sqlite:///"))
    files = (database, database.with_name(database.name + "-wal"))
    return (
        *state,
        *((f.stat().st_size, f.stat().st_mtime_ns) if f.exists() else None for f in files),
    )


def active_model_path() -> Path:
    """The model used when none is named (see `resolve_model`)."""
    return resolve_model().path


def compute_evidence(model, folder: str | os.PathLike, threshold: float, *, batch_size=32):
    """The `Evidence` for a threshold: a labelled folder scored by `model` (a `Predictor` or a
    `.keras` path); ValueError for a bad threshold or no readable images of both classes."""
    from pneumonet_core.data import data_fingerprint, scan_dataset
    from pneumonet_core.metrics import classification as evaluate

    threshold = check_threshold(threshold)
    predictor = model if isinstance(model, Predictor) else Predictor(model)
    frame = scan_dataset(folder).frame
    paths, labels = list(frame["path"]), frame["label_index"].tolist()
    predictions = predictor.predict(paths, batch_size=batch_size)
    scored = [(y, p.probability) for y, p in zip(labels, predictions, strict=True) if not p.error]
    if len({y for y, _ in scored}) < 2:
        raise ValueError(f"{folder} needs readable NORMAL and PNEUMONIA images to set a threshold")
    figures = evaluate.binary_metrics(*zip(*scored, strict=True), threshold=threshold)
    figures = float(figures["sensitivity"]), float(figures["specificity"])
    where = str(Path(folder).expanduser().resolve())
    return Evidence(
        threshold, len(scored), data_fingerprint(paths), *figures, where, _sha256(predictor.path)
    )


def set_operating_point(version, threshold: float, *, user: str, evidence: Evidence):
    """Save a site threshold on a version with who, when and the evidence (one JSON tag);
    ValueError for a bad value or evidence measured at another threshold or with another model."""
    threshold, user = check_threshold(threshold), _check_user(user)
    if not math.isclose(evidence.threshold, threshold, abs_tol=1e-9):
        raise ValueError(f"evidence was measured at {evidence.threshold!r}, not {threshold!r}")
    client, found = _get_version(version)
    if evidence.model_sha256 != found.tags.get(f"{TAG}sha256"):
        raise ValueError(f"evidence was measured with another model than version {version!r}")
    point = OperatingPoint(int(found.version), threshold, user, _now(), evidence)
    record = json.dumps({k: v for k, v in dataclasses.asdict(point).items() if k != "version"})
    client.set_model_version_tag(MODEL_NAME, str(found.version), OPERATING_POINT_TAG, record)
    return point


def _read_op(version: int, tags: dict) -> OperatingPoint | None:
    if not tags.get(OPERATING_POINT_TAG):
        return None
    record = json.loads(tags[OPERATING_POINT_TAG])
    record["evidence"] = Evidence(**record["evidence"])
    return OperatingPoint(version=version, **record)


def operating_point(version: int | str) -> OperatingPoint | None:
    """The site operating point saved on a version, or None (ValueError: unknown version)."""
    found = _get_version(version)[1]
    return _read_op(int(found.version), found.tags)


def describe_operating_point(op: OperatingPoint) -> str:
    """E.g. "threshold 0.91, chosen on 300 local images by a@b.org, 2026-11-26"."""
    return (
        f"threshold {op.threshold:g}, chosen on {op.evidence.n_images} local images by "
        f"{op.saved_by}, {op.saved_at[:10]}"
    )


def list_versions() -> list[dict]:
    """Every version, newest first, as JSON-ready dicts: `version, aliases, active, created`
    (ISO UTC), the `TEXT_TAGS`, `source, run_id, threshold, image_size, val_accuracy,
    val_roc_auc, operating_point` (dict or None) and `operating_point_text`."""
    client = _client() if _registry_exists() else None
    aliases = _aliases(client) if client else None
    if aliases is None:
        return []
    rows = []
    for item in _versions(client):
        tags, number = item.tags, int(item.version)
        names = sorted(alias for alias, target in aliases.items() if int(target) == number)
        created = datetime.fromtimestamp(item.creation_timestamp / 1000, UTC)
        row = {"version": number, "aliases": names, "active": ACTIVE_ALIAS in names}
        row["created"] = created.isoformat(timespec="seconds")
        row |= {key: tags.get(TAG + key) for key in TEXT_TAGS}
        row |= {"source": tags.get(f"{TAG}source"), "run_id": item.run_id or None}
        row |= {key: float(tags[TAG + key]) if TAG + key in tags else None for key in FIGURES}
        row["image_size"] = int(tags.get(f"{TAG}image_size", 0)) or None
        point = _read_op(number, tags)
        row["operating_point"] = dataclasses.asdict(point) if point else None
        row["operating_point_text"] = describe_operating_point(point) if point else ""
        rows.append(row)
    return rows


def active_predictor(
    threshold: float | None = None, *, resolved: ResolvedModel | None = None
) -> Predictor:
    """A `Predictor` for the model used when none is named (`resolve_model()`).

    Args:
        threshold: Overrides the threshold; default: the active version's site operating
            point when it has one, else the file's own threshold.
        resolved: The resolution to use, when the caller already has it.
    """
    resolved = resolved or resolve_model()
    point = resolved.operating_point if threshold is None else None
    return Predictor(
        resolved.path,
        threshold if threshold is not None else resolved.threshold,
        model_label=resolved.label,
        version=resolved.version,
        operating_point=point,
    )
