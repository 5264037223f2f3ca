"""audit_log.audit_notice: the line beside a result for a failed or a pending audit write."""

from __future__ import annotations

from dashboard import audit_log
from pneumonet_core.governance import audit


def test_a_pending_entry_says_audit_pending_and_a_recorded_one_says_nothing():
    assert audit_log.audit_notice(audit.AuditResult(True, 7)) is None
    assert audit_log.audit_notice(None) is None
    pending = audit_log.audit_notice(audit.AuditResult(True, None, "down", 1, pending=True))
    assert pending.startswith("Audit pending")
    failed = audit_log.audit_notice(audit.AuditResult(False, None, "OperationalError: locked"))
    assert failed.startswith("Audit write failed") and "locked" in failed
