"""What operators read of the retry set and do to it: `sluice retrying`, `sluice status` and
trace, the UI and the admin API.

Rows by destination and state, counts, the oldest position retention keeps; making rows due now,
parking them, releasing waiting ones, dropping a deleted destination's set. Apart from
retry_set.py (what a consumer's step writes and reads) because these run on an operator's
request, not on the delivery path; the SQL is the same kind, one text for both backends. Mixed
into both backends' delivery state beside `RetrySetState`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sluice.store.base_delivery import NewParked, RetryingEvent, RetryRow
from sluice.store.dialect import Cursor, Dialect
from sluice.store.retry_set import (
    DELETE_RETRY_ROW_SQL,
    PROMOTE_WAITING_SQL,
    RETRY_ROW_COLUMNS,
    retry_row,
)

ACTIVE = ("retrying", "waiting")
_VIEW_COLUMNS = (
    "destination, message_id, seq, first_failure, attempts, next_attempt, last_error, action,"
    " state, request, response, updated_at"
)


def _view(r: Sequence[Any]) -> tuple[str, RetryingEvent]:
    return str(r[0]), RetryingEvent(
        str(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), str(r[6]), str(r[7]), str(r[8]),
        bytes(r[9]), bytes(r[10]), int(r[11]),
    )  # fmt: skip


def _where(destination: str | None, message_ids: Sequence[str]) -> tuple[str, list[Any]]:
    sql, params = "", []
    if destination is not None:
        sql += " AND destination = ?"
        params.append(destination)
    if message_ids:
        sql += f" AND message_id IN ({', '.join('?' for _ in message_ids)})"
        params.extend(message_ids)
    return sql, params


class RetrySetOperations:
    """Mixed into both stores' delivery state: uses their `_retry_read`, `_retry_write` and
    `_dialect`, and `RetrySetState._park_rows`."""

    _dialect: Dialect

    if TYPE_CHECKING:  # the host's and RetrySetState's, in the MRO: no stub to shadow them

        def _retry_read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

        def _retry_write(self, fn: Callable[[Cursor], Any]) -> Any: ...

        def _park_rows(
            self, cur: Cursor, destination: str, parked: Sequence[NewParked], now_ms: int
        ) -> None: ...

    # --- what operators and `sluice status`/trace read -----------------------------------------
    def retrying(
        self,
        destination: str | None = None,
        limit: int | None = None,
        *,
        states: Sequence[str] = ACTIVE,
    ) -> list[tuple[str, RetryingEvent]]:
        """Retry-set rows (retrying and waiting by default), by destination and log order."""
        where, params = _where(destination, ())
        sql = (
            f"SELECT {_VIEW_COLUMNS} FROM retry_set"
            f" WHERE state IN ({', '.join('?' for _ in states)}){where}"
            " ORDER BY destination, seq, action"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_view(r) for r in self._retry_read(sql, [*states, *params])]

    def retries_for_message(self, message_id: str) -> list[tuple[str, RetryingEvent]]:
        """Every retry-set row of this messageId, delivered ones included (for trace)."""
        rows = self._retry_read(
            f"SELECT {_VIEW_COLUMNS} FROM retry_set WHERE message_id = ? ORDER BY seq, action",
            (message_id,),
        )
        return [_view(r) for r in rows]

    def retry_counts(self, destination: str | None = None) -> dict[str, dict[str, int]]:
        """Rows per destination and state (retrying, waiting), a count per index range."""
        where, params = _where(destination, ())
        rows = self._retry_read(
            "SELECT destination, state, count(*) FROM retry_set"
            f" WHERE state IN ('retrying', 'waiting'){where} GROUP BY destination, state",
            params,
        )
        counts: dict[str, dict[str, int]] = {}
        for dest, state, n in rows:
            counts.setdefault(str(dest), {})[str(state)] = int(n)
        return counts

    def oldest_retrying_seq(self) -> int | None:
        """The lowest log position any retry-set row still needs (log retention keeps it)."""
        rows = self._retry_read(
            "SELECT min(seq) FROM retry_set WHERE state IN ('retrying', 'waiting')"
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def retry_destinations(self) -> list[str]:
        rows = self._retry_read("SELECT DISTINCT destination FROM retry_set")
        return sorted(str(r[0]) for r in rows)

    # --- operator actions ----------------------------------------------------------------------
    def retry_now(
        self,
        destination: str | None,
        message_ids: Sequence[str] = (),
        *,
        now_ms: int = 0,
        failed_since_ms: int | None = None,
    ) -> int:
        """Make retrying rows due now (all of the destination's, these events', or those that
        failed since a time: a destination back from an outage); how many."""
        where, params = _where(destination, message_ids)
        if failed_since_ms is not None:
            where += " AND updated_at >= ?"
            params.append(failed_since_ms)
        sql = self._dialect(
            f"UPDATE retry_set SET next_attempt = ? WHERE state = 'retrying'{where}"
        )
        result: int = self._retry_write(lambda cur: cur.execute(sql, [now_ms, *params]).rowcount)
        return result

    def park_retrying(
        self,
        destination: str | None,
        message_ids: Sequence[str] = (),
        *,
        reason: str = "parked_by_operator",
        now_ms: int,
    ) -> int:
        """Move retrying and waiting rows to parked now, with their last exchange; how many.

        A request for one of them in flight still settles: if it is delivered, the parked row
        stays (the event is both parked and delivered; `sluice trace` shows parked)."""
        where, params = _where(destination, message_ids)
        q = self._dialect

        def write(cur: Cursor) -> int:
            rows = cur.execute(
                q(f"SELECT {RETRY_ROW_COLUMNS} FROM retry_set"
                  f" WHERE state IN ('retrying', 'waiting'){where}"),
                params,
            ).fetchall()  # fmt: skip
            found = [retry_row(r) for r in rows]
            by_dest: dict[str, list[RetryRow]] = {}
            for row in found:
                by_dest.setdefault(row.destination, []).append(row)
            for dest, own in by_dest.items():
                parked = [
                    NewParked(r.message_id, r.seq, f"{reason}: {r.last_error}", r.attempts,
                              r.request, r.response, r.payload)
                    for r in own
                ]  # fmt: skip
                self._park_rows(cur, dest, _one_per_event(parked), now_ms)
                cur.executemany(q(DELETE_RETRY_ROW_SQL), [(dest, r.seq, r.action) for r in own])
                cur.execute(
                    q("INSERT INTO delivery_counters VALUES (?, ?, ?) ON CONFLICT"
                      " (destination, name) DO UPDATE SET"
                      " value = delivery_counters.value + excluded.value"),
                    (dest, f"parked:{reason}", len({r.seq for r in own})),
                )  # fmt: skip
                cur.execute(q(PROMOTE_WAITING_SQL), (now_ms, dest))
            return len({(r.destination, r.seq) for r in found})

        result: int = self._retry_write(write)
        return result

    def release_waiting(self, destination: str, *, now_ms: int) -> int:
        """Make every waiting row retrying (the destination's ordering is no longer per user)."""
        sql = self._dialect(
            "UPDATE retry_set SET state = 'retrying', next_attempt = ?"
            " WHERE destination = ? AND state = 'waiting'"
        )
        result: int = self._retry_write(
            lambda cur: cur.execute(sql, (now_ms, destination)).rowcount
        )
        return result

    def drop_retry_set(self, destination: str) -> int:
        """Forget a deleted destination's rows (after its consumer has stopped)."""
        sql = self._dialect("DELETE FROM retry_set WHERE destination = ?")
        result: int = self._retry_write(lambda cur: cur.execute(sql, (destination,)).rowcount)
        return result


def _one_per_event(parked: Sequence[NewParked]) -> list[NewParked]:
    """One parked row per event, whatever number of its actions were retrying."""
    seen: set[int] = set()
    kept = []
    for p in parked:
        if p.seq not in seen:
            seen.add(p.seq)
            kept.append(p)
    return kept
