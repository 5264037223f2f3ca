"""The command line's registry and audit side: `pneumonet model ...`, `pneumonet audit export`
and `pneumonet audit verify`, and the audit records and model line of `pneumonet predict`.

Every promotion, rollback and operating-point change is recorded in the audit trail for the
operating-system user; a failed audit write is reported on one line and never undoes the
change. `cli.py` adds these commands to its parser (`add_admin_parsers`).
"""

from __future__ import annotations

import json
import os
import sys

from pneumonet_core.governance import audit
from pneumonet_core.utils import config

MODEL_LIST_COLUMNS = (  # (heading, width, the row's text)
    ("version", 8, lambda row: f"{row['version']}{' *' if row['active'] else ''}"),
    ("created", 20, lambda row: row["created"][:19].replace("T", " ")),
    ("promoted by", 24, lambda row: row["promoted_by"] or "-"),
    ("threshold", 10, lambda row: _number(row["threshold"])),
    ("val ROC-AUC", 12, lambda row: _number(row["val_roc_auc"])),
    ("site operating point", 0, lambda row: row["operating_point_text"] or "-"),
)


# `pneumonet model promote` when the promotion gate refused the model (errors exit with 2).
REFUSED_EXIT_CODE = 3


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report_audit_failure(result: audit.AuditResult, what: str) -> None:
    """Print a one-line notice on stderr when an audit write failed (nothing when it worked).

    Args:
        result: What `audit.record` returned.
        what: What went unrecorded, e.g. "the promotion".
    """
    if not result.ok:
        print(
            f"pneumonet: audit write failed: {what} not recorded ({result.error})", file=sys.stderr
        )


def describe_model(predictor) -> str:
    """One line for stderr: the model in use, its threshold and where that threshold came from.

    Args:
        predictor: A `predict.Predictor`.
    """
    from pneumonet_core.governance import registry

    line = f"pneumonet: model {predictor.model_label}, threshold {predictor.threshold:.3f}"
    if predictor.operating_point is not None:
        origin = registry.describe_operating_point(predictor.operating_point)
        line += f" (site operating point: {origin})"
    return line


def audit_predictions(predictor, model_sha256: str, results: list) -> list[audit.AuditResult]:
    """Record a batch of `pneumonet predict` results in one audit write (images by SHA-256).

    Args:
        predictor: The `predict.Predictor` that made them.
        model_sha256: The SHA-256 of its model file (hashed once per command).
        results: `(path, prediction)` pairs of readable images (hashed here).

    Returns:
        One `audit.AuditResult` per pair, in order; a file gone since it was predicted fails
        alone, a failed write fails the whole batch.
    """
    from pneumonet_core.governance import audited

    outcomes: list[audit.AuditResult | None] = []
    hashed = []
    for path, prediction in results:
        try:
            hashed.append((prediction, audit.sha256_of_file(path)))
            outcomes.append(None)
        except OSError as error:
            outcomes.append(audit.AuditResult(False, error=f"{type(error).__name__}: {error}"))
    written = audited.record_predictions(
        hashed, source="cli:predict", model_version=predictor.model_label, model_sha256=model_sha256
    )
    return [written if outcome is None else outcome for outcome in outcomes]


def audited_train(train_config, **options):
    """`train.train(train_config, **options)`, its start and end recorded in the audit trail.

    Returns:
        The `train.TrainResult`; an exception from training is recorded as a failed end and
        raised again.
    """
    from pneumonet_core.training.trainer import train

    details = {"architecture": train_config.architecture, "epochs": train_config.epochs}
    started = audit.record("train_start", source="cli:train", details=details)
    report_audit_failure(started, "the training start")
    try:
        result = train(train_config, **options)
    except BaseException:
        ended = audit.record("train_end", source="cli:train", details={"state": "failed"})
        report_audit_failure(ended, "the training end")
        raise
    state = "stopped" if result.stopped_by_user else "finished"
    details = {"state": state, "run_id": result.run_id}
    ended = audit.record("train_end", source="cli:train", details=details)
    report_audit_failure(ended, "the training end")
    return result


def _overridden_note() -> None:
    if os.environ.get("PNEUMONET_MODEL"):
        print("note: PNEUMONET_MODEL is set, so it stays the model in use", file=sys.stderr)


def cmd_model_list(args) -> int:
    """`pneumonet model list [--json]`: every registry version, newest first."""
    from pneumonet_core.governance import registry

    rows = registry.list_versions()
    if args.json:
        print(json.dumps(rows))
        return 0
    if rows:
        print("  ".join(f"{heading:<{width}}" for heading, width, _ in MODEL_LIST_COLUMNS))
        for row in rows:
            cells = (f"{text(row):<{width}}" for _, width, text in MODEL_LIST_COLUMNS)
            print("  ".join(cells).rstrip())
        print("(* the active version)")
    else:
        print("No model has been promoted to the registry yet.")
    resolved = registry.resolve_model()
    print(f"Model in use: {resolved.label} ({resolved.path})")
    legacy = config.promoted_model_path()
    if not rows and legacy.is_file():
        print(
            f"A model promoted before the registry is at {legacy} and is no longer used; "
            f"register it with: pneumonet model promote {legacy}"
        )
    return 0


