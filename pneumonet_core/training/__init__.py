"""Training: settings (`TrainConfig`), the training run, its callbacks, distribution
strategies and the one background job at a time."""

from pneumonet_core.training import distribute, jobs, train_config, trainer
from pneumonet_core.training.jobs import (
    JobAlreadyRunning,
    JobStatus,
    read_job_status,
    request_stop,
    start_training_job,
)
from pneumonet_core.training.train_config import TrainConfig
from pneumonet_core.training.trainer import TrainResult, train

__all__ = [
    "JobAlreadyRunning",
    "JobStatus",
    "TrainConfig",
    "TrainResult",
    "distribute",
    "jobs",
    "read_job_status",
    "request_stop",
    "start_training_job",
    "train",
    "train_config",
    "trainer",
    "trainer",
]
