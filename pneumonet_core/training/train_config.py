"""Training settings, defined once: `TrainConfig` is what the CLI parser and the Train page
are built from, what MLflow records as parameters, and what a model's metadata keeps.

No TensorFlow here, so reading or validating settings stays fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pneumonet_core.data.augment import AugmentationConfig
from pneumonet_core.imaging.preprocessing import check_image_size
from pneumonet_core.metrics import classification as evaluate
from pneumonet_core.models.architectures import INPUT_NORMALIZATIONS, default_image_size
from pneumonet_core.training.distribute import STRATEGIES
from pneumonet_core.utils.settings import setting

MONITORS = {"val_auc": "max", "val_loss": "min"}
LR_SCHEDULES = ("constant", "cosine")
# The cosine schedule ends at this fraction of the peak learning rate.
COSINE_FLOOR = 0.02
CLASS_BALANCING = ("weights", "none")
ON_ERROR = ("skip", "raise")


@dataclass
class TrainConfig:
    """Everything that defines a training run (logged as MLflow parameters).

    Each field is declared with `settings.setting`: its help text, choices and command-line
    flag live next to its default, and the `pneumonet train` parser and the dashboard's Train
    form are built from them.

    Attributes:
        data_dir: Dataset root holding `train/` (default: `config.data_root()`).
        architecture: "seed" or "pneumonet".
        epochs: Maximum number of epochs.
        image_size: Square input side (default: the architecture's own).
        batch_size: Images per batch.
        learning_rate: Adam's (peak) learning rate.
        lr_schedule: "constant" or "cosine" (cosine decay over all epochs).
        seed: Seed for the initial weights, shuffling, augmentation and (unless
            `split_seed` is set) the validation split.
        split_seed: Seed of the patient-grouped validation split (default: `seed`); fix it to
            compare or ensemble runs of several seeds on one validation split.
        val_fraction: Share of `train/` patients held out for validation.
        augmentation: Training-time augmentation.
        class_balancing: "weights" (balanced class weights) or "none".
        label_smoothing: Binary cross-entropy label smoothing in [0, 0.5).
        dropout_rate: Dropout before the output (default: the architecture's own).
        input_normalization: "none" or "equalize" (per-image histogram equalisation inside
            the model).
        lung_focus: Damping of the image outside the lung region inside the model, in [0, 1]
            (0: off, 1: the outside is hidden).
        monitor: "val_auc" or "val_loss": which epoch is kept as best.
        early_stopping_patience: Stop after this many epochs without improvement (0: never).
        threshold_policy: "youden", "sensitivity:X" (highest threshold with sensitivity >= X)
            or "fixed:X", applied to the validation predictions of the best epoch.
        subset_per_class: Use at most this many `train/` images per class (quick runs).
        on_error: "skip" or "raise" for unreadable training images.
        out: Where the best model is written (default: `<PNEUMONET_HOME>/models/<run>.keras`).
        run_name: MLflow run name.
        distribute: tf.distribute strategy: "none", "mirrored" or "multiworker"; the batch
            size is per replica.
    """

    data_dir: str | None = setting(
        None, help="dataset root holding train/ (default: $PNEUMONET_DATA)", flag="dir"
    )
    architecture: str = setting("pneumonet", help="architecture: seed or pneumonet", flag="--arch")
    epochs: int = setting(10, help="maximum number of epochs")
    image_size: int | None = setting(
        None, help="input side in pixels (default: the architecture's own)"
    )
    batch_size: int = setting(32, help="images per batch (per replica)")
    learning_rate: float = setting(2e-3, help="Adam's (peak) learning rate")
    lr_schedule: str = setting(
        "cosine", help="learning rate schedule over the epochs", choices=LR_SCHEDULES
    )
    seed: int = setting(42, help="seed of weights, shuffling, augmentation and split")
    split_seed: int | None = setting(None, help="validation split seed (default: --seed)")
    val_fraction: float = setting(0.2, help="share of train/ patients held out for validation")
    augmentation: AugmentationConfig = setting(
        default_factory=AugmentationConfig, help="training-time augmentation", prefix="augment"
    )
    class_balancing: str = setting(
        "weights", help="balanced class weights or none", choices=CLASS_BALANCING
    )
    label_smoothing: float = setting(0.1, help="binary cross-entropy label smoothing")
    dropout_rate: float | None = setting(
        None, help="dropout before the output (default: the architecture's own)"
    )
    input_normalization: str = setting(
        "none", help="per-image normalisation inside the model", choices=INPUT_NORMALIZATIONS
    )
    lung_focus: float = setting(
        0.0, help="damp the image outside the lung region inside the model (0 off, 1 hidden)"
    )
    monitor: str = setting("val_auc", help="which epoch is kept as best", choices=tuple(MONITORS))
    early_stopping_patience: int = setting(
        0,
        help="stop after PATIENCE epochs without improvement (0: off)",
        flag="--early-stopping",
        metavar="PATIENCE",
    )
    threshold_policy: str = setting(
        "youden", help="youden, sensitivity:X or fixed:X (chosen on validation)"
    )
    subset_per_class: int | None = setting(None, help="use at most N images per class", metavar="N")
    on_error: str = setting(
        "skip", help="unreadable training images: skip them or stop", choices=ON_ERROR
    )
    out: str | None = setting(None, help="where to write the best model (.keras)")
    run_name: str | None = setting(None, help="MLflow run name")
    distribute: str = setting(
        "none", help="tf.distribute strategy (batch size is per replica)", choices=STRATEGIES
    )

    def __post_init__(self):
        if isinstance(self.augmentation, dict):
            self.augmentation = AugmentationConfig(**self.augmentation)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        checks = [
            (self.epochs >= 1, "epochs", "at least 1"),
            (self.batch_size >= 1, "batch_size", "at least 1"),
            (0 < self.learning_rate < 1, "learning_rate", "in (0, 1)"),
            (self.lr_schedule in LR_SCHEDULES, "lr_schedule", f"one of {LR_SCHEDULES}"),
            (self.monitor in MONITORS, "monitor", f"one of {tuple(MONITORS)}"),
            (
                self.class_balancing in CLASS_BALANCING,
                "class_balancing",
                f"one of {CLASS_BALANCING}",
            ),
            (0 <= self.label_smoothing < 0.5, "label_smoothing", "in [0, 0.5)"),
            (self.early_stopping_patience >= 0, "early_stopping_patience", "0 or more"),
            (self.on_error in ON_ERROR, "on_error", "'skip' or 'raise'"),
            (self.distribute in STRATEGIES, "distribute", f"one of {STRATEGIES}"),
            (0.0 <= self.lung_focus <= 1.0, "lung_focus", "in [0, 1]"),
            (
                self.input_normalization in INPUT_NORMALIZATIONS,
                "input_normalization",
                f"one of {INPUT_NORMALIZATIONS}",
            ),
            (0.0 < self.val_fraction <= 0.5, "val_fraction", "in (0, 0.5]"),
            (
                self.dropout_rate is None or 0.0 <= self.dropout_rate < 1.0,
                "dropout_rate",
                "in [0, 1)",
            ),
            (
                self.subset_per_class is None or self.subset_per_class >= 2,
                "subset_per_class",
                "at least 2",
            ),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {getattr(self, name)!r}")
        parse_threshold_policy(self.threshold_policy)
        default_image_size(self.architecture)  # raises ValueError naming the architecture
        if self.image_size is not None:
            check_image_size(self.image_size)
        if self.out is not None and not str(self.out).endswith(".keras"):
            raise ValueError(f"out must be a .keras file, got {self.out!r}")

    def resolved_split_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed

    def resolved_image_size(self) -> int:
        if self.image_size is None:
            return default_image_size(self.architecture)
        return self.image_size

    def to_dict(self) -> dict:
        values = asdict(self)
        values["augmentation"] = self.augmentation.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        return cls(**values)


def parse_threshold_policy(policy: str) -> tuple[str, float | None]:
    """Split "sensitivity:0.97" into ("sensitivity", 0.97); "youden" into ("youden", None)."""
    name, _, value = str(policy).partition(":")
    if name == "youden" and not value:
        return name, None
    if name in ("sensitivity", "fixed") and value:
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if 0.0 <= number <= 1.0:
            return name, number
    raise ValueError(
        f"threshold_policy must be 'youden', 'sensitivity:X' or 'fixed:X' with X in [0, 1], "
        f"got {policy!r}"
    )


def choose_threshold(y_true, y_score, policy: str) -> float:
    """Apply a threshold policy to validation labels and scores."""
    name, value = parse_threshold_policy(policy)
    if name == "fixed":
        return float(value)
    if name == "sensitivity":
        return evaluate.threshold_for_sensitivity(y_true, y_score, min_sensitivity=value)
    return evaluate.youden_threshold(y_true, y_score)
