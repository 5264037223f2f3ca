"""One background training job at a time, shared by every user of this machine.

The job runs `python -m pneumonet_core.training <config.json>` in its own process session, so it
outlives the dashboard or shell that started it. Files under `config.jobs_dir()`:

- `start.lock`: held briefly while a job is being started (two Start presses: one job).
- `running.lock`: held by the training process for its whole life (liveness check).
- `status.json`: state, run id, progress, error, model path.
- `stop`: its presence asks the job to stop after the current batch.
- `job.log`: the process's output.

Every start, stop request and end (finished, stopped or failed) is recorded in the audit trail
(`audit.record`: `train_start`, `train_stop`, `train_end`), with the job id, its state and
run id; never a path. A failed audit write never stops a job: it is a line in the job log and
the status's `audit_error`, where the Train page shows it. With `PNEUMONET_DATABASE_URL`, the
pool's one job, its status and Stop are shared by every replica (`shared_job`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
import time
import traceback
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path

from pneumonet_core.governance import audit
from pneumonet_core.storage import DatabaseError
from pneumonet_core.training import shared_job
from pneumonet_core.training.job_status import ACTIVE_STATES, JobStatus
from pneumonet_core.utils import config
from pneumonet_core.utils.atomic import write_json_atomically
from pneumonet_core.utils.errors import first_line

AUDIT_SOURCE = "job:train"  # the audit entries' source when the caller names none
START_GRACE_S = 60.0
# Niceness of the training process (0 normal, 19 lowest): uploads are served first.
JOB_NICENESS = 10

logger = logging.getLogger(__name__)


class JobAlreadyRunning(RuntimeError):
    """A training job is already running; only one may run at a time."""


def _status_path() -> Path:
    return config.jobs_dir() / "status.json"


def _stop_path() -> Path:
    return config.jobs_dir() / "stop"


def log_path() -> Path:
    """The output of the current (or last) job."""
    return config.jobs_dir() / "job.log"


def _read_raw_status() -> dict | None:
    try:
        return json.loads(_status_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _update_status(**changes) -> dict:
    values = _read_raw_status() or {}
    values.update(changes)
    values["updated_at"] = time.time()
    write_json_atomically(_status_path(), values)
    if shared_job.enabled():
        with suppress(DatabaseError):  # the relay publishes it again once the database is back
            shared_job.publish(values)
    return values


def _shared_status(local: dict | None) -> dict | None:
    """The pool's job when it is another replica's (shared database only), else None."""
    if not shared_job.enabled():
        return None
    try:
        remote = shared_job.read()
    except DatabaseError:
        return None
    same_job = remote is not None and local is not None and remote["job_id"] == local["job_id"]
    return None if same_job else remote


@contextmanager
def _file_lock(name: str, *, blocking: bool):
    config.jobs_dir().mkdir(parents=True, exist_ok=True)
    with open(config.jobs_dir() / name, "a+") as handle:
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle, flags)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _training_process_alive() -> bool:
    """True while some process holds `running.lock`."""
    with _file_lock("running.lock", blocking=False) as acquired:
        return not acquired


def _to_status(values: dict) -> JobStatus:
    known = JobStatus.__dataclass_fields__
    return JobStatus(**{key: value for key, value in values.items() if key in known})


def read_job_status() -> JobStatus | None:
    """The current or last job, or None if none ever ran here.

    A job whose process died without saying so (e.g. `kill -9`) is reported, and recorded,
    as failed; its MLflow run is closed as FAILED.
    """
    values = _read_raw_status()
    if (remote := _shared_status(values)) is not None:
        return _to_status(remote)  # another replica's job, as its machine last reported it
    if values is None:
        return None
    if values.get("state") in ACTIVE_STATES:
        values.update(_progress_fields())
    status = _to_status(values)
    if status.is_active and not _training_process_alive():
        starting = status.state == "starting" and time.time() - status.started_at < START_GRACE_S
        if not starting or not _pid_alive(status.pid):
            status = _record_death(status)
    return status


def _pid_alive(pid: int | None) -> bool:
    """Whether a process runs with this id (a killed child not yet reaped counts as dead)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _record_death(status: JobStatus) -> JobStatus:
    reason = "the training process ended unexpectedly (killed or crashed); see the job log"
    # Keep the progress (run id, epoch) the dead process last reported.
    values = _update_status(**{**_progress_fields(), "state": "failed", "error": reason})
    _record_end(values, AUDIT_SOURCE)
    if status.run_id:
        try:
            from pneumonet_core.governance import tracking

            tracking.mark_run_failed(status.run_id, reason)
        except Exception:  # the status file already says failed; the store is best effort
            pass
    return _to_status(values)


