"""What the worker runs: the Engage consumer of the workspace, by lease in the batch lane.

One unit per workspace, like the identity graph it follows (a merge may join any two profiles).
It idles while the workspace defines no computed trait and no audience. The workspace is read
again every few seconds; changed definitions are handled by `prepare` (a recomputation).
When caught up, a tick every minute moves the log's clock to the wall clock, so windows end
with time, and the outbox is appended to the log after every step.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec

from sluice.config import Settings
from sluice.engage.consumer import EngageConsumer
from sluice.engage.definitions import Definitions, compile_definitions
from sluice.engage.emit import flush
from sluice.errors import SluiceError
from sluice.failure_log import FailureLog
from sluice.identity.runner import workspace_rules
from sluice.identity.tables import open_identity_db
from sluice.runtime.serial import Serial
from sluice.store.base import EventStore
from sluice.store.factory import open_store
from sluice.workspace.sync import ENGAGE_KIND, EngageBody

log = logging.getLogger(__name__)
IDLE_POLL_S = 1.0
CONFIG_POLL_S = 5.0
TICK_S = 60.0
RETRY_AFTER_ERROR_S = 5.0


def workspace_definitions(store: EventStore) -> tuple[str, Definitions]:
    """The space and its compiled definitions, as the store holds them (checked by apply)."""
    space, rules = workspace_rules(store)
    body = EngageBody()
    for obj in store.list_config(ENGAGE_KIND):
        body = msgspec.json.decode(obj.body, type=EngageBody)
    if not rules.enabled:  # no profiles, nothing to compute over
        return space, Definitions()
    return space, compile_definitions(body.computed_traits, body.audiences)


async def run_engage(settings: Settings) -> None:
    """Follow the log behind the identity graph until cancelled."""
    store = open_store(settings)
    db = await asyncio.to_thread(open_identity_db, settings.data_dir, settings.database_url)
    calls = Serial()  # the connections: one call at a time, closed once the last returns
    try:
        consumer: EngageConsumer | None = None
        checked = ticked = -float("inf")
        refused = ""
        failures = FailureLog(log, "engage: step")
        while True:
            now = time.monotonic()
            if now - checked >= CONFIG_POLL_S:
                checked = now
                try:
                    space, defs = await calls.run(workspace_definitions, store)
                except (SluiceError, msgspec.ValidationError) as exc:
                    # `sluice apply` checks them: only a store written otherwise gets here.
                    if str(exc) != refused:
                        refused = str(exc)
                        log.error("engage definitions refused, engage paused: %s", exc)
                    consumer, checked = None, -float("inf")  # read again after the sleep
                    await asyncio.sleep(CONFIG_POLL_S)
                    continue
                refused = ""
                if defs.empty:
                    consumer, checked = None, -float("inf")  # read again after the sleep
                    await asyncio.sleep(CONFIG_POLL_S)
                    continue
                if consumer is None or (consumer.space, consumer.defs) != (space, defs):
                    consumer = await calls.run(EngageConsumer, store, db, space, defs)
                # Also when only the identity rules changed (the graph rebuilt): recompute.
                await calls.run(consumer.prepare)
            assert consumer is not None
            try:
                await calls.run(flush, db, store, consumer.space)
                read = await calls.run(consumer.step)
                await calls.run(flush, db, store, consumer.space)
                if not read and time.monotonic() - ticked >= TICK_S:
                    ticked = time.monotonic()
                    await calls.run(consumer.tick, int(time.time() * 1000))
                    await calls.run(flush, db, store, consumer.space)
            except Exception as exc:
                failures.failed(exc, RETRY_AFTER_ERROR_S, level=logging.ERROR)
                await asyncio.sleep(RETRY_AFTER_ERROR_S)
                continue
            failures.succeeded()
            if read < consumer.step_events:
                await asyncio.sleep(IDLE_POLL_S)
    finally:
        await calls.close(db.close, store.close)
