"""Helpers for Engage tests: a store and identity tables with both consumers, events, and the
events Engage appended to the log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from sluice.engage.consumer import EngageConsumer
from sluice.engage.definitions import Definitions, compile_definitions
from sluice.engage.emit import flush
from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import rules_from
from sluice.identity.tables import IdentityDb
from sluice.store.base import AppendBatch, EventStore, NewEvent
from sluice.workspace.model_engage import ENGAGE_SOURCE_ID, Audience, ComputedTrait

SPACE = "default"
DAY = 86_400_000
T0 = 1_765_000_000_000  # 2025-12-06


def definitions(
    traits: Sequence[dict[str, Any]] = (), audiences: Sequence[dict[str, Any]] = ()
) -> Definitions:
    return compile_definitions(
        msgspec.convert(list(traits), list[ComputedTrait]),
        msgspec.convert(list(audiences), list[Audience]),
    )


class Rig:
    """A store, its identity tables, and both consumers run to the end of the log."""

    def __init__(self, store: EventStore, db: IdentityDb) -> None:
        self.store = store
        self.db = db
        self.n = 0

    def send(self, *bodies: dict[str, Any], at_ms: int = T0) -> None:
        events = []
        for body in bodies:
            self.n += 1
            body = {"type": "track", "messageId": f"m{self.n}", **body}
            events.append(
                NewEvent(
                    body.pop("source", "web"),
                    body["messageId"],
                    body["type"],
                    body.get("event"),
                    at_ms,
                    msgspec.json.encode(body),
                )
            )
        self.store.append(AppendBatch(events=events))

    def engage(self, defs: Definitions, step_events: int = 5000) -> EngageConsumer:
        consumer = EngageConsumer(self.store, self.db, SPACE, defs, step_events=step_events)
        consumer.prepare()
        return consumer

    def run(self, consumer: EngageConsumer) -> None:
        identity = IdentityConsumer(self.store, self.db, SPACE, rules_from(None))
        identity.prepare()
        identity.run_until_caught_up()
        consumer.run_until_caught_up()
        flush(self.db, self.store, SPACE)

    def emitted(self) -> list[dict[str, Any]]:
        """Engage's events in the log, in order."""
        return [
            msgspec.json.decode(e.payload)
            for e in self.store.read_after(0, 1_000_000)
            if e.source_id == ENGAGE_SOURCE_ID
        ]

    def close(self) -> None:
        self.db.close()
        self.store.close()


def tracks(emitted: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """(event, audience key, user or anonymous id) of each audience track."""
    return [
        (e["event"], e["properties"]["audience_key"], e.get("userId") or e.get("anonymousId"))
        for e in emitted
        if e["type"] == "track" and e["context"]["personas"]["computation_class"] == "audience"
    ]
