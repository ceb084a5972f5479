"""What a destination's consumer says of itself: running, or paused and why.

Written to the store when it changes (`sluice status`, trace, the UI and the metrics read it):
paused while the circuit breaker is open or the retry set is full. A circuit that closes again
makes what failed during the outage due at once. Mixed into `Consumer` (consumer.py), apart
from the loop and its steps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from sluice.delivery.config import DestinationConfig
from sluice.delivery.sending import Sender
from sluice.spec.timestamps import format_ms
from sluice.store.base import Store

log = logging.getLogger("sluice.delivery.consumer")  # these lines are the consumer's

RECOVERY_MARGIN_MS = 5_000
CIRCUIT_OPEN = "circuit open"  # how a paused state's detail starts while the breaker is open


class ConsumerState:
    """Mixed into `Consumer`: uses its sender (the breaker), store, configuration and the size
    of its retry set; `_state` is the kind of state last written."""

    config: DestinationConfig
    store: Store
    sender: Sender
    cursor_name: str
    active: int
    _state: str | None
    _was_open: bool
    _next_retry_poll: float

    if TYPE_CHECKING:

        @property
        def breaker(self) -> Any: ...

        @property
        def full(self) -> bool: ...

    async def _after_round(self) -> None:
        """A circuit that closed again: what failed during the outage is due now."""
        is_open = self.breaker.is_open
        if self._was_open and not is_open:
            since = self.sender.opened_at_ms - RECOVERY_MARGIN_MS
            now_ms = int(time.time() * 1000)
            n = await asyncio.to_thread(
                self.store.retry_now, self.config.id, (), now_ms=now_ms, failed_since_ms=since
            )
            log.warning("destination %s recovered; %d failed events due now", self.config.id, n)
            self._next_retry_poll = 0.0
        elif is_open and not self._was_open:
            log.warning(
                "destination %s: circuit open (%s); delivery paused, probing",
                self.config.id,
                self.sender.last_error,
            )
        self._was_open = is_open
        await self._publish_state()

    async def _publish_state(self) -> None:
        """Write what the consumer is doing (running, or paused and why) when that changes."""
        if self.breaker.is_open:
            opened = format_ms(self.sender.opened_at_ms)
            kind, detail = (
                "circuit_open",
                (
                    f"{CIRCUIT_OPEN} since {opened}: every request fails"
                    f" ({self.sender.last_error}); probing, at most every"
                    f" {self.sender.circuit_wait():g} s"
                ),
            )
        elif self.full:
            kind, detail = (
                "retry_set_full",
                (
                    f"retry set full: {self.active} events retrying"
                    f" (delivery.max_retrying: {self.config.options.max_retrying})"
                ),
            )
        else:
            kind, detail = "running", ""
        if kind == self._state:
            return
        self._state = kind
        now_ms = int(time.time() * 1000)
        state = "running" if kind == "running" else "paused"
        await asyncio.to_thread(
            self.store.set_consumer_state, self.cursor_name, state, detail, now_ms
        )
