"""`pneumonet pacs watch` (the worker) and `pneumonet pacs list` (the worklist)."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from datetime import date

LIST_COLUMNS = ("reference", "study_date", "modality", "status", "probability", "label", "ood")
# Text output adds the reason (OOD, skip or failure) as the last column; JSON as "reason".


def add_pacs_parser(commands) -> None:
    pacs = commands.add_parser("pacs", help="score chest X-rays in a PACS over DICOMweb")
    pacs_commands = pacs.add_subparsers(dest="pacs_command", required=True)
    watch = pacs_commands.add_parser("watch", help="find, score and write back new CR/DX images")
    watch.add_argument("--url", help="DICOMweb root (default: PNEUMONET_DICOMWEB_URL)")
    watch.add_argument("--once", action="store_true", help="one pass over what is there, then exit")
    watch.add_argument("--interval", type=float, default=30.0, help="seconds between passes")
    watch.add_argument("--since", type=date.fromisoformat, help="only studies from this date")
    watch.add_argument(
        "--lease",
        type=float,
        default=120.0,
        help="seconds a claimed instance stays this worker's (a killed worker's claim lapses)",
    )
    watch.set_defaults(handler=cmd_pacs_watch)
    listing = pacs_commands.add_parser("list", help="the worklist, the most urgent first")
    listing.add_argument("--url", help="DICOMweb root (default: PNEUMONET_DICOMWEB_URL)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument("--days", type=int, help="only studies of the last N days")
    listing.add_argument("--show-patient", action="store_true", help="also the patient name and ID")
    listing.set_defaults(handler=cmd_pacs_list)


def cmd_pacs_watch(args) -> int:
    from pneumonet_core.pacs import PacsWorker, pacs_settings

    if args.interval <= 0:
        raise ValueError(f"--interval must be positive, got {args.interval!r}")
    settings = _configured(pacs_settings(args.url))
    _log_to_stderr()
    PacsWorker(settings, lease_s=args.lease).watch(
        once=args.once, interval_s=args.interval, since=args.since
    )  # each pass ends with one line on stderr ("pass done: ...")
    return 0


def cmd_pacs_list(args) -> int:
    from pneumonet_core.governance import audit, registry
    from pneumonet_core.pacs import build_worklist, pacs_settings

    settings = pacs_settings(args.url)
    model_sha256 = audit.sha256_of_file(registry.active_model_path())
    worklist = build_worklist(
        settings, model_sha256, days=args.days, show_patient=args.show_patient
    )
    if not settings.configured:
        print("pneumonet pacs: no PACS configured; showing the cached statuses", file=sys.stderr)
    elif worklist.pacs_error:
        print(
            f"pneumonet pacs: {worklist.pacs_error}; showing the cached statuses", file=sys.stderr
        )
    columns = LIST_COLUMNS + (("patient_name", "patient_id") if args.show_patient else ())
    if not args.json:
        print("\t".join((*columns, "reason")))
    for row in worklist.rows:
        values = _row_values(row, columns)
        print(
            json.dumps(values)
            if args.json
            else "\t".join(_text(value) for value in values.values())
        )
    return 0


def _row_values(row, columns) -> dict:
    values = asdict(row)
    values["ood"] = None if row.status != "scored" else row.ood_reason is not None
    values["reason"] = row.ood_reason or row.reason
    return {key: values.get(key) for key in (*columns, "reason")}


def _text(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _configured(settings):
    if not settings.configured:
        raise ValueError("no PACS configured: pass --url or set PNEUMONET_DICOMWEB_URL")
    return settings


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("pneumonet pacs: %(message)s"))
    logger = logging.getLogger("pneumonet.pacs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
