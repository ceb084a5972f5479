"""Parked events an operator asked to send again (`sluice parked retry`, the admin API, the UI).

Sent once, outside the log's order: a retryable failure puts them in the retry set with a new
window, a permanent one parks them again. Mixed into `Consumer` (consumer.py), apart from the
loop and its steps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING

from sluice.delivery.config import DestinationConfig
from sluice.delivery.plan import plan
from sluice.delivery.retries import DueRetries, RetryBook, RetryChanges
from sluice.delivery.sending import Sender
from sluice.store.base import Store, StoredEvent
from sluice.store.base_delivery import DeliveryCommit, ParkedEvent


class ParkedResend:
    """Mixed into `Consumer`: uses its sender, retry bookkeeping, store and the size of its
    retry set."""

    config: DestinationConfig
    store: Store
    sender: Sender
    book: RetryBook
    cursor_name: str
    active: int

    if TYPE_CHECKING:

        def _track(self, changes: RetryChanges, due: DueRetries | None) -> None: ...

    async def resend_parked(self) -> None:
        """Send parked events an operator asked for once; a retryable failure puts them in the
        retry set with a new window (from now), a permanent one parks them again."""
        requested = await asyncio.to_thread(
            self.store.parked, self.config.id, ("retry_requested",), 500
        )
        if not requested:
            return
        by_message: dict[str, ParkedEvent] = {p.message_id: p for p in requested}
        now_ms = int(time.time() * 1000)
        stored = [
            StoredEvent(p.seq, next(iter(self.config.sources), ""), p.message_id, "", None,
                        now_ms, p.payload)
            for p in requested
        ]  # fmt: skip
        work = plan(_all_sources(self.config), stored)
        result = await self.sender.deliver(work, retry_in_step=False)
        changes = self.book.failures(result.failed, work, None, window_start_ms=now_ms)
        self._track(changes, None)
        back = {m for m in result.delivered} | {r.message_id for r in changes.added}
        resent = [by_message[m].id for m in back if m in by_message]
        filtered = [p.id for p in requested if p.message_id not in work.events]
        for again in result.parked:
            original = by_message[again.message_id]
            await asyncio.to_thread(
                self.store.repark, original.id, again.reason, original.attempts + again.attempts,
                again.request, again.response,
            )  # fmt: skip
        await asyncio.to_thread(
            self.store.commit_delivery,
            DeliveryCommit(
                destination=self.config.id,
                cursor=None,
                first_seq=0,
                last_seq=-1,
                finished_at_ms=int(time.time() * 1000),
                attempts=result.attempts,
                counters={"delivered": len(result.delivered), "resent": len(resent)},
                resent_parked_ids=resent + filtered,
                cursor_name=self.cursor_name,
                retries=changes.added,
                retrying_now=self.active if changes.added else None,
            ),
        )


def _all_sources(config: DestinationConfig) -> DestinationConfig:
    """The same configuration, accepting any source (parked events were already routed once)."""
    return dataclasses.replace(config, sources=frozenset())