def cmd_model_promote(args) -> int:
    """`pneumonet model promote PATH_OR_RUN_ID [--override-reason TEXT]`: check the model with
    the promotion gate (the figures side by side), then register it and make it active.

    Returns:
        0 when promoted; `REFUSED_EXIT_CODE` when the gate refused it without an override.
    """
    from pneumonet_core.governance import audited, promotion

    reason = args.override_reason
    if reason is not None:
        reason = promotion.check_override_reason(reason)  # before the slow part
    verdict = audited.promotion_verdict(args.model)
    print(verdict.describe())
    if not verdict.passed and reason is None:
        print(
            f"pneumonet: promotion refused ({verdict.kind}); to promote it anyway, give "
            "--override-reason TEXT",
            file=sys.stderr,
        )
        return REFUSED_EXIT_CODE
    changed = audited.promote(args.model, source="cli:model promote", override_reason=reason)
    return _report_active_change(*changed, "Promoted", "the promotion")


def cmd_model_rollback(args) -> int:
    """`pneumonet model rollback VERSION`: make an earlier registry version active again."""
    from pneumonet_core.governance import audited

    changed = audited.rollback(args.version, source="cli:model rollback")
    return _report_active_change(*changed, "Rolled back", "the rollback")


def _report_active_change(version, result: audit.AuditResult, done: str, what: str) -> int:
    from pneumonet_core.governance import audited

    print(f"{done}: {audited.version_label(version)} is now active.")
    _overridden_note()
    report_audit_failure(result, what)
    return 0


def cmd_model_threshold(args) -> int:
    """`pneumonet model threshold VERSION T --evidence DIR`: save a site operating point."""
    from pneumonet_core.governance import audited, registry

    threshold = registry.check_threshold(args.threshold)
    model_path = registry.version_model_path(args.version)  # ValueError: unknown version
    evidence = registry.compute_evidence(
        model_path, args.evidence, threshold, batch_size=args.batch_size
    )
    point, result = audited.set_operating_point(
        args.version, threshold, evidence, source="cli:model threshold"
    )
    print(f"Registry version {point.version}: {registry.describe_operating_point(point)}")
    print(
        f"On {evidence.folder}: sensitivity {evidence.sensitivity:.4f}, "
        f"specificity {evidence.specificity:.4f} at threshold {point.threshold:g}"
    )
    report_audit_failure(result, "the threshold change")
    return 0


def cmd_audit_export(args) -> int:
    """`pneumonet audit export [--since DATE] [--format jsonl|csv]`: the trail on stdout."""
    return audit.export_command(args.since, args.format, sys.stdout)


def cmd_audit_verify(args) -> int:
    """`pneumonet audit verify`: walk the hash chain; exit 0 when intact, 1 at a break."""
    return audit.verify_command(sys.stdout)


def add_admin_parsers(commands) -> None:
    """Add `model` (list, promote, rollback, threshold) and `audit` (export, verify)."""
    model = commands.add_parser("model", help="the model registry: list, promote, roll back")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    listing = model_commands.add_parser("list", help="every registry version, newest first")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.set_defaults(handler=cmd_model_list)
    promote = model_commands.add_parser(
        "promote", help="register a .keras file or a run's model and make it active"
    )
    promote.add_argument(
        "model", metavar="PATH_OR_RUN_ID", help="a .keras file or an MLflow run id"
    )
    promote.add_argument(
        "--override-reason",
        metavar="TEXT",
        help="promote a model the promotion gate refuses; one line, kept in the audit trail",
    )
    promote.set_defaults(handler=cmd_model_promote)
    rollback = model_commands.add_parser("rollback", help="make an earlier version active")
    rollback.add_argument("version", metavar="VERSION", help="a registry version number")
    rollback.set_defaults(handler=cmd_model_rollback)
    threshold = model_commands.add_parser(
        "threshold",
        help="save a site operating point on a version, with the evidence for it",
    )
    threshold.add_argument("version", metavar="VERSION", help="a registry version number")
    threshold.add_argument("threshold", metavar="T", type=float, help="strictly between 0 and 1")
    threshold.add_argument(
        "--evidence",
        required=True,
        metavar="DIR",
        help="a labelled local folder (NORMAL/, PNEUMONIA/) the threshold was chosen on",
    )
    threshold.add_argument("--batch-size", type=int, default=32)
    threshold.set_defaults(handler=cmd_model_threshold)

    trail = commands.add_parser("audit", help="the audit trail")
    trail_commands = trail.add_subparsers(dest="audit_command", required=True)
    export = trail_commands.add_parser("export", help="print the audit entries, oldest first")
    export.add_argument("--since", metavar="DATE", help="ISO date or time (UTC), e.g. 2026-01-31")
    export.add_argument("--format", choices=audit.EXPORT_FORMATS, default="jsonl")
    export.set_defaults(handler=cmd_audit_export)
    verify = trail_commands.add_parser(
        "verify", help="check the hash chain: name the first entry edited, removed or inserted"
    )
    verify.set_defaults(handler=cmd_audit_verify)


# The commands that load TensorFlow (to check or score a model).
TENSORFLOW_COMMANDS = (cmd_model_promote, cmd_model_threshold)
