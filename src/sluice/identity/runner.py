"""What the worker runs: the identity consumer of the workspace, by lease in the batch lane.

One unit per workspace (a merge may join any two users, so the graph cannot be split by user).
It is on by default, with Segment's default rules, so that profiles exist without any setup;
`identity: {enabled: false}` in the workspace file turns it off (its tables stay). The
workspace is read again every few seconds: changed rules are handled by `prepare` (a rebuild
from the log when the log still holds everything, see consumer.py).
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec

from sluice.config import Settings
from sluice.failure_log import FailureLog
from sluice.identity.consumer import IdentityConsumer
from sluice.identity.report import IdentityReporter
from sluice.identity.rules import Rules, rules_from
from sluice.identity.tables import open_identity_db
from sluice.runtime.serial import Serial
from sluice.store.base import EventStore
from sluice.store.factory import open_store
from sluice.workspace.model import DEFAULT_WORKSPACE_NAME, IdentitySettings

log = logging.getLogger(__name__)
IDLE_POLL_S = 1.0
CONFIG_POLL_S = 5.0
RETRY_AFTER_ERROR_S = 5.0


class _WorkspaceName(msgspec.Struct):
    name: str


def workspace_rules(store: EventStore) -> tuple[str, Rules]:
    """The space (the workspace's name) and its identity rules, as the store holds them."""
    space = DEFAULT_WORKSPACE_NAME
    for obj in store.list_config("workspace"):
        space = msgspec.json.decode(obj.body, type=_WorkspaceName).name
    settings = None
    for obj in store.list_config("identity"):
        settings = msgspec.json.decode(obj.body, type=IdentitySettings)
    return space, rules_from(settings)


async def run_identity(settings: Settings) -> None:
    """Follow the log until cancelled (its own store connection: its reads are large)."""
    store = open_store(settings)
    db = await asyncio.to_thread(
        open_identity_db, settings.data_dir, settings.database_url, consumer=True
    )
    reporter = IdentityReporter(store, db)
    calls = Serial()  # the connections: one call at a time, closed once the last returns
    report_failed = False
    failures = FailureLog(log, "identity: step")
    try:
        consumer: IdentityConsumer | None = None
        checked = -float("inf")
        while True:
            now = time.monotonic()
            if now - checked >= CONFIG_POLL_S:
                checked = now
                space, rules = await calls.run(workspace_rules, store)
                if not rules.enabled:
                    consumer = None
                    await asyncio.sleep(CONFIG_POLL_S)
                    continue
                if consumer is None or (consumer.space, consumer.rules) != (space, rules):
                    consumer = IdentityConsumer(store, db, space, rules)
                    await calls.run(consumer.prepare)
            assert consumer is not None
            try:
                read = await calls.run(consumer.step)
            except Exception as exc:
                failures.failed(exc, RETRY_AFTER_ERROR_S, level=logging.ERROR)
                await asyncio.sleep(RETRY_AFTER_ERROR_S)
                continue
            failures.succeeded()
            try:
                await calls.run(reporter.report, consumer.space)
                report_failed = False
            except Exception as exc:  # a report that cannot be written never stops the graph
                if not report_failed:  # once until a report is written again (every step)
                    log.warning("identity: state could not be reported: %s", exc)
                report_failed = True
            if read < consumer.step_events:
                await asyncio.sleep(IDLE_POLL_S)
    finally:
        await calls.close(db.close, store.close)
