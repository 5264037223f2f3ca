"""The PACS worker: find new CR/DX instances, score each once per model version through the same
`Predictor.explain` path as Predict, and write the results back into the same study.

Order for one instance: retrieve (WADO-RS) -> explain -> audit -> state `scored` -> STOW-RS the
Secondary Capture and the SR -> state `written`. A crash after `scored` is finished on the next
pass without a duplicate (the results' UIDs are derived, and those already stored are not sent
again). A PACS that does not answer stops the pass; `watch` backs off and tries again.

Several workers (on one machine or several, sharing `PNEUMONET_DATABASE_URL`) share the work:
each instance is handled only under its claim (`state.claim`, a lease), so it is scored, audited
and written once per model version; a killed worker's claim lapses after `lease_s`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pneumonet_core.governance import audit, audited, registry
from pneumonet_core.imaging import ImageReadError
from pneumonet_core.inference import Predictor
from pneumonet_core.inference.ood_checks import LATERAL_VIEWS
from pneumonet_core.pacs import client, results, state
from pneumonet_core.pacs.settings import PacsSettings
from pneumonet_core.utils.errors import first_line

LOGGER = logging.getLogger("pneumonet.pacs")
AUDIT_SOURCE = "pacs:worker"
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
PARALLEL_INSTANCES = 3  # instances in flight at once
SCORED_MODALITIES = ("CR", "DX")  # computed and digital radiography


@dataclass
class PassSummary:
    """What one pass did; `unavailable` holds the one-line reason when the PACS did not answer."""

    written: int = 0
    skipped: int = 0
    failed: int = 0
    already_done: int = 0
    claimed_elsewhere: int = 0  # held by another worker's unexpired claim
    own_results: int = 0
    unavailable: str | None = None
    audit_failures: list[str] = field(default_factory=list)

    def add(self, other: PassSummary) -> None:
        """Count another summary's instances in this one."""
        for name in (
            "written",
            "skipped",
            "failed",
            "already_done",
            "own_results",
            "claimed_elsewhere",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.audit_failures += other.audit_failures

    def line(self) -> str:
        return (
            f"{self.written} written, {self.skipped} skipped, {self.failed} failed, "
            f"{self.already_done} already done, {self.claimed_elsewhere} claimed by another worker"
        )


def sha256_text(text: str) -> str:
    """The SHA-256 of a UID, as the audit trail records it (never the UID itself)."""
    return hashlib.sha256(text.encode()).hexdigest()


def skip_reason(reference: client.InstanceRef) -> str | None:
    """Why an instance is not scored, or None when it should be."""
    if reference.modality not in SCORED_MODALITIES:
        return f"modality {reference.modality or 'unknown'}, not {' or '.join(SCORED_MODALITIES)}"
    if (reference.view_position or "").upper() in LATERAL_VIEWS:
        return f"lateral view ({reference.view_position})"
    return None


def is_own_result(reference: client.InstanceRef) -> bool:
    return (
        reference.manufacturer == results.MANUFACTURER
        or reference.series_description == results.SERIES_DESCRIPTION
    )


class PacsWorker:
    """Scores a PACS's chest radiographs with one model version at a time.

    Args:
        settings: Where the PACS is.
        predictor_factory: Returns the `Predictor` to use (default: the active model, asked
            again at each pass so that a promotion takes effect at the next one).
        lease_s: How long this worker's claim on an instance lasts; a worker killed mid-item
            gives the item up to the others after this long.
    """

    def __init__(
        self,
        settings: PacsSettings,
        predictor_factory: Callable[[], Predictor] | None = None,
        *,
        lease_s: float = state.DEFAULT_LEASE_S,
    ):
        if not lease_s > 0:
            raise ValueError(f"the lease must be a positive number of seconds, got {lease_s!r}")
        self.settings = settings
        self.predictor_factory = predictor_factory or active_predictor_cached
        self.lease_s = float(lease_s)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = client.connect(self.settings)
        return self._client

    def run_pass(self, since: date | None = None, study_uid: str | None = None) -> PassSummary:
        """One pass over the PACS (or over one study); `PacsUnavailable` is reported, not raised."""
        summary = PassSummary()
        predictor = self.predictor_factory()
        model_sha256 = model_digest(predictor.path)
        known = {record.sop_uid: record for record in state.records(model_sha256)}
        try:
            references = [
                reference
                for reference in client.find_instances(self.client, since)
                if study_uid is None or reference.study_uid == study_uid
            ]
            # Threads overlap one instance's transfers (WADO, STOW) with another's scoring.
            with ThreadPoolExecutor(max_workers=PARALLEL_INSTANCES) as pool:
                for outcome in pool.map(
                    lambda reference: self._handle(
                        reference, predictor, model_sha256, known.get(reference.sop_uid)
                    ),
                    references,
                ):
                    summary.add(outcome)
        except client.PacsUnavailable as error:
            summary.unavailable = str(error)
        if summary.own_results:
            LOGGER.debug("skipped %d of PneumoNet's own results", summary.own_results)
        return summary

    def watch(
        self,
        *,
        once: bool = False,
        interval_s: float = 30.0,
        since: date | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> PassSummary:
        """Pass after pass, every `interval_s`; with `once`, until one pass has finished.

        A PACS that does not answer is reported in one line and tried again after a backoff
        (1 s, doubling, at most 60 s); the worker never dies of it.
        """
        backoff = FIRST_BACKOFF_S
        while True:
            summary = self.run_pass(since)
            if summary.unavailable:
                LOGGER.warning(
                    "PACS unreachable at %s (%s); retrying in %.0f s",
                    self.settings.url,
                    summary.unavailable,
                    backoff,
                )
                sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff = FIRST_BACKOFF_S
            LOGGER.info("pass done: %s", summary.line())
            if once:
                return summary
            sleep(interval_s)

    def _handle(self, reference, predictor, model_sha256, known) -> PassSummary:
        """One instance: skipped, scored and written back, or failed (its own summary)."""
        summary = PassSummary()
        if is_own_result(reference):
            summary.own_results += 1
            return summary
        if known and known.status in state.DONE_STATUSES:
            summary.already_done += 1
            return summary
        if not self._claim(reference.sop_uid, model_sha256):
            summary.claimed_elsewhere += 1
            return summary
        try:
            known = state.find(reference.sop_uid, model_sha256)  # finished while we asked?
            if known and known.status in state.DONE_STATUSES:
                summary.already_done += 1
                return summary
            self._handle_claimed(reference, predictor, model_sha256, known, summary)
        finally:
            state.release(reference.sop_uid, model_sha256, self.worker_id)
        return summary

    def _claim(self, sop_uid: str, model_sha256: str) -> bool:
        """Claim the instance; a claim left by a dead worker of this machine is taken at once,
        one of another machine when its lease has lapsed."""
        if state.claim(sop_uid, model_sha256, self.worker_id, lease_s=self.lease_s):
            return True
        holder = state.claim_holder(sop_uid, model_sha256)
        if holder is None or not is_dead_local_worker(holder):
            return False
        return state.claim(
            sop_uid, model_sha256, self.worker_id, lease_s=self.lease_s, take_from=holder
        )

    def _handle_claimed(self, reference, predictor, model_sha256, known, summary) -> None:
        record = state.InstanceRecord(
            sop_uid=reference.sop_uid,
            model_sha256=model_sha256,
            study_uid=reference.study_uid,
            series_uid=reference.series_uid,
            status="skipped",
            model_version=predictor.model_label,
            study_date=reference.study_date,
            modality=reference.modality,
        )
        if reason := skip_reason(reference):
            record.reason = reason
            state.save(record)
            summary.skipped += 1
            LOGGER.info("skipped an instance: %s", reason)
            return
        self._score_and_write(reference, record, known, predictor, summary)

    def _score_and_write(self, reference, record, known, predictor, summary) -> None:
        data = client.retrieve_bytes(self.client, reference)
        try:
            explanation = predictor.explain(data, name="PACS instance")
            source = client.header_only(data)
        except (ImageReadError, ValueError) as error:
            record.status, record.reason = "failed", first_line(error)
            state.save(record)
            summary.failed += 1
            LOGGER.warning("could not score an instance: %s", record.reason)
            return
        context = results.ResultContext(
            model_version=predictor.model_label,
            model_sha256=record.model_sha256,
            threshold_origin=threshold_origin(predictor),
        )
        if known is None:  # a retry after a crash was audited the first time
            self._audit(data, reference, predictor, explanation, record, summary)
        _fill(record, explanation, context)
        state.save(record)
        objects = results.build_results(source, explanation, context)
        missing = [
            item
            for item in objects
            if known is None
            or not client.instance_exists(self.client, reference.study_uid, item.SOPInstanceUID)
        ]
        if missing:
            client.store(self.client, missing, reference.study_uid)
        record.status = "written"
        state.save(record)
        summary.written += 1

    def _audit(self, data, reference, predictor, explanation, record, summary) -> None:
        written = audited.record_prediction(
            explanation.prediction,
            source=AUDIT_SOURCE,
            model_version=predictor.model_label,
            model_sha256=record.model_sha256,
            image_sha256=audit.sha256_of_bytes(data),
            details={
                "study_uid_sha256": sha256_text(reference.study_uid),
                "instance_uid_sha256": sha256_text(reference.sop_uid),
            },
        )
        if not written.ok:
            summary.audit_failures.append(written.error or "audit write failed")
            LOGGER.warning("audit write failed: %s", written.error)


def is_dead_local_worker(worker_id: str) -> bool:
    """Whether `worker_id` ("host:pid:nonce") names a worker of this machine that is gone."""
    host, _, rest = worker_id.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def threshold_origin(predictor: Predictor) -> str:
    if predictor.operating_point is not None:
        return (
            f"site operating point: {registry.describe_operating_point(predictor.operating_point)}"
        )
    return f"threshold of the model file ({predictor.model_label})"


def _fill(record: state.InstanceRecord, explanation, context: results.ResultContext) -> None:
    prediction = explanation.prediction
    record.status = "scored"
    record.probability = prediction.probability
    record.label = prediction.label
    record.threshold = prediction.threshold
    record.threshold_origin = context.threshold_origin
    record.ood = prediction.ood
    record.ood_reason = prediction.ood_reason


_PREDICTORS: dict[tuple, Predictor] = {}
_DIGESTS: dict[tuple, str] = {}


def model_digest(path) -> str:
    """The model file's SHA-256, computed again only when the file changes (not every poll)."""
    status = Path(path).stat()
    key = (str(path), status.st_size, status.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS.clear()
        _DIGESTS[key] = audit.sha256_of_file(path)
    return _DIGESTS[key]


def active_predictor_cached() -> Predictor:
    """The active model's `Predictor`, loaded again only when the active version, its file or
    its operating point changes (a promotion takes effect at the next pass)."""
    resolved = registry.resolve_model()
    key = (str(resolved.path), resolved.version, resolved.threshold)
    if key not in _PREDICTORS:
        _PREDICTORS.clear()
        _PREDICTORS[key] = registry.active_predictor(resolved=resolved)
    return _PREDICTORS[key]