def _audit(action: str, *, source: str, user: str | None, details: dict) -> str | None:
    """Record a job event. A failed write or a refused value (an e-mail holding a slash) never
    stops the job: it goes to the job log and the status's `audit_error`, and is returned."""
    try:
        result = audit.record(action, source=source, user=user, details=details)
        error = None if result.ok else result.error
    except ValueError as refused:
        error = f"ValueError: {first_line(refused, limit=300)}"
    if error is None:
        return None
    notice = f"audit write failed: {action} was not recorded in the audit trail ({error})"
    logger.warning("%s (from %s)", notice, source)
    with suppress(OSError):  # the status and the server log still say it
        _update_status(audit_error=notice)
        with open(log_path(), "a") as log:
            log.write(f"pneumonet: {notice}\n")
    return notice


def _record_end(values: dict, source: str) -> None:
    """Audit a job's end (`train_end`) for the user who started it."""
    details = {key: values.get(key) for key in ("job_id", "state", "run_id")}
    _audit("train_end", source=source, user=values.get("user"), details=details)


def start_training_job(
    train_config, *, user: str | None = None, source: str = AUDIT_SOURCE
) -> JobStatus:
    """Start training in a background process that outlives its caller.

    Args:
        train_config: A `train.TrainConfig`.
        user: Who starts it (a signed-in email; None for the operating-system user). It is
            kept in the status, so that the job's end is recorded for the same user.
        source: Where it was started, for the audit trail ("dashboard:Train").

    Raises:
        JobAlreadyRunning: Another job is active (its status is in the message).
    """
    train_config.validate()
    _check_output_writable(train_config)
    with _file_lock("start.lock", blocking=True):
        current = read_job_status()
        if current is not None and current.is_active:
            raise JobAlreadyRunning(
                f"training job {current.job_id} is already {current.state} "
                f"(epoch {current.epoch}/{current.epochs}); stop it or wait for it to finish"
            )
        job_id = uuid.uuid4().hex[:12]
        config_path = config.jobs_dir() / f"config-{job_id}.json"
        config_path.write_text(json.dumps(train_config.to_dict()))
        _stop_path().unlink(missing_ok=True)
        _progress_path().unlink(missing_ok=True)
        values = {
            "state": "starting",
            "job_id": job_id,
            "started_at": time.time(),
            "updated_at": time.time(),
            "epochs": train_config.epochs,
            "config": train_config.to_dict(),
            "user": user,
        }
        _claim_pool(job_id, values)
        write_json_atomically(_status_path(), values)
        details = {
            "job_id": job_id,
            "architecture": train_config.architecture,
            "epochs": train_config.epochs,
        }
        log_path().unlink(missing_ok=True)  # a fresh log, which the start's notice may open
        _audit("train_start", source=source, user=user, details=details)
        with open(log_path(), "a") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "pneumonet_core.training", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=config.project_root(),
            )
        return _to_status(_update_status(pid=process.pid))


def _claim_pool(job_id: str, values: dict) -> None:
    """With a shared database, make this the pool's one job, or refuse (`JobAlreadyRunning`)."""
    if not shared_job.enabled():
        return
    try:
        other = shared_job.claim(job_id, values)
    except DatabaseError as error:
        raise RuntimeError(f"the shared database did not answer: {error}") from None
    if other is not None:
        raise JobAlreadyRunning(
            f"training job {other.get('job_id')} is already {other.get('state')} on another "
            f"replica (pool {shared_job.pool()}); stop it or wait for it to finish"
        )


