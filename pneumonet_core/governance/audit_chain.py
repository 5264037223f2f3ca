"""The audit trail's hash chain: each entry holds the SHA-256 of its content and of the entry
before it, so an edited, removed, inserted or replaced entry breaks the chain where it happened.

As with git or AWS CloudTrail's digests, someone who can write the database may still rewrite
every entry from one onward with fresh hashes; only a copy of a later hash kept elsewhere
(`ChainReport.last_hash`, printed by `pneumonet audit verify`) catches that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64  # the `prev_hash` of the first entry
CHAIN_FIELDS = ("prev_hash", "entry_hash")


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking the chain: intact through `last_id`, or broken at `broken_id`."""

    intact: bool
    last_id: int | None = None  # the last entry checked (None: no entries)
    last_hash: str | None = None  # its hash: keep a copy elsewhere as an anchor
    broken_id: int | None = None
    problem: str | None = None

    @property
    def message(self) -> str:
        """One line: "audit chain intact through entry N" or where and how it breaks."""
        if not self.intact:
            return f"audit chain broken at entry {self.broken_id}: {self.problem}"
        if self.last_id is None:
            return "audit chain intact: no entries yet"
        return f"audit chain intact through entry {self.last_id} (hash {self.last_hash})"


def entry_hash(content: Mapping[str, Any], prev_hash: str) -> str:
    """The SHA-256 of an entry's content (every field but `id`, as stored) and `prev_hash`.

    The canonical form is JSON with sorted keys and no spaces, so the same stored values
    always give the same hash.
    """
    canonical = {key: value for key, value in content.items() if key not in ("id", *CHAIN_FIELDS)}
    canonical["prev_hash"] = prev_hash
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def verify_rows(rows: Iterable[Mapping[str, Any]], highest_id_issued: int = 0) -> ChainReport:
    """Walk stored rows in id order and report the first break.

    Args:
        rows: Every entry with its `id`, content fields and `prev_hash`, `entry_hash`.
        highest_id_issued: The highest id ever given out (SQLite's `sqlite_sequence`), so
            that removing the last entries is seen too.
    """
    previous_id, previous_hash = 0, GENESIS_HASH
    for row in rows:
        entry_id = row["id"]
        problem = _row_problem(row, previous_id, previous_hash)
        if problem is not None:
            return ChainReport(False, previous_id or None, None, *problem)
        previous_id, previous_hash = entry_id, row["entry_hash"]
    if highest_id_issued > previous_id:
        removed = (previous_id + 1, f"it and every entry after {previous_id} were removed")
        return ChainReport(False, previous_id or None, None, *removed)
    return ChainReport(True, previous_id or None, None if previous_id == 0 else previous_hash)


def _row_problem(
    row: Mapping[str, Any], previous_id: int, previous_hash: str
) -> tuple[int, str] | None:
    """(the entry to blame, what is wrong), or None when `row` follows its predecessor."""
    entry_id = row["id"]
    if entry_id != previous_id + 1:
        return previous_id + 1, f"it was removed (the ids jump from {previous_id} to {entry_id})"
    if not row["entry_hash"] or row["entry_hash"] != entry_hash(row, row["prev_hash"] or ""):
        return entry_id, "it was edited or replaced (its content does not match its hash)"
    if row["prev_hash"] != previous_hash:
        if previous_id == 0:
            return entry_id, "the chain does not start at the genesis value (entries removed)"
        return previous_id, (
            f"it was inserted or replaced (entry {entry_id} was chained to another entry)"
        )
    return None
