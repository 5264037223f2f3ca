"""The background training job as the Train page shows it: its summary, starting and stopping
it, and the settings the form offers.

The job runs in another process (`training.jobs`); its state lives in the job status file,
so every session sees the same job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from dashboard import auth, dataset, runs

# Values the form offers for settings that take any number (presentation only: the core's
# default is always offered too).
IMAGE_SIZES = [64, 96, 128, 150, 192, 224, 256]
BATCH_SIZES = [8, 16, 32, 64]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 2e-3, 3e-3]
AUDIT_SOURCE = "dashboard:Train"  # how training events from this page appear in the audit trail


@dataclasses.dataclass(frozen=True)
class FormField:
    """One widget of the Train form: a `TrainConfig` setting and how the form shows it.

    The default, the type and any choices come from the setting's field in the core; the rest
    is presentation.

    Attributes:
        name: The setting's path, dotted for nested settings (e.g. "augmentation.enabled").
        label: The widget's label.
        widget: "select", "number", "slider", "toggle" or "text".
        key: The widget's Streamlit key.
        section: "main" (three columns), "switch" (full width, below them) or "advanced"
            (three columns in the Advanced expander).
        default: The setting's default in `TrainConfig` (None: automatic or off).
        initial: The widget's starting value.
        value_type: The setting's type; the widget's value is converted to it.
        options: The values a select box offers.
        min_value: The smallest value of a number input or slider.
        max_value: The largest value of a number input or slider.
        step: A slider's step.
        none_value: The widget value that stands for None (e.g. 0 images per class: all).
        format: A format spec for a select box's option labels (e.g. "g").
        help: The widget's tooltip.
    """

    name: str
    label: str
    widget: str
    key: str
    section: str
    default: Any
    initial: Any
    value_type: type
    options: tuple = ()
    min_value: Any = None
    max_value: Any = None
    step: Any = None
    none_value: Any = None
    format: str | None = None
    help: str | None = None


def _layout(name: str, label: str, widget: str, key: str, **presentation: Any) -> dict:
    return {"name": name, "label": label, "widget": widget, "key": key, **presentation}


# Presentation only: which settings the form shows, how and where. `options` lists the values
# offered for a free-valued setting (a callable: asks the core); `start` gives, from the default
# `TrainConfig`, the widget's starting value where the setting's default is None ("automatic").
FORM_LAYOUT = (
    _layout(
        "architecture",
        "Architecture",
        "select",
        "train_architecture",
        options=lambda: architectures(),
    ),
    _layout("epochs", "Epochs", "number", "train_epochs", min_value=1, max_value=500),
    _layout(
        "image_size",
        "Image size (px)",
        "select",
        "train_image_size",
        options=IMAGE_SIZES,
        start=lambda config: config.resolved_image_size(),
    ),
    _layout("batch_size", "Batch size", "select", "train_batch_size", options=BATCH_SIZES),
    _layout(
        "learning_rate",
        "Learning rate",
        "select",
        "train_learning_rate",
        options=LEARNING_RATES,
        format="g",
    ),
    _layout("seed", "Seed", "number", "train_seed", min_value=0, max_value=2**31 - 1),
    _layout(
        "augmentation.enabled",
        "Augmentation (flips, small rotations, zoom, shifts, contrast, exposure and "
        "quality changes)",
        "toggle",
        "train_augmentation",
        section="switch",
    ),
    _layout(
        "subset_per_class",
        "Images per class (0 = all)",
        "number",
        "train_subset",
        section="advanced",
        min_value=0,
        max_value=100_000,
        none_value=0,
        help="Use a small stratified subset for a quick trial run.",
    ),
    _layout(
        "val_fraction",
        "Validation share (patients)",
        "slider",
        "train_val_fraction",
        section="advanced",
        min_value=0.1,
        max_value=0.5,
        step=0.05,
    ),
    _layout(
        "run_name",
        "Run name (optional)",
        "text",
        "train_run_name",
        section="advanced",
        none_value="",
    ),
)


@dataclasses.dataclass(frozen=True)
class JobSummary:
    """The background training job as the pages show it.

    Attributes:
        state: "starting", "running", "stopping", "finished", "stopped" or "failed".
        is_active: Whether the job is still running (or about to).
        job_id: The job's identifier.
        run_id: The MLflow run id, once known.
        run_name: A short display name for the run.
        epoch: The current epoch (1-based) or 0 before the first.
        epochs: The number of epochs planned.
        batch: The current batch within the epoch.
        batches: Batches per epoch.
        progress: Fraction of all batches done, in [0, 1].
        elapsed_seconds: Seconds since the job started.
        eta_seconds: Estimated seconds left, or None when unknown.
        error: The error message of a failed run.
        model_path: The trained model file, once saved.
        settings: The training settings of the job.
        audit_error: The job's last failed audit write, in one line, or None.
    """

    state: str
    is_active: bool
    job_id: str
    run_id: str | None
    run_name: str
    epoch: int
    epochs: int
    batch: int
    batches: int
    progress: float
    elapsed_seconds: float
    eta_seconds: float | None
    error: str | None
    model_path: str | None
    settings: dict[str, Any]
    audit_error: str | None = None


def training_defaults() -> dict[str, Any]:
    """Default training settings (from `TrainConfig`), without importing TensorFlow.

    Returns:
        Setting name to default value.
    """
    from pneumonet_core.training import TrainConfig

    return TrainConfig().to_dict()


def form_fields() -> list[FormField]:
    """The Train form's widgets, each built from its `TrainConfig` setting.

    Returns:
        The fields in `FORM_LAYOUT` order.

    Raises:
        KeyError: The layout names a setting `TrainConfig` does not have.
    """
    from pneumonet_core.training import TrainConfig
    from pneumonet_core.utils import settings_of

    settings = {".".join(item.path): item for item in settings_of(TrainConfig)}
    defaults = TrainConfig()
    return [_form_field(settings[layout["name"]], defaults, **layout) for layout in FORM_LAYOUT]


def _form_field(
    setting,
    defaults,
    *,
    options: Callable[[], list] | list | tuple = (),
    start: Callable[[Any], Any] | None = None,
    none_value: Any = None,
    section: str = "main",
    **presentation: Any,
) -> FormField:
    initial = setting.default
    if initial is None:
        initial = start(defaults) if start else none_value
    if presentation["widget"] == "select":
        if setting.choices:
            options = setting.choices
        elif callable(options):
            options = options()
        else:  # offered values, with the core's default always among them
            options = sorted({*options, initial})
    return FormField(
        **presentation,
        section=section,
        default=setting.default,
        initial=initial,
        value_type=setting.type,
        options=tuple(options),
        none_value=none_value,
    )


def form_settings(data_dir: str, values: dict[str, Any]) -> dict[str, Any]:
    """The settings of a submitted form, ready for `start_training`.

    Args:
        data_dir: The dataset folder chosen above the form.
        values: Field name to widget value, for every field of `form_fields()`.

    Returns:
        `TrainConfig` fields (nested settings as dicts that keep their other defaults).
    """
    defaults = training_defaults()
    settings: dict[str, Any] = {"data_dir": data_dir}
    for field in form_fields():
        value = values[field.name]
        if isinstance(value, str):
            value = value.strip()
        if field.none_value is not None and value == field.none_value:
            value = None
        elif value is not None:
            value = field.value_type(value)
        *parents, name = field.name.split(".")
        target, nested_defaults = settings, defaults
        for parent in parents:
            nested_defaults = nested_defaults[parent]
            target = target.setdefault(parent, dict(nested_defaults))
        target[name] = value
    return settings


def architectures() -> list[str]:
    """The architecture names the core can build."""
    from pneumonet_core.models import architectures as model

    return sorted(model.ARCHITECTURES)


def default_image_size(architecture: str) -> int:
    """The input size an architecture is designed for."""
    from pneumonet_core.models import architectures as model

    return int(model.default_image_size(architecture))


def job_summary() -> JobSummary | None:
    """The current (or last) training job, read from the job status file.

    Returns:
        The job, or None when no job has ever run here.
    """
    from pneumonet_core.training import jobs

    status = jobs.read_job_status()
    if status is None:
        return None
    settings = dict(status.config or {})
    return JobSummary(
        state=status.state,
        is_active=bool(status.is_active),
        job_id=status.job_id,
        run_id=status.run_id,
        run_name=str(settings.get("run_name") or status.run_id or status.job_id or "training"),
        epoch=int(status.epoch or 0),
        epochs=int(status.epochs or 0),
        batch=int(status.batch or 0),
        batches=int(status.batches or 0),
        progress=float(status.progress),
        elapsed_seconds=float(status.elapsed_s),
        eta_seconds=status.eta_s,
        error=status.error,
        model_path=status.model_path,
        settings=settings,
        audit_error=status.audit_error,
    )


def run_display_name(job: JobSummary) -> str:
    """The job's run name as MLflow shows it (falls back to the configured name or an id)."""
    if job.settings.get("run_name"):
        return str(job.settings["run_name"])
    if job.run_id:
        try:
            return runs.mlflow_run_name(job.run_id) or job.run_id[:12]
        except Exception:  # noqa: BLE001  (a name is only cosmetic)
            return job.run_id[:12]
    return f"job {job.job_id}"


