"""The `log` target: the subject's events out of the store's tables that hold whole events.

The event log, each destination's retry set, parked events and rejected items all keep event
bodies. Each is scanned in pages by its key (a deletion is rare; the log has no index by user,
and appends must not pay for one), the rows that are the subject's deleted in one short write
transaction per page.

Cursors stay valid: consumers read `seq > cursor`, so a removed row is a gap they never see.
On PostgreSQL positions come from a sequence and are never handed out again. On SQLite a new
row is numbered max(seq) + 1, so the newest event is never deleted (as retention never does):
when it is the subject's, the leg answers RETRYING and the runner tries again once a newer event
exists. With suppression the subject sends no newer one, any other event will do.

A source-scoped regulation deletes that source's rows; parked rows do not record their source,
so it deletes the subject's parked events of every source (erring on the side of deletion).
"""

from __future__ import annotations

import asyncio
import time

from sluice.privacy.matching import SubjectMatcher
from sluice.privacy.targets.base import Subject, TargetOutcome
from sluice.store.base import Store
from sluice.store.regulations import ERASABLE_TABLES

PAGE_ROWS = 5_000
LOG_MARK = "log_max_seq"  # unit_stats name: the highest log position this leg deleted


def progress_unit(regulation_id: str) -> str:
    """The unit_stats key under which a regulation's legs leave what later legs need (the
    archive leg waits for the archive writer to pass LOG_MARK); dropped when it is over."""
    return f"privacy:{regulation_id}"


class LogTarget:
    name = "log"

    def __init__(self, store: Store, source_id: str | None = None) -> None:
        self.store = store
        self.source_id = source_id  # a source-scoped regulation reaches this source's rows only

    async def delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        return await asyncio.to_thread(self._delete, regulation_id, subject)

    def _delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        matcher = SubjectMatcher(subject)
        removed = 0
        highest = 0
        kept_newest = False
        for table in ERASABLE_TABLES:
            after = None
            while True:
                rows = self.store.scan_payloads(table, after, PAGE_ROWS)
                if not rows:
                    break
                after = rows[-1][0]
                keys = [
                    key
                    for key, source_id, payload in rows
                    if (self.source_id is None or source_id in (None, self.source_id))
                    and matcher.might_hold(payload)
                    and matcher.holds(payload)
                ]
                gone = self.store.delete_rows(table, keys)
                removed += gone
                if table == "events" and keys:
                    highest = max(highest, max(int(k[0]) for k in keys))
                if table == "events" and gone < len(keys):
                    kept_newest = True
        if highest:
            self._record_mark(regulation_id, highest)
        if kept_newest:
            return TargetOutcome(
                self.name,
                "RETRYING",
                "the newest event of the log is the subject's; SQLite keeps the newest row (its"
                " position must not be handed out again): it goes once a newer event is stored",
                removed,
            )
        if not self.store.erase_freed():
            return TargetOutcome(
                self.name, "RETRYING", "the store's WAL could not be truncated yet", removed
            )
        return TargetOutcome(self.name, "FINISHED", f"{removed} row(s) deleted", removed)

    def _record_mark(self, regulation_id: str, highest: int) -> None:
        unit = progress_unit(regulation_id)
        known = self.store.unit_stats().get(unit, {}).get(LOG_MARK, 0)
        if highest > known:  # a leg run again after a crash finds less: keep the first mark
            self.store.record_unit_stats(unit, int(time.time() * 1000), {}, {LOG_MARK: highest})
