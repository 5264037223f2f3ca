"""The state of a training job, as every replica reads it (`jobs`, `shared_job`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

ACTIVE_STATES = ("starting", "running", "stopping")


@dataclass
class JobStatus:
    """The state of the current (or last) training job.

    Attributes:
        state: "starting", "running", "stopping", "finished", "stopped" or "failed".
        job_id: Identifier of the job.
        run_id: MLflow run id once the run has started.
        epoch, epochs, batch, batches: Progress (epoch is 1-based; 0 before the first).
        started_at, updated_at: Unix times.
        error: One-paragraph reason when the job failed.
        model_path: The best model, once written.
        user: Who started it (a signed-in email), or None for the operating-system user.
        audit_error: The last audit write of this job that failed, in one line, or None.
    """

    state: str
    job_id: str = ""
    pid: int | None = None
    run_id: str | None = None
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    started_at: float = 0.0
    training_started_at: float | None = None
    updated_at: float = 0.0
    error: str | None = None
    model_path: str | None = None
    user: str | None = None
    audit_error: str | None = None
    config: dict = field(default_factory=dict)

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def progress(self) -> float:
        """Fraction of all batches done, in [0, 1]."""
        if not self.epochs or not self.batches:
            return 0.0
        done = max(0, self.epoch - 1) * self.batches + min(self.batch, self.batches)
        return min(1.0, done / (self.epochs * self.batches))

    @property
    def elapsed_s(self) -> float:
        end = self.updated_at if not self.is_active else time.time()
        return max(0.0, end - self.started_at) if self.started_at else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current pace, once some training progress was made."""
        if not self.is_active or not self.training_started_at or self.progress <= 0:
            return None
        spent = time.time() - self.training_started_at
        return spent * (1 - self.progress) / self.progress
