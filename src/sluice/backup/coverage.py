"""Whether the copied log still holds what each copied consumer has not read yet.

The identity graph and the lakes are copied before the log's snapshot, so that none is ahead
of it; but log retention may trim between the two copies, and it trims only what every
consumer has passed *then*: events a copied consumer had not read at its own copy may be gone
from the copied log. That needs a consumer days behind while the backup runs; it is refused
with a message rather than restored with a hole. A consumer already behind the log's start
before the backup began (identity turned off for a while) is copied as it is: its own status
says so, and the restore changes nothing about it.
"""

from __future__ import annotations

from pathlib import Path

from sluice.backup.manifest import BackupError
from sluice.backup.sqlite_copy import read_only


def first_seq(log_path: Path) -> int | None:
    """The log's first event (what retention has left of it), read before any copy."""
    db = read_only(log_path)
    try:
        first = db.execute("SELECT min(seq) FROM events").fetchone()[0]
    finally:
        db.close()
    return None if first is None else int(first)


def check_log_covers(log_copy: Path, what: str, position: int, first_before: int | None) -> None:
    """Refuse a backup whose copied log lost, after `first_before` was read, events after
    `what`'s copied `position`."""
    first = first_seq(log_copy)
    if first is None or first <= position + 1:
        return
    if first_before is None or first > first_before:
        raise BackupError(
            f"the log was trimmed past {what}'s position ({position}) while the backup ran (it"
            f" now starts at {first}): run the backup again"
        )