def start_training(settings: dict[str, Any]) -> JobSummary:
    """Start a training run in the background process.

    Args:
        settings: `TrainConfig` fields (data_dir, architecture, epochs, image_size, batch_size,
            learning_rate, seed, augmentation as a dict, ...).

    Returns:
        The new job.

    Raises:
        PermissionError: The user's role is not "ml" (`auth.may`).
        ValueError: A setting is invalid (the message names it).
        pneumonet_core.training.jobs.JobAlreadyRunning: Another job is running.
    """
    from pneumonet_core.training import TrainConfig, jobs

    require_ml_role("start training")
    jobs.start_training_job(
        TrainConfig.from_dict(dict(settings)), user=auth.signed_in_email(), source=AUDIT_SOURCE
    )
    return job_summary()


def stop_training() -> None:
    """Ask the running job to stop after its current batch (it keeps its best model); raises
    PermissionError unless the user's role is "ml"."""
    from pneumonet_core.training import jobs

    require_ml_role("stop training")
    jobs.request_stop(user=auth.signed_in_email(), source=AUDIT_SOURCE)


def require_ml_role(action: str) -> None:
    """Raise PermissionError (naming `action`) unless the user's role is "ml" (`auth.may`)."""
    if not auth.may("ml"):
        raise PermissionError(f"Only the ML team may {action}.")


def job_log_tail(lines: int = 30) -> str:
    """The last lines of the job's output log (for a failed run's details)."""
    from pneumonet_core.training import jobs

    try:
        log = jobs.log_path().read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(log.splitlines()[-lines:])


def settings_summary(settings: dict[str, Any]) -> str:
    """One line describing a run's main settings."""
    if not settings:
        return ""
    subset = settings.get("subset_per_class")
    parts = [
        f"{settings.get('architecture')}",
        f"{settings.get('epochs')} epochs",
        f"{settings.get('image_size') or 'default'} px",
        f"batch {settings.get('batch_size')}",
        f"learning rate {settings.get('learning_rate')}",
        f"seed {settings.get('seed')}",
        f"augmentation {'on' if (settings.get('augmentation') or {}).get('enabled') else 'off'}",
        f"data {settings.get('data_dir') or dataset.default_data_root()}",
    ]
    if subset:
        parts.append(f"{subset} images per class")
    return " · ".join(parts)
