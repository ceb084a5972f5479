"""Engage consumer throughput: events/s with computed traits and audiences, beside the identity
consumer's over the same events (the cost of turning Engage on, as a ratio).

Builds a log of `--events` events from `--users` people (tracks of "Order Completed" with a
total and a category, "Product Viewed", and identifies with a plan), one event a second, runs
the identity consumer over it (timed: the baseline), then the Engage consumer with 5 computed
traits and 3 audiences (timed), on SQLite (identity.db in a temporary folder). Emitted events
are appended to the in-memory log like any. Run by hand:

    uv run python bench/engage.py --events 200000 --users 20000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import msgspec

from sluice.engage.consumer import EngageConsumer
from sluice.engage.definitions import compile_definitions
from sluice.engage.emit import flush
from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import rules_from
from sluice.identity.tables import SqliteIdentityDb
from sluice.store.base import AppendBatch, StoredEvent
from sluice.store.base_event_store import AppendResult
from sluice.workspace.model_engage import Audience, ComputedTrait

T0 = 1_765_000_000_000
TRAITS = [
    {"key": "orders_7d", "kind": "count", "event": "Order Completed", "within_days": 7},
    {"key": "spent", "kind": "sum", "event": "Order Completed", "property": "total"},
    {"key": "top_category", "kind": "most_frequent", "event": "Product Viewed",
     "property": "category"},
    {"key": "last_total", "kind": "last", "event": "Order Completed", "property": "total"},
    {"key": "categories", "kind": "unique_count", "event": "Product Viewed",
     "property": "category"},
]  # fmt: skip
AUDIENCES = [
    {"key": "ordered_twice", "condition": {"events": [
        {"event": "Order Completed", "count": 2, "within_days": 7}]}},
    {"key": "pro_buyers", "condition": {"traits": [{"trait": "plan", "value": "pro"}],
     "computed_traits": [{"computed_trait": "spent", "op": ">", "value": 100}]}},
    {"key": "big_orders", "condition": {"events": [
        {"event": "Order Completed", "where": "properties.total > 80", "within_days": 30}]}},
]  # fmt: skip


class Log:
    """The log in memory (the bench measures the consumers, not the log's reads)."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []

    def add(self, body: dict[str, object], source: str = "web") -> None:
        seq = len(self.events) + 1
        self.events.append(
            StoredEvent(seq, source, str(body["messageId"]), str(body["type"]),
                        body.get("event"), T0 + seq * 1000, msgspec.json.encode(body))  # type: ignore[arg-type]
        )  # fmt: skip

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        return self.events[seq : seq + limit]

    def last_seq(self) -> int:
        return len(self.events)

    def append(self, batch: AppendBatch) -> AppendResult:
        for e in batch.events:
            self.events.append(StoredEvent(len(self.events) + 1, *e))
        return AppendResult(len(batch.events), 0)


def build(log: Log, events: int, users: int, seed: int = 7) -> Log:
    rng = random.Random(seed)
    for i in range(events):
        u = rng.randrange(users)
        r = rng.random()
        body: dict[str, object] = {"messageId": f"m{i}", "userId": f"u{u}"}
        if r < 0.05:
            body.update(type="identify", traits={"plan": rng.choice(["free", "pro"])})
        elif r < 0.35:
            body.update(type="track", event="Order Completed",
                        properties={"total": rng.randrange(1, 100)})  # fmt: skip
        else:
            body.update(type="track", event="Product Viewed",
                        properties={"category": rng.choice("abcdefgh")})  # fmt: skip
        log.add(body)
    return log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    log = Log()
    defs = compile_definitions(
        msgspec.convert(TRAITS, list[ComputedTrait]), msgspec.convert(AUDIENCES, list[Audience])
    )
    with tempfile.TemporaryDirectory(prefix="engage-bench-") as tmp:
        db = SqliteIdentityDb(Path(tmp) / "identity.db")
        engage = EngageConsumer(log, db, "default", defs)  # type: ignore[arg-type]
        engage.prepare()  # before the events: every change is sent (none is history)
        build(log, args.events, args.users)
        identity = IdentityConsumer(log, db, "default", rules_from(None))  # type: ignore[arg-type]
        identity.prepare()
        start, cpu = time.perf_counter(), time.process_time()
        identity.run_until_caught_up()
        id_wall, id_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        while engage.step():
            flush(db, log, "default")  # type: ignore[arg-type]
        en_wall, en_cpu = time.perf_counter() - start, time.process_time() - cpu
        position = db.execute("SELECT emitted FROM engage_position")[0][0]
        db.close()
    n = args.events
    print(f"{n} events, {args.users} users, {len(TRAITS)} computed traits, {len(AUDIENCES)}"
          " audiences, SQLite")  # fmt: skip
    print(f"identity consumer: {n / id_wall:,.0f} events/s ({id_cpu:.1f} s CPU)")
    print(f"engage consumer:   {n / en_wall:,.0f} events/s ({en_cpu:.1f} s CPU),"
          f" {position:,} events emitted")  # fmt: skip
    print(f"engage / identity time: {en_wall / id_wall:.2f}")


if __name__ == "__main__":
    main()