def _check_output_writable(train_config) -> None:
    """Fail now, naming the path, if the model could not be written at the end of an epoch."""
    from pneumonet_core.models.modelio import check_writable_destination

    out = train_config.out or config.default_model_path()
    check_writable_destination(out)


def request_stop(*, user: str | None = None, source: str = AUDIT_SOURCE) -> JobStatus | None:
    """Ask the active job to stop after its current batch (it keeps its best model).

    Args:
        user: Who asks (a signed-in email; None for the operating-system user).
        source: Where it was asked, for the audit trail ("dashboard:Train").
    """
    status = read_job_status()
    if status is None or not status.is_active:
        return status
    if shared_job.enabled():
        shared_job.request_stop(status.job_id)  # the job's machine turns it into its stop file
    if (_read_raw_status() or {}).get("job_id") == status.job_id:
        config.jobs_dir().mkdir(parents=True, exist_ok=True)
        _stop_path().touch()
        stopping = _to_status(_update_status(state="stopping"))
    else:
        stopping = _to_status({**vars(status), "state": "stopping"})
    details = {"job_id": stopping.job_id, "state": "stopping", "run_id": status.run_id}
    _audit("train_stop", source=source, user=user, details=details)
    return stopping


def wait_for_job(timeout_s: float = 600.0, poll_s: float = 0.5) -> JobStatus | None:
    """Block until the current job is no longer active (or the timeout passes)."""
    deadline = time.time() + timeout_s
    status = read_job_status()
    while status is not None and status.is_active and time.time() < deadline:
        time.sleep(poll_s)
        status = read_job_status()
    return status


def run_job(config_path: str) -> int:
    """Body of the background process: train, keeping `status.json` up to date.

    The job runs at a lower CPU priority: a clinician waiting for a prediction comes before
    a training run, which only takes a little longer.
    """
    from pneumonet_core.training.trainer import TrainConfig, train

    _lower_priority()

    with _file_lock("running.lock", blocking=False) as acquired:
        if not acquired:
            _update_status(state="failed", error="another training process is already running")
            return 1
        running = _update_status(state="running", pid=os.getpid())
        relay = _start_relay(running.get("job_id"))
        try:
            train_config = TrainConfig.from_dict(json.loads(Path(config_path).read_text()))
            result = train(
                train_config, stop_file=_stop_path(), status_file=_progress_path(), verbose=2
            )
        except BaseException as error:  # noqa: BLE001 - any failure must reach the status file
            _stop_relay(relay)
            traceback.print_exc()
            message = first_line(error, limit=500)
            values = _update_status(
                state="failed", error=f"{type(error).__name__}: {message}", **_progress_fields()
            )
            _record_end(values, AUDIT_SOURCE)
            return 1
        _stop_relay(relay)
        # The progress file also holds run_id: merge, letting the result's values win.
        values = _update_status(
            **{
                **_progress_fields(),
                "state": "stopped" if result.stopped_by_user else "finished",
                "run_id": result.run_id,
                "model_path": result.model_path,
            }
        )
        _stop_path().unlink(missing_ok=True)
        _record_end(values, AUDIT_SOURCE)
        return 0


def _start_relay(job_id: str | None):
    """With a shared database: publish this job's status every second, and stop it when any
    replica asks (`shared_job.StatusRelay`)."""
    if not shared_job.enabled() or not job_id:
        return None
    with suppress(DatabaseError):
        shared_job.read()  # the schema checked in this thread, before MLflow starts its own
    relay = shared_job.StatusRelay(
        job_id, lambda: {**(_read_raw_status() or {}), **_progress_fields()}, _stop_path()
    )
    relay.start()
    return relay


def _stop_relay(relay) -> None:
    if relay is not None:
        relay.finished.set()
        relay.join(timeout=5)


def _progress_path() -> Path:
    return config.jobs_dir() / "progress.json"


def _progress_fields() -> dict:
    try:
        values = json.loads(_progress_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    keys = ("run_id", "epoch", "epochs", "batch", "batches", "training_started_at")
    return {key: values[key] for key in keys if key in values}


def _lower_priority() -> None:
    with suppress(OSError):  # not permitted here: train at normal priority
        os.nice(JOB_NICENESS)
